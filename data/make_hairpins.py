"""Make data/hairpins.csv.gz: designed DNA hairpins and their folding free
energies.

Each sequence is a designed hairpin: a random 5' flank, a random stem, a
random loop, the reverse complement of the stem with a few random
mismatches, and a random 3' flank. Its minimum free energy (dG, kcal/mol) is
computed by seqfold's Zuker-style dynamic programme with the SantaLucia &
Hicks (2004) DNA nearest-neighbour parameters, at 37 C and at a second
(assay) temperature, 60 C; the file also keeps the sum of the Watson-Crick
stacking terms of the 37 C structure. Everything is seeded, and the gzip
header carries no time stamp, so the same command writes a byte-identical
file.

seqfold is needed only here, offline; the book's runtime never imports it.

Usage (from the repository root, in an environment that has seqfold 0.10.2):

    python data/make_hairpins.py --n 3000 --seed 2004
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import math
import random
import re
from pathlib import Path

import seqfold

BASES = "ACGT"
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
FIELDS = (
    "id",
    "sequence",
    "length",
    "flank5_len",
    "stem_len",
    "loop_len",
    "flank3_len",
    "stem_mismatches",
    "stem_gc",
    "dg_kcal_per_mol",
    "structure",
    "dg60_kcal_per_mol",
    "stack_dg_kcal_per_mol",
)
#: A stack of two Watson-Crick pairs in seqfold's motif names, "STACK:CA/GT".
WC_STACK = re.compile(r"STACK:([ACGT]{2})/([ACGT]{2})$")


def random_bases(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(BASES) for _ in range(n))


def design_hairpin(rng: random.Random) -> dict:
    """One designed hairpin with its design fields (before folding)."""
    stem_len = rng.randint(4, 10)
    loop_len = rng.randint(3, 8)
    flank5_len = rng.randint(3, 8)
    flank3_len = rng.randint(3, 8)
    stem = random_bases(rng, stem_len)
    # 0, 1 or 2 mismatched positions in the returning strand (at most half
    # the stem).
    mismatches = rng.choice((0, 0, 1, 2)) if stem_len >= 4 else 0
    partner = [COMPLEMENT[b] for b in reversed(stem)]
    for pos in rng.sample(range(stem_len), mismatches):
        partner[pos] = rng.choice([b for b in BASES if b != partner[pos]])
    sequence = (
        random_bases(rng, flank5_len)
        + stem
        + random_bases(rng, loop_len)
        + "".join(partner)
        + random_bases(rng, flank3_len)
    )
    return {
        "sequence": sequence,
        "length": len(sequence),
        "flank5_len": flank5_len,
        "stem_len": stem_len,
        "loop_len": loop_len,
        "flank3_len": flank3_len,
        "stem_mismatches": mismatches,
        "stem_gc": sum(b in "GC" for b in stem),
    }


def is_watson_crick_stack(desc: str) -> bool:
    """Whether a seqfold motif is a stack of two Watson-Crick pairs."""
    match = WC_STACK.match(desc)
    return bool(match) and all(
        COMPLEMENT[a] == b for a, b in zip(*match.groups())
    )


def fold(sequence: str, temperature: float) -> tuple[float, str, float]:
    """(dG in kcal/mol, dot-bracket structure, sum of its Watson-Crick
    stacks); an unstructured sequence has dG = 0."""
    structs = seqfold.fold(sequence, temperature)
    dg = seqfold.dg(sequence, temperature)
    # seqfold reports -inf when nothing folds
    if not structs or not math.isfinite(dg):
        return 0.0, "." * len(sequence), 0.0
    stacks = sum(s.e for s in structs if is_watson_crick_stack(s.desc))
    return round(dg, 1), seqfold.dot_bracket(sequence, structs), stacks


def make_rows(
    n: int, seed: int, temperature: float, assay_temperature: float
) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = design_hairpin(rng)
        dg, row["structure"], stacks = fold(row["sequence"], temperature)
        row["dg_kcal_per_mol"] = dg
        row["stack_dg_kcal_per_mol"] = stacks
        row["dg60_kcal_per_mol"] = fold(row["sequence"], assay_temperature)[0]
        rows.append({"id": f"hp{i:05d}", **row})
    return rows


def write_csv_gz(rows: list[dict], out: Path) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        energies = (
            "dg_kcal_per_mol",
            "dg60_kcal_per_mol",
            "stack_dg_kcal_per_mol",
        )
        writer.writerow({**row, **{k: f"{row[k]:.1f}" for k in energies}})
    raw = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as gz:
        gz.write(text.getvalue().encode("ascii"))
    out.write_bytes(raw.getvalue())
    return hashlib.sha256(raw.getvalue()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=3000, help="number of hairpins"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=2004,
        help="seed of Python's random generator",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=37.0,
        help="folding temperature in Celsius",
    )
    parser.add_argument(
        "--assay-temperature",
        type=float,
        default=60.0,
        help="second folding temperature (Celsius), of the dg60 column",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/hairpins.csv.gz")
    )
    args = parser.parse_args()
    rows = make_rows(
        args.n, args.seed, args.temperature, args.assay_temperature
    )
    digest = write_csv_gz(rows, args.out)
    dgs = [r["dg_kcal_per_mol"] for r in rows]
    print(
        f"seqfold {seqfold.__version__}: {len(rows)} hairpins, dG in"
        f" [{min(dgs):.1f}, {max(dgs):.1f}] kcal/mol"
    )
    print(f"{args.out}  {args.out.stat().st_size} bytes  sha256 {digest}")


if __name__ == "__main__":
    main()
