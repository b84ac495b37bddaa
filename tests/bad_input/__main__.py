"""Print how every case of the bad-input table ends, by module.

Run from the repository root: ``.venv/bin/python tests/bad_input``.
"""

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bad_input import outcome  # noqa: E402
from bad_input.table import all_rows  # noqa: E402

counts = collections.defaultdict(collections.Counter)
odd = []
for row in all_rows():
    module = row.covers.split(".")[1]
    for key, name, label, bad in row.cases():
        result, message = outcome(row, key, name, bad)
        counts[module][result] += 1
        if result != "clear":
            odd.append(f"{row.id}: {key} = {label}: {result}: {message}")
kinds = ["clear", "unnamed", "cryptic", "accepted", "hang"]
print(f"{'module':<16}" + "".join(f"{k:>10}" for k in kinds))
total = collections.Counter()
for module in sorted(counts):
    total.update(counts[module])
    print(f"{module:<16}" + "".join(f"{counts[module][k]:>10}" for k in kinds))
print(f"{'all':<16}" + "".join(f"{total[k]:>10}" for k in kinds))
n = sum(total.values())
print(f"\n{n} cases; clear errors {total['clear'] / max(n, 1):.1%}")
for line in odd:
    print(" ", line)
