"""The "Opinion leaders" and "Campaign planner" dashboard pages."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.forms import field_errors

from budding.core import jobs
from budding.core.db import unit_of_work


def sign_in(anon_client: Any, role: str = "admin") -> str:
    from tests.factories import PASSWORD, make_staff

    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value

    email = make_staff(f"{role}@example.com", role=role)
    with unit_of_work() as session:
        result = accounts.login(session, email=email, password=PASSWORD, ip="127.0.0.1")
    assert result is not None
    anon_client.cookies.set(SESSION_COOKIE, session_cookie_value(result.token))
    return result.csrf_token


def test_opinion_leaders_page(anon_client: Any, community: dict[str, Any]) -> None:
    sign_in(anon_client)
    page = anon_client.get("/admin/acme/influence")
    assert page.status_code == 200, page.text
    assert "Opinion leaders" in page.text and 'data-testid="leaders-table"' in page.text
    assert "/admin/acme/influence/members/m0" in page.text
    grouped = anon_client.get("/admin/acme/influence", params={"group": "lang", "top": 2})
    assert grouped.status_code == 200
    assert "lang = ko" in grouped.text and "lang = es" in grouped.text
    hood = anon_client.get("/admin/acme/influence/members/m0")
    assert hood.status_code == 200 and 'data-testid="neighbourhood-chart"' in hood.text
    assert '"type": "graph"' in hood.text
    chart = json.loads(html.unescape(hood.text.split("data-chart='", 1)[1].split("'", 1)[0]))
    tips = [node["tooltip"]["formatter"] for node in chart["option"]["series"][0]["data"]]
    assert tips and all(t.startswith("{b}<br>Talks to: ") for t in tips)  # a named number
    assert anon_client.get("/admin/acme/influence/members/nobody").status_code == 404
    ko = anon_client.get("/admin/acme/influence", headers={"accept-language": "ko"})
    assert ko.status_code == 200


def test_campaign_planner_flow(anon_client: Any, community: dict[str, Any]) -> None:
    csrf = sign_in(anon_client)
    page = anon_client.get("/admin/acme/influence/planner")
    assert page.status_code == 200 and 'data-testid="planner-form"' in page.text
    form = {
        "csrf_token": csrf, "k": "2", "strategies": ["imm", "followers"],
        "launch_costs": "1, 4", "reward": "0", "runs": "300", "target": "", "funnel": "",
    }  # fmt: skip
    with jobs.immediate():
        posted = anon_client.post(
            "/admin/acme/influence/planner", data=form, follow_redirects=False
        )
    assert posted.status_code == 303, posted.text
    url = posted.headers["location"]
    assert re.fullmatch(r"/admin/acme/influence/planner/\d+", url)
    result = anon_client.get(url)
    assert result.status_code == 200
    assert 'data-testid="plans-table"' in result.text and 'data-testid="reach-chart"' in result.text
    assert result.text.count("launch cost 4") >= 2
    partial = anon_client.get(url, headers={"hx-request": "true"})
    assert partial.headers.get("hx-refresh") == "true"
    listing = anon_client.get("/admin/acme/influence/planner")
    assert url in listing.text


def test_planner_form_errors(anon_client: Any, community: dict[str, Any]) -> None:
    csrf = sign_in(anon_client)
    bad = {"csrf_token": csrf, "k": "2", "launch_costs": "one", "runs": "10", "target": "lang=fr"}
    r = anon_client.post("/admin/acme/influence/planner", data=bad)
    assert r.status_code == 422
    assert "Enter numbers separated by commas." in r.text
    assert "Choose at least one way to pick seeds." in r.text
    r = anon_client.post(
        "/admin/acme/influence/planner",
        data={
            "csrf_token": csrf,
            "k": "2",
            "strategies": "imm",
            "launch_costs": "1",
            "runs": "10",
            "target": "lang=fr",
        },
    )
    assert r.status_code == 422 and "lang=fr" in r.text
    # each plan's field errors sit by the field they are about; an empty k is an error
    base = {"csrf_token": csrf, "strategies": "imm", "launch_costs": "1", "runs": "10"}
    for field, value, label in (
        ("k", "0", "Seeds per plan"),
        ("k", "", "Seeds per plan"),
        ("reward", "-5", "Reward per share"),
        ("launch_costs", "-1", "Launch costs to compare"),
    ):
        r = anon_client.post("/admin/acme/influence/planner", data={"k": "2", **base, field: value})
        assert r.status_code == 422, (field, value)
        label_at = r.text.index(label)
        error_at = r.text.index('class="field-error"', label_at)
        assert error_at < r.text.index('class="field"', label_at), (field, value)
        assert field in field_errors(r.text), (field, value)


def test_analyst_can_look_but_not_simulate(anon_client: Any, community: dict[str, Any]) -> None:
    csrf = sign_in(anon_client, role="analyst")
    page = anon_client.get("/admin/acme/influence/planner")
    assert page.status_code == 200 and 'data-testid="planner-form"' not in page.text
    r = anon_client.post(
        "/admin/acme/influence/planner",
        data={"csrf_token": csrf, "strategies": "imm", "launch_costs": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_reach_chart_legend_takes_each_plans_colour() -> None:
    """The legend shows the colour of the first series of a name (the invisible lower
    band): every series of a plan carries the plan's colour."""
    from budding.influence.pages import _curves

    plans = [
        {"name": name, "reach_per_step": [1.0, 2.0], "reach_per_step_ci95": [(0.5, 1.5), (1, 3)]}
        for name in ("IMM", "followers")
    ]
    series = _curves({"plans": plans})["option"]["series"]
    colours: dict[str, set[str]] = {}
    for s in series:
        colours.setdefault(s["name"], set()).add(s["itemStyle"]["color"])
    assert all(len(c) == 1 for c in colours.values()) and colours["IMM"] != colours["followers"]


def test_planner_speaks_the_staff_language(anon_client: Any, community: dict[str, Any]) -> None:
    """A job's status and the result's counts are shown in the page's language, not as
    the queue's raw words ("succeeded") and bare digits ("1000")."""
    csrf = sign_in(anon_client)
    form = {
        "csrf_token": csrf, "k": "1", "strategies": "followers", "launch_costs": "1",
        "reward": "0", "runs": "1000", "target": "", "funnel": "",
    }  # fmt: skip
    with jobs.immediate():
        posted = anon_client.post(
            "/admin/acme/influence/planner", data=form, follow_redirects=False
        )
    assert posted.status_code == 303, posted.text
    ko = {"accept-language": "ko"}
    listing = anon_client.get("/admin/acme/influence/planner", headers=ko)
    assert '<span class="pill">성공</span>' in listing.text
    assert ">succeeded<" not in listing.text
    result = anon_client.get(posted.headers["location"])
    assert "1,000 simulations per plan" in result.text, result.text
    partial = anon_client.get(posted.headers["location"], headers={**ko, "hx-request": "true"})
    assert "성공" in partial.text and ">succeeded<" not in partial.text


def test_reach_chart_legend_scrolls_instead_of_covering_the_chart() -> None:
    """With several plans on a phone a plain legend wraps over the plot's top lines."""
    from budding.influence.pages import _curves

    plans = [
        {"name": f"plan {i}", "reach_per_step": [1.0], "reach_per_step_ci95": [(0.5, 1.5)]}
        for i in range(4)
    ]
    assert _curves({"plans": plans})["option"]["legend"]["type"] == "scroll"


def test_planner_says_the_services_reason_in_the_staffs_language(
    anon_client: Any, program: Any
) -> None:
    """The planner's target checked by the service (not pydantic) is said under its input
    in the dashboard's language."""
    csrf = sign_in(anon_client)
    r = anon_client.post(
        "/admin/acme/influence/planner",
        data={
            "csrf_token": csrf,
            "k": "2",
            "strategies": "imm",
            "launch_costs": "1",
            "runs": "10",
            "target": "korean",
        },
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"target": "ATTR=VALUE 형식이어야 합니다(예: lang=ko)"}
