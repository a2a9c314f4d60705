"""Shared fixtures for the influence tests: the real graphs in ../shared/data/graphs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from budding.influence import Graph

GRAPHS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "graphs"


@pytest.fixture(autouse=True)
def clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Engine tests need no database: skip the suite's reset unless the test uses one."""
    yield
    if "database_url" not in request.fixturenames:
        return
    from sqlalchemy import text

    from budding.core.db import Base, get_engine, import_models

    import_models()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


def graph_file(name: str) -> Path:
    """Path of a real graph file, or skip the test with the reason."""
    path = GRAPHS / name
    if not path.exists():
        pytest.skip(f"real graph {name} not found in {GRAPHS} (shared data folder absent)")
    return path


@pytest.fixture(scope="session")
def nethept() -> Graph:
    """NetHEPT as distributed: multi-edges and file probabilities kept."""
    return Graph.from_edgelist(graph_file("NetHEPT_wc.txt"), dedupe=False, drop_self_loops=False)


@pytest.fixture(scope="session")
def slashdot() -> Graph:
    return Graph.from_edgelist(graph_file("soc-Slashdot0902.txt.gz"))


@pytest.fixture
def real_graph() -> object:
    """``real_graph(name)``: path of a real graph file, skipping when absent."""
    return graph_file


HUB = "m0"
# m0 talks to everyone in "ko"; m10 to everyone in "es"; m5 bridges; m19 is isolated
KO = [f"m{i}" for i in range(10)]
ES = [f"m{i}" for i in range(10, 19)]


@pytest.fixture
def community(client: Any, program: Any) -> dict[str, Any]:
    members = [
        {
            "external_id": m,
            "name": f"Member {m}",
            "attributes": {"lang": "ko" if m in KO else "es" if m in ES else "id"},
            "marketing_consent": m not in (HUB, "m10"),
        }
        for m in KO + ES + ["m19"]
    ]
    for body in members:
        assert client.post("/api/v1/members", json=body).status_code == 201
    now = datetime.now(UTC)
    events = []
    n = 0
    for speaker, audience in ((HUB, KO[1:]), ("m10", ES[1:])):
        for target in audience:
            for repeat in range(3):
                n += 1
                events.append(
                    {
                        "id": f"e{n}",
                        "type": "comment",
                        "member": speaker,
                        "target": target,
                        "occurred_at": (now - timedelta(days=repeat)).isoformat(),
                    }
                )
    events.append(
        {"id": "bridge", "type": "comment", "member": "m5", "target": "m10",
         "occurred_at": (now - timedelta(days=400)).isoformat()}
    )  # fmt: skip
    result = client.post("/api/v1/events", json={"events": events}).json()
    assert result["accepted"] == len(events), result
    from budding.core.db import unit_of_work
    from budding.members import service as members
    from budding.referrals import service as referrals

    with unit_of_work() as session:
        from budding.programs import service as programs

        prog = programs.get_program_by_id(session, program.id)
        ids = {
            m.external_id: m.id
            for m in members.members_by_external_ids(session, prog.id, ["m1", "m11"])
        }
        referrals.record_referral(
            session, prog, referrer_id=ids["m1"], referee_id=ids["m11"], source="test",
            signed_up_at=now,
        )  # fmt: skip
    return {"program": program}
