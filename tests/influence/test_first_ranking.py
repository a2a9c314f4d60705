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
