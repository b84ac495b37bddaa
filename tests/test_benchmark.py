"""xentlib.benchmark and the benchmark scripts: they run, and time fairly."""

import pytest


def test_the_benchmark_script_runs_at_a_tiny_size(root, capsys, tmp_path):
    import json
    import runpy

    script = runpy.run_path(
        str(root / "benchmarks" / "linear_cross_entropy.py")
    )
    out_file = tmp_path / "result.json"
    argv = ["--smoke", "--device", "cpu", "--repeats", "2"]
    assert script["main"]([*argv, "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("method")
    )
    rows = {line.split()[0]: line.split() for line in lines[start + 1 :]}
    assert set(rows) == {"naive", "xentlib", "xentlib_recompute"}
    assert rows["naive"][3] == "1.00x" and rows["naive"][5] == "1.00x"
    assert "failed" not in out
    saved = json.loads(out_file.read_text())
    assert [r["method"] for r in saved["results"]] == list(rows)


def test_the_loss_benchmark_script_runs_at_a_tiny_size(root, capsys):
    import runpy

    script = runpy.run_path(str(root / "benchmarks" / "cross_entropy.py"))
    assert script["main"](["--smoke", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for loss in ("cross_entropy", "binary_cross_entropy"):
        # 2 shapes x 2 dtypes
        assert sum(line.startswith(f"{loss} ") for line in lines) == 4
    assert "largest ratio of medians" in out


def test_benchmark_measures_one_method_in_process():
    from xentlib.benchmark import measure

    m = measure(
        "xentlib", tokens=32, hidden=8, vocab=100, repeats=2, chunk_size=8
    )
    assert m.error is None and m.seconds > 0 and m.peak_bytes > 0
    assert m.seconds_low <= m.seconds <= m.seconds_high
    with pytest.raises(ValueError, match="dtype must be one of"):
        measure("naive", tokens=4, hidden=4, vocab=4, dtype="int8")


def test_time_interleaved_rotates_the_order_and_counts_the_rounds():
    from xentlib.benchmark import time_interleaved

    calls = []
    timings = time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeats=3,
        warmup=1,
    )
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [len(t.seconds) for t in timings.values()] == [3, 3]
    with pytest.raises(ValueError, match="repeats must be a positive"):
        time_interleaved({"a": lambda: None}, repeats=0)
