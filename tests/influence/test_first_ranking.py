"""A large program's first ranking is a background job: the first view answers at once
(202 from the API, a self-refreshing panel on the page), one job ranks it however many
views ask, and the next view after the job answers the ranking. A failed job is shown,
can be retried, and is not enqueued again on every view. Small programs are still
ranked inside the request."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from tests.influence.test_ranking_cache import _no_graph

from budding.core import jobs
from budding.core.db import unit_of_work, utcnow

KIND = "influence.refresh_ranking"


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    """The community (20 members) counts as a large program."""
    from budding.influence import service

    monkeypatch.setattr(service, "INLINE_RANKING_MAX_MEMBERS", 5)


def _refreshes(program_id: int) -> list[Any]:
    with unit_of_work() as session:
        return jobs.list_jobs(session, program_id, kind=KIND)


def test_a_small_programs_first_view_is_ranked_inline(
    client: Any, community: dict[str, Any]
) -> None:
    answer = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert answer.status_code == 200 and answer.json()["current"]
    assert answer.json()["leaders"][0]["id"] in ("m0", "m10")
    assert _refreshes(community["program"].id) == []


def test_a_large_programs_first_view_answers_202_and_a_job_ranks_it(
    client: Any, community: dict[str, Any], large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    program_id = community["program"].id
    with monkeypatch.context() as m:
        _no_graph(m)  # the request builds no graph
        first = client.get("/api/v1/influence/leaders", params={"top": 3})
        again = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert first.status_code == 202, first.text
    body = first.json()
    job_id = body["job_id"]
    assert body == {
        "state": "computing",
        "job_id": job_id,
        "status": "queued",
        "progress": 0.0,
        "message": "",
        "status_url": f"/api/v1/jobs/{job_id}",
    }
    assert first.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert again.status_code == 202 and again.json()["job_id"] == job_id
    assert [j.id for j in _refreshes(program_id)] == [job_id]
    assert client.get(body["status_url"]).json()["kind"] == KIND
    assert jobs.run_due() == 1
    ranked = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert ranked.status_code == 200 and ranked.json()["current"]
    assert ranked.json()["leaders"][0]["id"] in ("m0", "m10")


def test_concurrent_first_views_enqueue_one_job(community: dict[str, Any], large: None) -> None:
    """Each view in its own transaction, all at once: every one answers "computing" and
    names the same job."""
    from budding.influence import service
    from budding.programs import service as programs

    n = 8
    barrier = threading.Barrier(n)
    found: list[Any] = [None] * n

    def view(i: int) -> None:
        barrier.wait()
        try:
            with unit_of_work() as session:  # a view catches it and commits the job
                program = programs.get_program_by_id(session, community["program"].id)
                try:
                    service.program_ranking(session, program)
                except service.RankingPending as pending:
                    found[i] = pending.job.id
        except Exception as exc:  # the outcome under test
            found[i] = exc

    threads = [threading.Thread(target=view, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    jobs_made = _refreshes(community["program"].id)
    assert len(jobs_made) == 1 and found == [jobs_made[0].id] * n, found


def test_the_page_shows_a_panel_that_polls_then_the_table(
    anon_client: Any, community: dict[str, Any], large: None
) -> None:
    from tests.influence.test_pages import sign_in

    sign_in(anon_client)
    page = anon_client.get("/admin/acme/influence", params={"by": "pagerank", "top": 5})
    assert page.status_code == 200
    assert 'data-testid="ranking-pending"' in page.text
    assert 'data-testid="leaders-table"' not in page.text
    assert "The ranking is being computed" in page.text
    assert 'hx-trigger="every 2s"' in page.text
    assert 'hx-get="/admin/acme/influence?by=pagerank&amp;top=5"' in page.text
    ko = anon_client.get("/admin/acme/influence", headers={"accept-language": "ko"})
    assert "순위를 계산하고 있습니다" in ko.text
    poll = anon_client.get("/admin/acme/influence", headers={"hx-request": "true"})
    assert 'data-testid="ranking-pending"' in poll.text and "<html" not in poll.text
    assert "hx-refresh" not in poll.headers
    assert len(_refreshes(community["program"].id)) == 1
    assert jobs.run_due() == 1
    done = anon_client.get("/admin/acme/influence", headers={"hx-request": "true"})
    assert done.headers.get("hx-refresh") == "true"
    table = anon_client.get("/admin/acme/influence")
    assert 'data-testid="leaders-table"' in table.text
    assert 'data-testid="ranking-pending"' not in table.text


def test_a_failed_first_ranking_is_shown_retried_and_not_looped(
    anon_client: Any,
    client: Any,
    community: dict[str, Any],
    large: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.influence.test_pages import sign_in

    from budding.influence import service

    def broken(*_: Any, **__: Any) -> Any:
        raise MemoryError("the graph does not fit")

    csrf = sign_in(anon_client)
    program_id = community["program"].id
    job_id = client.get("/api/v1/influence/leaders").json()["job_id"]
    with monkeypatch.context() as m:
        m.setattr(service, "ranking_payload", broken)
        assert jobs.run_due() == 1  # the first attempt fails; one retry is scheduled
        with unit_of_work() as session:  # ... which is due now
            session.execute(update(jobs.JobRecord).values(run_after=utcnow()))
        assert jobs.run_due() == 1
    assert [j.status for j in _refreshes(program_id)] == ["failed"]

    answer = client.get("/api/v1/influence/leaders")
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "ranking_failed" and error["job_id"] == job_id
    assert "the graph does not fit" in error["message"]
    assert 3500 <= int(answer.headers["retry-after"]) <= 3600
    page = anon_client.get("/admin/acme/influence", headers={"accept-language": "es"})
    assert 'data-testid="ranking-failed"' in page.text and "hx-trigger" not in page.text
    assert "No se pudo calcular la clasificación" in page.text
    assert f"/admin/acme/influence/ranking/{job_id}/retry" in page.text
    # views after the failure enqueue nothing: no job fails again and again
    assert [j.id for j in _refreshes(program_id)] == [job_id] and jobs.run_due() == 0

    retried = anon_client.post(
        f"/admin/acme/influence/ranking/{job_id}/retry",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/acme/influence"
    assert 'data-testid="ranking-pending"' in anon_client.get("/admin/acme/influence").text
    assert jobs.run_due() == 1
    assert client.get("/api/v1/influence/leaders").status_code == 200


def test_an_hour_after_a_failure_a_view_tries_again(
    client: Any, community: dict[str, Any], large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budding.core.jobs import JobFailed
    from budding.influence import service

    def broken(*_: Any, **__: Any) -> Any:
        raise JobFailed("no")

    first = client.get("/api/v1/influence/leaders").json()["job_id"]
    with monkeypatch.context() as m:
        m.setattr(service, "ranking_payload", broken)
        assert jobs.run_due() == 1
    assert client.get("/api/v1/influence/leaders").status_code == 503
    with unit_of_work() as session:  # it failed over an hour ago, on the key of that hour
        hour_ago = utcnow() - timedelta(hours=1, seconds=1)
        session.execute(
            update(jobs.JobRecord).values(finished_at=hour_ago, dedupe_key="an earlier hour")
        )
    again = client.get("/api/v1/influence/leaders")
    assert again.status_code == 202 and again.json()["job_id"] != first
    assert jobs.run_due() == 1
    assert client.get("/api/v1/influence/leaders").status_code == 200


def test_the_api_documents_the_202_and_503_answers(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    responses = spec["paths"]["/api/v1/influence/leaders"]["get"]["responses"]
    assert {"200", "202", "503"} <= set(responses)
    schema = responses["202"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.rsplit("/", 1)[1] == "RankingPendingOut"


def test_a_cleared_ranking_is_computed_again_by_a_new_job(
    client: Any, community: dict[str, Any], large: None
) -> None:
    """The finished job of the same data does not stand in for the ranking it kept."""
    from budding.influence import cache

    first = client.get("/api/v1/influence/leaders").json()["job_id"]
    assert jobs.run_due() == 1
    with unit_of_work() as session:
        cache.clear(session, community["program"].id)
    again = client.get("/api/v1/influence/leaders")
    assert again.status_code == 202 and again.json()["job_id"] != first
    assert client.get("/api/v1/influence/leaders").json()["job_id"] == again.json()["job_id"]
    assert jobs.run_due() == 1
    assert client.get("/api/v1/influence/leaders").status_code == 200


def test_the_cli_ranks_a_large_program_in_the_terminal(
    community: dict[str, Any], large: None
) -> None:
    import json

    from typer.testing import CliRunner

    from budding.influence.cli import app

    ranked = CliRunner().invoke(app, ["rank", "--program", "acme", "--top", "2", "--json"])
    assert ranked.exit_code == 0, ranked.output
    assert len(json.loads(ranked.stdout)["leaders"]) == 2
    assert _refreshes(community["program"].id) == []


def test_the_jobs_step_is_shown_in_the_staffs_language(
    anon_client: Any, community: dict[str, Any], large: None
) -> None:
    from tests.influence.test_pages import sign_in

    from budding.core.jobs import JobRecord

    sign_in(anon_client)
    anon_client.get("/admin/acme/influence")
    (job,) = _refreshes(community["program"].id)
    with unit_of_work() as s:  # the step the job reports first
        s.execute(
            update(JobRecord)
            .where(JobRecord.id == job.id)
            .values(message="loading the member graph")
        )
    ko = {"accept-language": "ko"}
    for url in ("/admin/acme/influence", "/admin/acme/jobs", f"/admin/acme/jobs/{job.id}"):
        assert "loading the member graph" in anon_client.get(url).text, url
        page = anon_client.get(url, headers=ko).text
        assert "회원 그래프를 불러오는 중" in page and "loading the member graph" not in page, url


def _kept_then_failed_refresh(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> int:
    """The community's ranking kept, then new data whose refresh job failed: the job's id."""
    from datetime import UTC, datetime

    from budding.core.jobs import JobFailed
    from budding.influence import service

    def broken(*_: Any, **__: Any) -> Any:
        raise JobFailed("the graph does not fit in memory " + "x" * 400)

    assert client.get("/api/v1/influence/leaders").json()["current"]
    now = datetime.now(UTC).isoformat()
    event = {"id": "late", "type": "comment", "member": "m19", "target": "m1", "occurred_at": now}
    assert client.post("/api/v1/events", json={"events": [event]}).json()["accepted"] == 1
    stale = client.get("/api/v1/influence/leaders").json()
    assert not stale["current"]
    with monkeypatch.context() as m:
        m.setattr(service, "ranking_payload", broken)
        assert jobs.run_due() == 1
    (job,) = _refreshes(community["program"].id)
    assert job.status == jobs.FAILED
    return job.id


def test_program_ranking_names_the_failed_refresh_job(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older ranking answers while the job ranking the newest data failed: the ranking
    names that job (and no view enqueues it again within FAILED_RANKING_PAUSE)."""
    from budding.influence import service
    from budding.programs import service as programs

    job_id = _kept_then_failed_refresh(client, community, monkeypatch)
    with unit_of_work() as session:
        program = programs.get_program_by_id(session, community["program"].id)
        ranked = service.program_ranking(session, program)
        assert not ranked.current and ranked.members == 20
        assert ranked.refresh_job is not None
        assert ranked.refresh_job.id == job_id and ranked.refresh_job.status == jobs.FAILED
        assert ranked.refresh_failed
    assert [j.id for j in _refreshes(community["program"].id)] == [job_id]
    assert jobs.run_due() == 0


def test_the_api_says_the_refresh_failed(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    current = client.get("/api/v1/influence/leaders").json()
    assert current["current"] and current["refresh_job"] is None
    job_id = _kept_then_failed_refresh(client, community, monkeypatch)
    answer = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert not body["current"] and len(body["leaders"]) == 3
    assert body["refresh_job"] == {
        "id": job_id,
        "status": "failed",
        "status_url": f"/api/v1/jobs/{job_id}",
    }
    assert client.get(body["refresh_job"]["status_url"]).json()["status"] == "failed"
    spec = client.get("/api/v1/openapi.json").json()
    leaders_out = spec["components"]["schemas"]["LeadersOut"]
    assert "refresh_job" in leaders_out["properties"]
    assert leaders_out["properties"]["refresh_job"].get("description")


def test_the_page_says_ranking_the_newest_data_failed_and_offers_a_retry(
    anon_client: Any, client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.influence.test_pages import sign_in

    csrf = sign_in(anon_client)
    job_id = _kept_then_failed_refresh(client, community, monkeypatch)
    page = anon_client.get("/admin/acme/influence").text
    assert 'data-testid="ranking-refresh-failed"' in page
    assert 'data-testid="ranking-updating"' not in page
    assert "being ranked now" not in page
    assert "Ranking the newest data failed" in page
    assert "the graph does not fit in memory" in page and "x" * 400 not in page  # kept short
    assert 'data-testid="leaders-table"' in page and "Member m0" in page  # the older one
    assert f"/admin/acme/influence/ranking/{job_id}/retry" in page
    assert 'data-testid="ranking-retry"' in page
    es = anon_client.get("/admin/acme/influence", headers={"accept-language": "es"}).text
    assert 'data-testid="ranking-refresh-failed"' in es
    assert "Ranking the newest data failed" not in es and "Try again now" not in es
    assert jobs.run_due() == 0  # views enqueue nothing

    retried = anon_client.post(
        f"/admin/acme/influence/ranking/{job_id}/retry",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    again = anon_client.get("/admin/acme/influence").text
    assert 'data-testid="ranking-updating"' in again
    assert 'data-testid="ranking-refresh-failed"' not in again
    assert jobs.run_due() == 1
    done = anon_client.get("/admin/acme/influence").text
    assert 'data-testid="ranking-updating"' not in done
    assert 'data-testid="ranking-refresh-failed"' not in done


def test_an_analyst_sees_the_failure_without_the_retry_button(
    anon_client: Any, client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.influence.test_pages import sign_in

    sign_in(anon_client, role="analyst")
    _kept_then_failed_refresh(client, community, monkeypatch)
    page = anon_client.get("/admin/acme/influence").text
    assert 'data-testid="ranking-refresh-failed"' in page
    assert 'data-testid="ranking-retry"' not in page


def test_a_small_program_with_many_targeted_events_gets_a_job(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few members but more targeted events than INLINE_RANKING_MAX_INTERACTIONS: ranking
    it would take seconds, so the first view answers 202 and a job ranks it."""
    from budding.influence import service

    program_id = community["program"].id
    with unit_of_work() as session:  # the community's events with a target
        targeted = members_count_targeted(session, program_id)
    assert 20 < targeted < 100
    monkeypatch.setattr(service, "INLINE_RANKING_MAX_INTERACTIONS", targeted - 1)
    with monkeypatch.context() as m:
        _no_graph(m)  # the request builds no graph
        first = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert first.status_code == 202, first.text
    assert [j.id for j in _refreshes(program_id)] == [first.json()["job_id"]]
    assert jobs.run_due() == 1
    assert client.get("/api/v1/influence/leaders").json()["current"]


def test_as_many_targeted_events_as_the_limit_are_ranked_inline(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from budding.influence import service

    program_id = community["program"].id
    with unit_of_work() as session:
        targeted = members_count_targeted(session, program_id)
    monkeypatch.setattr(service, "INLINE_RANKING_MAX_INTERACTIONS", targeted)
    answer = client.get("/api/v1/influence/leaders", params={"top": 3})
    assert answer.status_code == 200 and answer.json()["current"]
    assert _refreshes(program_id) == []


def test_targeted_events_are_counted_only_with_nothing_kept(
    client: Any, community: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hit, or a miss answered from the older ranking, counts no events."""
    from datetime import UTC, datetime

    from budding.members import service as members

    calls: list[int] = []
    counted = members.count_targeted_events

    def counting(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return counted(*args, **kwargs)

    monkeypatch.setattr(members, "count_targeted_events", counting)
    assert client.get("/api/v1/influence/leaders").status_code == 200
    assert len(calls) == 1  # nothing kept: counted
    assert client.get("/api/v1/influence/leaders").json()["current"]  # a hit
    now = datetime.now(UTC).isoformat()
    event = {"id": "late", "type": "comment", "member": "m19", "target": "m1", "occurred_at": now}
    assert client.post("/api/v1/events", json={"events": [event]}).json()["accepted"] == 1
    assert not client.get("/api/v1/influence/leaders").json()["current"]  # the older one
    assert len(calls) == 1


def test_count_targeted_events_stops_at_its_bound(community: dict[str, Any]) -> None:
    from budding.members import service as members

    program_id = community["program"].id
    with unit_of_work() as session:
        every = members_count_targeted(session, program_id)
        assert members.count_targeted_events(session, program_id, up_to=10**6) == every
        assert members.count_targeted_events(session, program_id, up_to=every) == every
        assert members.count_targeted_events(session, program_id, up_to=5) == 5
        assert members.count_targeted_events(session, program_id + 1000, up_to=5) == 0


def members_count_targeted(session: Any, program_id: int) -> int:
    """Every event of the program with a target, counted without a bound."""
    from sqlalchemy import func, select

    from budding.members.models import Event

    return int(
        session.scalar(
            select(func.count()).where(
                Event.program_id == program_id, Event.target_member_id.is_not(None)
            )
        )
    )
