"""The demo community's share funnel: believable per channel, with a visible improvement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budding.core.db import unit_of_work
from budding.programs.service import get_program
from budding.sharing import funnel

build = pytest.importorskip("budding.demo.build", reason="the demo builder is not installed")


def test_demo_funnel_is_believable(database_url) -> None:
    end = datetime(2025, 6, 30, tzinfo=UTC)
    with unit_of_work() as s:
        build.build_demo(s, slug="demo", members=200, days=90, seed=3, now=end)
    with unit_of_work() as s:
        p = get_program(s, "demo")
        report = funnel.launch_cost(s, p)
        mid = end - timedelta(days=45)  # the middle of the 90 days
        result = funnel.compare(s, p, (None, mid), (mid, None))
    assert report.opened > report.sessions_sent > 0
    assert 0.4 < (report.share_rate or 0) < 0.9  # many look at the kit without sharing
    used = [r for r in report.channels if r.sent]
    assert len(used) >= 3
    assert all(r.median_seconds and 1 < r.median_seconds < 300 for r in used if r.timed >= 3)
    # Some members copy the link and paste it themselves: the fastest way to share.
    copy = next(r for r in report.channels if r.channel == "copy_link")
    assert copy.timed >= 3 and copy.clicks > 0
    assert report.cheapest == "copy_link"
    assert sum(r.clicks for r in report.channels) > 0
    # The kit got better halfway: sharing takes less time afterwards.
    overall = next(d for d in result.deltas if d.channel == "all")
    assert overall.median_seconds is not None and overall.median_seconds < 0
