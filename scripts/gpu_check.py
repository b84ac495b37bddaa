"""The book on a CUDA GPU: tests, chapters and benchmarks, one report.

Run through ``scripts/gpu_check.sh``, which finds or makes the environment.
The steps, each with a time limit so that one run fits in about ten minutes:

1. the unit tests (every test file but the chapter, site and wheel tests),
   one pytest process per file, several at a time; the report lists every
   skipped test, and a test skipped for want of CUDA fails the check;
2. every chapter executed with ``device="cuda"`` through papermill, several
   at a time, its recorded results compared with the stored CPU
   expectations (``xentlib.book.compare_results``);
3. ``benchmarks/linear_cross_entropy.py --device cuda`` at the Llama 3
   output layer (8,192 tokens, hidden 4,096, vocabulary 128,256, bfloat16):
   the naive loss, xentlib's designs, its Triton kernel, and Liger Kernel
   and Cut Cross-Entropy (installed into a folder of their own, for this
   step only);
4. ``benchmarks/cross_entropy.py --device cuda``.

``--dry-run`` runs the same steps on a CPU at tiny sizes (a few test files,
two chapters, the benchmarks' smoke sizes) to check the script itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "_build" / "gpu_check"
#: Test files that execute chapters, render the site or build a wheel:
#: step 2 covers the chapters.
NOT_UNIT = {"test_chapters.py", "test_site.py", "test_colab.py"}
DRY_RUN_TESTS = ["test_losses.py", "test_benchmark.py"]
DRY_RUN_CHAPTERS = [
    "01_surprise_and_cross_entropy",
    "15_cross_entropy_at_scale",
]
BENCH_PACKAGES = ["liger-kernel", "cut-cross-entropy"]


class Report:
    """A Markdown report, rewritten after every step (a timeout keeps it)."""

    def __init__(self, path: Path):
        self.path, self.parts, self.failed = path, [], []

    def add(self, text: str) -> None:
        self.parts.append(text.rstrip() + "\n")
        self.path.write_text("\n".join(self.parts))
        print(text, flush=True)

    def fail(self, what: str) -> None:
        self.failed.append(what)


def run(cmd, timeout, env=None, cwd=ROOT):
    """Run ``cmd``: (exit status, None on timeout; output; seconds)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:
        out = (
            (err.stdout or b"").decode(errors="replace")
            if isinstance(err.stdout, bytes)
            else (err.stdout or "")
        )
        code = None
    return code, out, time.perf_counter() - start


def environment_section(cuda: bool) -> str:
    import torch

    lines = [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- Python {platform.python_version()}, torch {torch.__version__}",
    ]
    if cuda:
        props = torch.cuda.get_device_properties(0)
        lines.append(
            f"- device: {props.name}, {props.total_memory / 2**30:.0f} GiB,"
            f" CUDA {torch.version.cuda}"
        )
    else:
        lines.append(f"- device: CPU ({os.cpu_count()} cores), dry run")
    try:
        import triton

        lines.append(f"- triton {triton.__version__}")
    except ImportError:
        lines.append("- triton: not installed")
    return "## Environment\n\n" + "\n".join(lines)


def unit_tests(report: Report, dry: bool, workers: int, timeout: float):
    files = sorted(
        p.name
        for p in (ROOT / "tests").glob("test_*.py")
        if p.name not in NOT_UNIT
    )
    if dry:
        files = [f for f in files if f in DRY_RUN_TESTS]
    env = dict(os.environ, OMP_NUM_THREADS="2")

    def one(name):
        cmd = [sys.executable, "-m", "pytest", f"tests/{name}", "-q", "-rs"]
        cmd += ["-p", "no:cacheprovider"]
        return name, *run(cmd, timeout, env)

    rows, skipped = [], []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for name, code, out, seconds in pool.map(one, files):
            summary = (out.strip().splitlines() or ["no output"])[-1]
            status = {None: "TIMEOUT", 0: "ok"}.get(code, "FAILED")
            rows.append(f"| {name} | {status} | {seconds:.0f} | {summary} |")
            if status != "ok":
                report.fail(f"unit tests: {name} {status}")
            for line in out.splitlines():
                if line.startswith("SKIPPED"):
                    skipped.append(f"- {name}: {line}")
                    if not dry and re.search(r"cuda|gpu", line, re.I):
                        report.fail(
                            f"unit tests: skipped for want of CUDA: {line}"
                        )
            if status != "ok":
                tail = "\n".join(out.strip().splitlines()[-25:])
                rows.append(f"|  |  |  | <pre>{tail[-1500:]}</pre> |")
    text = (
        "## Unit tests\n\n| file | status | s | summary |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nSkipped tests:\n\n"
        + ("\n".join(skipped) or "- none")
    )
    report.add(text)


def _execute(stem: str, parameters: dict, build: str):
    # in a fresh process: papermill starts one kernel per chapter, on one
    # CPU thread, as the CPU expectations were recorded (some results move
    # with the number of threads)
    from xentlib.book import (
        chapters,
        compare_results,
        execute_chapter,
        load_expected,
    )

    (path,) = [p for p in chapters(ROOT) if p.stem == stem]
    result = execute_chapter(
        path, ROOT, parameters, build_dir=Path(build), threads=1
    )
    failures = (
        [result.error]
        if result.error
        else compare_results(stem, result.results, load_expected(ROOT, stem))
    )
    return stem, result.seconds, failures


def chapters_on_device(report, device, dry, workers, timeout):
    from xentlib.book import chapters

    stems = [p.stem for p in chapters(ROOT)]
    if dry:
        stems = [s for s in stems if s in DRY_RUN_CHAPTERS]
    rows, details = [], []
    build = str(WORK / "chapters")
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, spawn) as pool:
        futures = {
            pool.submit(_execute, s, {"device": device}, build): s
            for s in stems
        }
        done, pending = concurrent.futures.wait(futures, timeout=timeout)
        for future in done:
            stem, seconds, failures = future.result()
            status = "ok" if not failures else "DIFFERS"
            rows.append((stem, f"| {stem} | {status} | {seconds:.0f} |"))
            if failures:
                report.fail(f"chapter {stem} on {device}")
                details += [f"- {f}" for f in failures]
        for future in pending:
            stem = futures[future]
            rows.append((stem, f"| {stem} | TIMEOUT | > {timeout:.0f} |"))
            report.fail(f"chapter {stem} did not finish")
            future.cancel()
    text = (
        f"## Chapters with device={device!r}, against the CPU expectations\n\n"
        "| chapter | status | s |\n|---|---|---|\n"
        + "\n".join(r for _, r in sorted(rows))
        + "\n\nDifferences (a result outside its stored tolerance or"
        " bounds):\n\n" + ("\n".join(details) or "- none")
    )
    report.add(text)


def install_benchmark_packages(report: Report, dry: bool) -> str | None:
    """Liger Kernel and Cut Cross-Entropy, into a folder of their own."""
    if dry:
        return None
    target = WORK / "bench_packages"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    cmd += ["--target", str(target), *BENCH_PACKAGES]
    code, out, _ = run(cmd, timeout=180)
    if code != 0:
        report.add(
            "Liger Kernel and Cut Cross-Entropy could not be installed"
            f" (exit {code}); the benchmark runs without them.\n\n"
            f"<pre>{out[-800:]}</pre>"
        )
        return None
    return str(target)


def benchmarks(report, device, dry, timeout):
    packages = install_benchmark_packages(report, dry)
    env = dict(os.environ)
    if packages:
        env["PYTHONPATH"] = os.pathsep.join(
            [packages, env.get("PYTHONPATH", "")]
        )
    out_json = WORK / "linear_cross_entropy.json"
    cmd = [sys.executable, "benchmarks/linear_cross_entropy.py"]
    cmd += ["--device", device, "--json", str(out_json)]
    cmd += ["--smoke", "--repeats", "2"] if dry else ["--repeats", "10"]
    code, out, seconds = run(cmd, timeout, env)
    status = {None: "TIMEOUT", 0: "ok"}.get(code, "FAILED")
    if status != "ok":
        report.fail(f"linear cross-entropy benchmark {status}")
    report.add(
        f"## Output layer plus cross-entropy ({status}, {seconds:.0f} s)\n\n"
        f"```\n{out.strip()[-4000:]}\n```"
    )
    cmd = [sys.executable, "benchmarks/cross_entropy.py", "--device", device]
    if dry:
        cmd.append("--smoke")
    code, out, seconds = run(cmd, timeout, env)
    status = {None: "TIMEOUT", 0: "ok"}.get(code, "FAILED")
    if status != "ok":
        report.fail(f"loss benchmark {status}")
    report.add(
        f"## xentlib's losses against PyTorch's ({status}, {seconds:.0f} s)"
        f"\n\n```\n{out.strip()[-4000:]}\n```"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default="gpu_check_report.md")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--steps",
        nargs="+",
        default=["tests", "chapters", "benchmarks"],
        choices=["tests", "chapters", "benchmarks"],
    )
    args = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print(
            "no CUDA device: run with --dry-run to check the script on a CPU",
            file=sys.stderr,
        )
        return 2
    device = "cuda" if cuda and not args.dry_run else "cpu"
    WORK.mkdir(parents=True, exist_ok=True)
    report = Report(Path(args.report).resolve())
    report.add(
        "# The book on a GPU\n\nA measurement made on the machine named"
        " below by scripts/gpu_check.sh, not part of the book's CI (which"
        " has no GPU).\n\n" + environment_section(device == "cuda")
    )
    # time limits in seconds: about ten minutes in all on the GPU
    limits = (
        dict(tests=600, chapters=900, benchmarks=300)
        if args.dry_run
        else dict(tests=200, chapters=240, benchmarks=240)
    )
    start = time.perf_counter()
    if "tests" in args.steps:
        unit_tests(report, args.dry_run, args.workers, limits["tests"])
    if "chapters" in args.steps:
        chapters_on_device(
            report, device, args.dry_run, args.workers, limits["chapters"]
        )
    if "benchmarks" in args.steps:
        benchmarks(report, device, args.dry_run, limits["benchmarks"])
    verdict = "passed" if not report.failed else "FAILED"
    report.add(
        f"## Verdict: {verdict} ({time.perf_counter() - start:.0f} s)\n\n"
        + "\n".join(f"- {f}" for f in report.failed)
    )
    return 0 if not report.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
