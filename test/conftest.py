"""Test ordering for parallel runs (``tools/run_tests.sh``: pytest-xdist, one test file
per worker at a time, ``--dist loadfile --no-loadscope-reorder``).

The two end-to-end recipe files hold about two thirds of the suite's time between them:
under xdist they start first, one on each worker, and the many short files fill in
around them, so that neither worker ends with a long file still to start. A plain
``pytest`` run (no ``-n``) keeps the files' own order.
"""
import os
from typing import List

import pytest

# Longest first: the tiny mini_use recipe and its comparison, then the three enh.sh runs.
LONGEST = ("test_mini_use_recipe.py", "test_enh_recipe.py")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST)))  # stable: the rest keep their order
