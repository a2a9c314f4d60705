"""The fission tree on a forest: parents, generations, descendants, generation sizes."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import insert

from budding.core.db import unit_of_work, utcnow
from budding.members import service as members
from budding.programs import service as programs
from budding.referrals import service, tree
from budding.referrals.models import Referral

# a -> b, c; b -> d, e; d -> f; g -> h; i on its own
EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("b", "e"), ("d", "f"), ("g", "h")]


def _forest(program) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        ids = members.ensure_members(session, prog.id, "abcdefghi")
        start = utcnow() - timedelta(days=10)
        for n, (parent, child) in enumerate(EDGES):
            fact = service.record_referral(
                session,
                prog,
                referrer_id=ids[parent],
                referee_id=ids[child],
                source="link",
                signed_up_at=start + timedelta(hours=n),
                channel="line",
            )
            assert fact is not None
        return ids


def test_whole_forest(client, program) -> None:  # type: ignore[no-untyped-def]
    _forest(program)
    body = client.get("/api/v1/fission-tree", params={"depth": 10}).json()
    nodes = {n["external_id"]: n for n in body["nodes"]}
    assert set(nodes) == set("abcdefgh")  # i referred nobody and nobody referred i
    assert nodes["a"]["parent"] is None and nodes["a"]["descendants"] == 5
    assert nodes["a"]["children"] == 2 and nodes["b"]["descendants"] == 3
    assert nodes["f"]["parent"] == "d" and nodes["f"]["generation"] == 3
    assert nodes["g"]["descendants"] == 1 and nodes["h"]["channel"] == "line"
    assert body["generation_sizes"] == {"1": 3, "2": 2, "3": 1}
    assert body["truncated"] is False


def test_subtree_depth_and_limits(client, program) -> None:  # type: ignore[no-untyped-def]
    _forest(program)
    body = client.get("/api/v1/fission-tree", params={"root": "b", "depth": 1}).json()
    assert [(n["external_id"], n["depth"]) for n in body["nodes"]] == [("b", 0), ("d", 1), ("e", 1)]
    assert body["generation_sizes"] == {"1": 2, "2": 1}
    body = client.get("/api/v1/fission-tree", params={"max_nodes": 3, "depth": 10}).json()
    assert len(body["nodes"]) == 3 and body["truncated"] is True
    r = client.get("/api/v1/fission-tree", params={"depth": 99})
    assert r.status_code == 422 and "depth" in r.json()["error"]["fields"]
    r = client.get("/api/v1/fission-tree", params={"root": "nobody"})
    assert r.status_code == 404 and "root" in r.json()["error"]["fields"]


def test_member_referrals(client, program) -> None:  # type: ignore[no-untyped-def]
    _forest(program)
    body = client.get("/api/v1/members/b/referrals").json()
    assert body["referrer"] == "a" and body["generation"] == 1
    assert body["children"] == 2 and body["descendants"] == 3
    assert body["generation_sizes"] == {"1": 2, "2": 1}
    assert [f["external_id"] for f in body["referred"]] == ["d", "e"]
    assert body["referral_url"].endswith("/r/" + body["referral_code"])


def test_generations_edges_loops_and_review(session, program) -> None:  # type: ignore[no-untyped-def]
    ids = _forest(program)
    prog = programs.get_program(session, program.slug)
    sizes = service.generation_sizes(session, prog)
    assert sizes == {0: 3, 1: 3, 2: 2, 3: 1}  # a, g, i nobody referred
    # A loop is refused: f cannot bring in a.
    assert (
        service.record_referral(
            session,
            prog,
            referrer_id=ids["f"],
            referee_id=ids["a"],
            source="link",
            signed_up_at=utcnow(),
        )
        is None
    )
    # i brings in g late: g's tree moves a generation down.
    assert service.record_referral(
        session,
        prog,
        referrer_id=ids["i"],
        referee_id=ids["g"],
        source="link",
        signed_up_at=utcnow(),
    )
    edges = {
        (e.referrer_id, e.referee_id): e.generation for e in service.referral_edges(session, prog)
    }
    assert edges[(ids["g"], ids["h"])] == 2 and edges[(ids["i"], ids["g"])] == 1
    # A held referral leaves the tree and the edges until it is approved.
    held = service.referral_of(session, prog, ids["e"])
    assert held is not None
    service.set_referral_status(session, held.id, "held", "velocity")
    assert ids["e"] not in {e.referee_id for e in service.referral_edges(session, prog)}
    assert service.get_referral(session, held.id).status == "held"
    assert tree.Forest.load(session, prog).descendants(ids["b"]) == 2
    service.set_referral_status(session, held.id, "approved", "looks fine")
    assert tree.Forest.load(session, prog).descendants(ids["b"]) == 3
    friends = service.referred_members(session, prog, members.get_member_by_id(session, ids["b"]))
    assert [(f.external_id, f.status) for f in friends] == [("d", "active"), ("e", "approved")]


def test_ten_thousand_nodes_stay_fast(session, program) -> None:  # type: ignore[no-untyped-def]
    prog = programs.get_program(session, program.slug)
    n = 12_000
    ids = members.ensure_members(session, prog.id, [f"u{i}" for i in range(n)])
    now = utcnow()
    rows = []
    for i in range(1, n):  # a heap-shaped tree: u{i} brought in by u{(i-1)//3}
        parent = (i - 1) // 3
        generation = 0
        j = i
        while j:
            j = (j - 1) // 3
            generation += 1
        rows.append(
            {
                "program_id": prog.id,
                "referrer_member_id": ids[f"u{parent}"],
                "referee_member_id": ids[f"u{i}"],
                "source": "link",
                "generation": generation,
                "status": "active",
                "status_reason": "",
                "fraud_reasons": [],
                "signed_up_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(insert(Referral.__table__), rows)
    started = time.perf_counter()
    root = members.get_member_by_id(session, ids["u0"])
    forest = tree.Forest.load(session, prog)
    sub = tree.subtree(session, prog, root, depth=3, forest=forest)
    kids, total = tree.children_of(session, prog, root, forest=forest)
    path = tree.path_to(session, prog, members.get_member_by_id(session, ids[f"u{n - 1}"]))
    elapsed = time.perf_counter() - started
    assert forest.descendants(ids["u0"]) == n - 1
    assert len(sub.nodes) == 1 + 3 + 9 + 27 and total == 3 and len(kids) == 3
    assert path[0].external_id == "u0" and path[-1].external_id == f"u{n - 1}"
    assert sum(forest.generation_sizes(ids["u0"]).values()) == n - 1
    assert elapsed < 5, elapsed


def _wide_forest(program, roots: int) -> None:  # type: ignore[no-untyped-def]
    """``roots`` trees: root k brought in k+1 friends (so root k has k+1 descendants)."""
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        names = [f"r{k:02d}" for k in range(roots)]
        names += [f"r{k:02d}f{j}" for k in range(roots) for j in range(k + 1)]
        ids = members.ensure_members(session, prog.id, names)
        start = utcnow() - timedelta(days=5)
        for k in range(roots):
            for j in range(k + 1):
                service.record_referral(
                    session,
                    prog,
                    referrer_id=ids[f"r{k:02d}"],
                    referee_id=ids[f"r{k:02d}f{j}"],
                    source="link",
                    signed_up_at=start + timedelta(minutes=k * 10 + j),
                )


def test_a_forest_is_shown_a_page_of_roots_at_a_time(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """Hundreds of roots crowd the dashboard's tree: it pages them, largest trees first, and
    search still reaches a member of the smallest tree (its chain comes with the nodes)."""
    from tests.accounts.helpers import staff_client

    _wide_forest(program, 30)
    staff_client(anon_client)
    url = "/admin/acme/fission-tree/children.json"
    first = anon_client.get(url, params={"limit": 10}).json()
    assert first["total"] == 30 and first["offset"] == 0
    assert [n["id"] for n in first["nodes"]] == [f"r{k:02d}" for k in range(29, 19, -1)]
    second = anon_client.get(url, params={"limit": 10, "offset": 10}).json()
    assert [n["id"] for n in second["nodes"]] == [f"r{k:02d}" for k in range(19, 9, -1)]
    last = anon_client.get(url, params={"limit": 10, "offset": 25}).json()
    assert [n["id"] for n in last["nodes"]] == [f"r{k:02d}" for k in range(4, -1, -1)]
    assert anon_client.get(url, params={"offset": 30}).json()["nodes"] == []
    kids = anon_client.get(url, params={"node": "r05", "limit": 2, "offset": 2}).json()
    assert kids["total"] == 6 and len(kids["nodes"]) == 2
    found = anon_client.get("/admin/acme/fission-tree/search.json", params={"q": "r00f0"}).json()
    hit = found["results"][0]
    assert hit["path"] == ["r00", "r00f0"]
    assert [n["id"] for n in hit["nodes"]] == ["r00", "r00f0"]
    assert hit["nodes"][0]["descendants"] == 1 and hit["nodes"][1]["parent"] == "r00"
    page = anon_client.get("/admin/acme/fission-tree")
    assert page.status_code == 200 and 'data-root-page="25"' in page.text
