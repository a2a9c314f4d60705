"""The influence capability's part of the demo: its opinion leaders are ranked (and the
ranking kept) while the demo is built, and a small campaign is chosen and simulated once.

So the dashboard's first "Opinion leaders" page reads a kept ranking and the first
campaign plan starts at once: neither waits for numba to compile the kernels, which
takes about 18 s on a fresh install (compiled once, then loaded from numba's disk cache).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from budding.influence import service
from budding.influence.campaign import simulate

# After the capabilities whose referrals and events it ranks.
ORDER = 100


def contribute(session: Session, program: Any, community: Any, rng: Any) -> None:
    service.program_ranking(session, program, refresh=False)
    pg = service.load_graph(session, program)
    if pg.graph.n:
        seeds = service.plan_seeds(pg, "imm", min(5, pg.graph.n))
        simulate(pg.graph, seeds, 256, probability=service.PROBABILITY)
