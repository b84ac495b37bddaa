"""Make data/dssp_chains.csv.gz: 50 protein chains and their DSSP states.

The test suite of MDAnalysis (the ``MDAnalysisTests`` package on PyPI,
version 2.11.0, folder ``MDAnalysisTests/data/dssp/``) ships 50 single
protein chains from the Protein Data Bank (``1ahsA.pdb.gz`` ...) together
with the three-state secondary structure that DSSP assigns to each residue
(``1ahsA.pdb.dssp``: one character per residue, ``H`` helix, ``E`` strand,
``-`` anything else). This script pairs each assignment with the chain's
amino-acid sequence, read from the residues of the PDB file that have the
four backbone atoms N, CA, C and O (the residues DSSP assigns), and writes
one row per chain: its name, its sequence in one-letter code and its states
with ``-`` written as ``C`` (coil). It checks that every sequence is as long
as its assignment and uses only the 20 standard amino acids.

Only the standard library is needed: unpack the source archive and point
the script at the folder. The gzip header carries no time stamp, so the same
command writes a byte-identical file.

Usage (from the repository root)::

    pip download --no-deps --no-binary :all: mdanalysistests==2.11.0 -d /tmp
    tar xzf /tmp/mdanalysistests-2.11.0.tar.gz -C /tmp
    python data/make_dssp_chains.py \\
        /tmp/mdanalysistests-2.11.0/MDAnalysisTests/data/dssp \\
        --out data/dssp_chains.csv.gz
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
from pathlib import Path

THREE_TO_ONE = {
    "ALA": "A",
    "ARG": "R",
    "ASN": "N",
    "ASP": "D",
    "CYS": "C",
    "GLN": "Q",
    "GLU": "E",
    "GLY": "G",
    "HIS": "H",
    "ILE": "I",
    "LEU": "L",
    "LYS": "K",
    "MET": "M",
    "PHE": "F",
    "PRO": "P",
    "SER": "S",
    "THR": "T",
    "TRP": "W",
    "TYR": "Y",
    "VAL": "V",
}
BACKBONE = {"N", "CA", "C", "O"}


def chain_sequence(pdb: Path) -> str:
    """One-letter codes of the residues with a complete backbone, in order
    (first model only)."""
    names: dict[tuple[str, str], str] = {}
    atoms: dict[tuple[str, str], set[str]] = {}
    with gzip.open(pdb, "rt") as handle:
        for line in handle:
            if line.startswith("ENDMDL"):
                break
            if not line.startswith(("ATOM", "HETATM")):
                continue
            key = (line[21], line[22:27])  # chain, residue number + code
            names.setdefault(key, line[17:20].strip())
            atoms.setdefault(key, set()).add(line[12:16].strip())
    residues = [key for key in names if BACKBONE <= atoms[key]]
    unknown = {names[k] for k in residues} - set(THREE_TO_ONE)
    if unknown:
        raise ValueError(f"{pdb.name}: non-standard residues {unknown}")
    return "".join(THREE_TO_ONE[names[k]] for k in residues)


def rows(folder: Path) -> list[tuple[str, str, str]]:
    out = []
    for pdb in sorted(folder.glob("?????.pdb.gz")):
        name = pdb.name.removesuffix(".pdb.gz")
        states = (folder / f"{name}.pdb.dssp").read_text().split()[0]
        sequence = chain_sequence(pdb)
        if len(sequence) != len(states) or set(states) - set("HE-"):
            raise ValueError(f"{name}: sequence and states do not match")
        out.append((name, sequence, states.replace("-", "C")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="MDAnalysisTests/data/dssp")
    parser.add_argument("--out", type=Path, default="data/dssp_chains.csv.gz")
    args = parser.parse_args()
    table = rows(args.folder)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("chain", "sequence", "states"))
    writer.writerows(table)
    with open(args.out, "wb") as raw:
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0
        ) as handle:
            handle.write(text.getvalue().encode("ascii"))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    n_residues = sum(len(seq) for _, seq, _ in table)
    print(f"{len(table)} chains, {n_residues} residues -> {args.out}")
    print(f"SHA-256 {digest}")


if __name__ == "__main__":
    main()
