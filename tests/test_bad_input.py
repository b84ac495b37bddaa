"""Bad input never passes silently: the table in ``tests/bad_input``.

Every public function and class of xentlib has a row there (or an
exemption with its reason); each row's call works with its good arguments,
and each bad argument is rejected with a ValueError that names it.
"""

import pytest
from bad_input import outcome
from bad_input.table import all_rows, exemptions, public_callables

ROWS = all_rows()
CASES = [
    pytest.param(row, key, name, bad, id=f"{row.id}-{key}-{label}")
    for row in ROWS
    for key, name, label, bad in row.cases()
]


def test_every_public_callable_has_a_row_or_a_stated_exemption():
    covered = {row.covers for row in ROWS} | set(exemptions())
    missing = [name for name in public_callables() if name not in covered]
    assert not missing, (
        "public callables without a row in tests/bad_input (add one, or "
        f"an EXEMPT entry with the reason): {missing}"
    )
    unknown = sorted(covered - set(public_callables()))
    assert not unknown, f"rows or exemptions for no public callable: {unknown}"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_the_row_works_with_its_good_arguments(row):
    row.call(row.values())


@pytest.mark.parametrize("row, key, name, bad", CASES)
def test_a_bad_argument_is_rejected_with_an_error_naming_it(
    row, key, name, bad
):
    kind, message = outcome(row, key, name, bad)
    assert kind == "clear", f"{kind}: {message}"
