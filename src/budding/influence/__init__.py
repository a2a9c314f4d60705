"""Influence: the member graph, opinion leaders, influence maximization, campaign simulation.

>>> from budding.influence import Graph, imm, pagerank
>>> g = Graph.from_edges(["ana", "ana", "bo"], ["bo", "cy", "cy"])
>>> imm(g, 1, probability="uniform:1").seeds
['ana']

See docs/influence.md for the CLI, conventions, models and measured figures.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve on first use (PEP 562), so importing a submodule such as the
# CLI does not pay for numba until the engine is needed.
_EXPORTS = {
    "CampaignResult": "budding.influence.campaign",
    "DaskExecutor": "budding.influence.parallel",
    "EdgeListError": "budding.influence.io",
    "EdgeProbabilities": "budding.influence.probability",
    "Graph": "budding.influence.graph",
    "GraphError": "budding.influence.graph",
    "LocalExecutor": "budding.influence.parallel",
    "Plan": "budding.influence.campaign",
    "ProbabilityError": "budding.influence.probability",
    "Ranking": "budding.influence.ranking",
    "SeedSet": "budding.influence.maximization",
    "ShareModel": "budding.influence.campaign",
    "SpreadEstimate": "budding.influence.campaign",
    "betweenness": "budding.influence.centrality",
    "calibrate": "budding.influence.campaign",
    "compare": "budding.influence.campaign",
    "coreness": "budding.influence.centrality",
    "degree": "budding.influence.centrality",
    "edge_probabilities": "budding.influence.probability",
    "expected_reach": "budding.influence.rrsets",
    "get_executor": "budding.influence.parallel",
    "imm": "budding.influence.maximization",
    "leaders_by_group": "budding.influence.ranking",
    "max_coverage": "budding.influence.rrsets",
    "pagerank": "budding.influence.centrality",
    "rank": "budding.influence.ranking",
    "sample_rr_sets": "budding.influence.rrsets",
    "simulate": "budding.influence.campaign",
    "spread": "budding.influence.campaign",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
