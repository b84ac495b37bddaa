"""A chapter runs the way Colab meets it.

xentlib is installed as a package and the notebook sits alone in a folder.

Colab opens a chapter from the repository, the setup cell installs xentlib
with pip, and nothing else of the repository is there. This test does the same
without a network: it builds a wheel of xentlib, installs it into a fresh
virtual environment outside the repository (which borrows only the third-party
packages of the book's environment), copies the chapter notebook alone into an
empty folder and executes it there with papermill, on a kernel of that fresh
environment. The setup cell finds xentlib importable and installs nothing; the
chapter must find its data through the installed package and reproduce its
stored results. Every chapter that reads a data file is run this way.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from xentlib.book import (
    chapter_usage,
    chapters,
    compare_results,
    extract_results,
    find_root,
    load_expected,
)
from xentlib.book.execution import THREAD_VARIABLES

ROOT = find_root(__file__)
KERNEL = "xentlib-installed"


def _data_loaders() -> set[str]:
    """Qualified names of the xentlib functions that open a file through
    ``data_path``, directly or through other functions of their module."""
    loaders = set()
    for py in (ROOT / "xentlib").glob("*.py"):
        calls = {
            node.name: {
                getattr(n.func, "id", getattr(n.func, "attr", None))
                for n in ast.walk(node)
                if isinstance(n, ast.Call)
            }
            for node in ast.parse(py.read_text()).body
            if isinstance(node, ast.FunctionDef)
        }
        reading = {"data_path"}
        while True:
            more = {
                name for name, called in calls.items() if called & reading
            } - reading
            if not more:
                break
            reading |= more
        loaders |= {
            f"xentlib.{py.stem}.{name}" for name in reading - {"data_path"}
        }
    return loaders


def _chapters_reading_data() -> list[Path]:
    usage = chapter_usage(ROOT)
    stems = {
        stem
        for name in _data_loaders() | {"xentlib.datasets.data_path"}
        for stem in usage.get(name, [])
    }
    return [p for p in chapters(ROOT) if p.stem in stems]


DATA_CHAPTERS = _chapters_reading_data()


def test_the_chapters_that_read_data_are_found():
    assert DATA_CHAPTERS, (
        "no chapter reads a data file through xentlib? the scan of loaders is"
        " broken"
    )
    assert "05_classification_in_the_sciences" in [
        p.stem for p in DATA_CHAPTERS
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh environment with xentlib installed from its wheel, and a
    Jupyter kernel for it."""
    base = tmp_path_factory.mktemp("colab")
    wheels = base / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        cwd=base,
    )
    (wheel,) = wheels.glob("xentlib-*.whl")
    env = base / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(env)], check=True
    )
    python = env / "bin" / "python"
    site = Path(
        subprocess.run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Third-party packages come from the book's environment. A path listed
    # in a .pth file is added as it is, without processing that folder's own
    # .pth files, so the editable install of the repository's xentlib there
    # stays invisible.
    (site / "book_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    kernels = base / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(python),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "xentlib from its wheel",
                "language": "python",
            }
        )
    )
    return {
        "python": python,
        "site": site,
        "jupyter": base / "jupyter",
        "base": base,
    }


def _clean_environ(installed) -> dict:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME")
    }
    environ["JUPYTER_PATH"] = str(installed["jupyter"])
    return environ


def test_installed_xentlib_and_its_data_come_from_the_wheel(
    installed, tmp_path
):
    code = (
        "import sys, xentlib; print(xentlib.__file__);"
        " print(xentlib.data_path('hairpins.csv.gz')); print(*sys.path,"
        " sep='\\n')"
    )
    out = subprocess.run(
        [str(installed["python"]), "-c", code],
        cwd=tmp_path,
        env=_clean_environ(installed),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(installed["site"]), out[0]
    assert Path(out[1]).is_relative_to(installed["site"]), out[1]
    borrowed = Path(sysconfig.get_paths()["purelib"]).resolve()
    for entry in filter(None, out[2:]):
        entry = Path(entry).resolve()
        assert entry == borrowed or not entry.is_relative_to(ROOT), (
            f"repository folder on the path: {entry}"
        )


@pytest.mark.chapters
@pytest.mark.parametrize("path", DATA_CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_alone_with_xentlib_installed_from_its_wheel(
    path, installed, tmp_path, monkeypatch
):
    import papermill

    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy2(path, alone / path.name)
    for key, value in _clean_environ(installed).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    # the expectations are recorded on one thread, as the runner executes
    # every chapter (some results move with the number of threads: parallel
    # sums round differently)
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "1")
    out = tmp_path / f"{path.stem}.executed.ipynb"
    papermill.execute_notebook(
        str(alone / path.name),
        str(out),
        kernel_name=KERNEL,
        cwd=str(alone),
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    setup = next(
        c
        for c in nb.cells
        if c.cell_type == "code" and "except ImportError" in c.source
    )
    assert not any(
        "Successfully installed" in o.get("text", "") for o in setup.outputs
    ), "the setup cell installed xentlib although it was importable"
    assert sorted(p.name for p in alone.iterdir()) == [path.name], (
        "the chapter wrote files next to itself"
    )
    failures = compare_results(
        path.stem, extract_results(nb), load_expected(ROOT, path.stem)
    )
    assert not failures, "\n".join(failures)
