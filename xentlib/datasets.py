"""Where the book's data live.

Chapters read small data files from the repository's ``data/`` folder, each
described by a data card there. The folder is installed with the package as
``xentlib.data``, so the same call finds a file in a clone (an editable
install) and in Colab (``pip install git+...``). Nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_path"]


def data_path(name: str) -> Path:
    """The path of the data file ``name`` shipped with the book.

    The chapters' loaders (the DNA hairpins of chapter 5 are the first) find
    their files through it.

    Parameters
    ----------
    name : str
        A file name inside ``data/``, such as ``"README.md"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If ``name`` is not a plain file name (a path such as
        ``"../pyproject.toml"`` would escape the data folder).
    FileNotFoundError
        If no such file ships with the book; the message lists those that do.
    """
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(
            "name must be the name of a file in the data folder, such as "
            f"'README.md', without a path; got {name!r}"
        )
    folder = resources.files("xentlib.data")
    path = Path(str(folder / name))
    if name in (".", "..") or not path.is_file():
        available = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file() and not p.name.endswith(".py")
        )
        raise FileNotFoundError(
            f"no data file {name!r} ships with the book; available:"
            f" {available}"
        )
    return path
