"""Device choice, seeding and result recording."""

import json
import random

import nbformat
import numpy as np
import pytest
import torch

import xentlib
from xentlib.book import compare_results, extract_results
from xentlib.results import GLUE_PREFIX, RECORD_METADATA_KEY


def test_auto_device_is_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert xentlib.resolve_device("auto").type == expected
    assert xentlib.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the error raised without a GPU"
)
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        xentlib.resolve_device("cuda")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu'"):
        xentlib.resolve_device("tpu7")


def test_seeding_makes_every_generator_repeat():
    def draw(seed):
        rng = xentlib.seed_everything(seed)
        return (
            random.random(),
            np.random.rand(),
            torch.rand(3).tolist(),
            rng.normal(),
        )

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_a_clear_error(seed):
    with pytest.raises(
        ValueError, match="seed must be a non-negative integer"
    ):
        xentlib.seed_everything(seed)


def test_record_converts_to_python_numbers_and_remembers_them():
    xentlib.clear_recorded()
    assert xentlib.record("a_float", torch.tensor(0.25)) == 0.25
    assert isinstance(xentlib.record("an_int", np.int64(3)), int)
    assert xentlib.record("a_flag", True) == 1
    assert xentlib.recorded() == {"a_float": 0.25, "an_int": 3, "a_flag": 1}
    xentlib.clear_recorded()
    assert xentlib.recorded() == {}


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("bad name", 1.0, "name must be an identifier"),
        ("x", float("nan"), "must be finite"),
        ("x", torch.ones(2), "must be a single number"),
        ("x", "0.5", "must be a real number"),
    ],
)
def test_record_rejects_bad_names_and_values(name, value, match):
    with pytest.raises(ValueError, match=match):
        xentlib.record(name, value)


def _glued_output(name, text):
    return nbformat.v4.new_output(
        "display_data",
        data={GLUE_PREFIX + "text/plain": text},
        metadata={
            "scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX},
            RECORD_METADATA_KEY: True,
        },
    )


def test_results_are_extracted_exactly_from_an_executed_notebook():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("...")
    cell.outputs = [
        _glued_output("x", repr(0.1 + 0.2)),
        _glued_output("n", "7"),
    ]
    other = nbformat.v4.new_code_cell("...")
    other.outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "1.0"})
    ]
    nb.cells = [cell, other]
    assert extract_results(nb) == {"x": 0.1 + 0.2, "n": 7}
    cell.outputs.append(_glued_output("x", "1.0"))
    with pytest.raises(ValueError, match="recorded twice"):
        extract_results(nb)


def test_comparison_names_the_chapter_result_value_and_expectation():
    expected = {
        "a": {"value": 1.0, "rtol": 0.0, "atol": 0.01},
        "b": {"value": 0.5, "atol": 1.0, "max": 0.9},
        "gone": {"value": 1.0},
    }
    assert (
        compare_results("ch", {"a": 1.005, "b": 0.5, "gone": 1.0}, expected)
        == []
    )
    failures = compare_results(
        "ch", {"a": 1.5, "b": 0.95, "new": 2.0}, expected
    )
    text = "\n".join(failures)
    assert "ch: result 'a' = 1.5, expected 1.0 within 0.01" in text
    assert "ch: result 'b' = 0.95 is above its required maximum 0.9" in text
    assert "ch: result 'gone' is expected but was not recorded" in text
    assert "ch: result 'new' = 2.0 has no stored expectation" in text
    assert len(failures) == 4


def test_expectation_files_are_well_formed(root):
    for path in sorted((root / "tests" / "expected").glob("*.json")):
        spec = json.loads(path.read_text())
        assert (root / "chapters" / f"{path.stem}.ipynb").is_file(), (
            f"{path.name} has no chapter"
        )
        for name, entry in spec.items():
            assert set(entry) <= {"value", "rtol", "atol", "min", "max"}, (
                path.name,
                name,
            )
            assert "value" in entry or "min" in entry or "max" in entry, (
                path.name,
                name,
            )


def test_regenerating_keeps_tolerances_and_refuses_to_break_bounds(
    tmp_path,
):
    from xentlib.book import ChapterRun, load_expected, write_expected

    (tmp_path / "tests" / "expected").mkdir(parents=True)
    path = tmp_path / "tests" / "expected" / "ch.json"
    path.write_text(
        json.dumps(
            {
                "a": {"value": 1.0, "rtol": 0.1, "min": 0.5},
                "old": {"value": 3.0},
            }
        )
    )
    notes = write_expected(
        tmp_path,
        ChapterRun("ch", 1.0, tmp_path / "ch.ipynb", {"a": 0.9, "b": 2.0}),
    )
    assert load_expected(tmp_path, "ch") == {
        "a": {"value": 0.9, "rtol": 0.1, "min": 0.5},
        "b": {"value": 2.0, "rtol": 1e-6, "atol": 1e-9},
    }
    assert any("new result 'b'" in n for n in notes) and any(
        "dropped result 'old'" in n for n in notes
    )
    with pytest.raises(ValueError, match="breaks its bounds"):
        write_expected(
            tmp_path,
            ChapterRun("ch", 1.0, tmp_path / "ch.ipynb", {"a": 0.1, "b": 2.0}),
        )
    assert load_expected(tmp_path, "ch")["a"]["value"] == 0.9


def test_as_generator_gives_the_same_draws_for_the_same_seed():
    from xentlib.runtime import as_generator

    a = torch.rand(5, generator=as_generator(3))
    b = torch.rand(5, generator=as_generator(3))
    c = torch.rand(5, generator=as_generator(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_as_generator_passes_a_generator_through_and_none_is_global():
    from xentlib.runtime import as_generator

    gen = torch.Generator().manual_seed(0)
    assert as_generator(gen) is gen
    assert as_generator(None) is torch.default_generator


@pytest.mark.parametrize(
    "bad, message",
    [
        (-1, "non-negative integer seed"),
        (1.5, "int seed, a torch.Generator or None; got float"),
        (True, "got bool"),
        ("0", "got str"),
        (np.random.default_rng(0), "instead of a numpy generator"),
    ],
)
def test_as_generator_rejects_what_is_not_a_seed_or_generator(bad, message):
    from xentlib.runtime import as_generator

    with pytest.raises(ValueError, match="rng must be") as err:
        as_generator(bad)
    assert message in str(err.value)
