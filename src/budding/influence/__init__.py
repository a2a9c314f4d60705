"""Influence: the member graph, opinion leaders, influence maximization, campaign simulation.

>>> from budding.influence import Graph, imm, pagerank
>>> g = Graph.from_edges(["ana", "ana", "bo"], ["bo", "cy", "cy"])
>>> imm(g, 1, probability="uniform:1").seeds
['ana']

See docs/influence.md for the CLI, conventions, models and measured figures.
"""

from budding.influence.centrality import betweenness, coreness, degree, pagerank
from budding.influence.graph import Graph, GraphError
from budding.influence.imm import SeedSet, imm
from budding.influence.io import EdgeListError
from budding.influence.parallel import DaskExecutor, LocalExecutor, get_executor
from budding.influence.probability import EdgeProbabilities, ProbabilityError, edge_probabilities
from budding.influence.ranking import Ranking, leaders_by_group, rank
from budding.influence.rrsets import expected_reach, max_coverage, sample_rr_sets
from budding.influence.simulate import (
    CampaignResult,
    Plan,
    ShareModel,
    SpreadEstimate,
    calibrate,
    compare,
    simulate,
    spread,
)

__all__ = [
    "CampaignResult",
    "DaskExecutor",
    "EdgeListError",
    "EdgeProbabilities",
    "Graph",
    "GraphError",
    "LocalExecutor",
    "Plan",
    "ProbabilityError",
    "Ranking",
    "SeedSet",
    "ShareModel",
    "SpreadEstimate",
    "betweenness",
    "calibrate",
    "compare",
    "coreness",
    "degree",
    "edge_probabilities",
    "expected_reach",
    "get_executor",
    "imm",
    "leaders_by_group",
    "max_coverage",
    "pagerank",
    "rank",
    "sample_rr_sets",
    "simulate",
    "spread",
]
