"""Every docstring example in budding.influence runs."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "budding.influence",
    "budding.influence.graph",
    "budding.influence.probability",
    "budding.influence.centrality",
    "budding.influence.rrsets",
    "budding.influence.maximization",
    "budding.influence.campaign",
    "budding.influence.ranking",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
