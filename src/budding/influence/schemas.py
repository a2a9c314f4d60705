"""API shapes of the influence capability."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budding.influence.measures import MIN_EPSILON

Measure = Literal["reach", "pagerank", "betweenness", "coreness", "in_degree", "out_degree"]
Strategy = Literal["imm", "followers", "pagerank", "reach"]


class LeaderOut(BaseModel):
    rank: int
    id: str = Field(description="The member's external_id")
    name: str
    reach: float = Field(description="Expected members reached if this member alone shares")
    pagerank: float
    betweenness: float
    coreness: int
    in_degree: int
    out_degree: int


class RefreshJobOut(BaseModel):
    """The job ranking the program's newest data, while an older ranking answers."""

    id: int
    status: str = Field(
        description="queued or running: ask again when it has succeeded; failed: the older "
        "ranking stays (for an hour no request enqueues it again; see status_url's error)"
    )
    status_url: str = Field(description="Poll this job")


class LeadersOut(BaseModel):
    by: Measure
    group: str | None = Field(None, description="The member attribute leaders are grouped by")
    leaders: list[LeaderOut] = Field(default_factory=list, description="Without group")
    groups: dict[str, list[LeaderOut]] = Field(
        default_factory=dict, description="With group: the top leaders within each value"
    )
    computed_at: datetime = Field(description="When the ranking answered was computed")
    current: bool = Field(
        description="False: the ranking of older data, while a job ranks the newest"
    )
    refresh_job: RefreshJobOut | None = Field(
        None,
        description="When not current: the job ranking the newest data, and whether it "
        "failed (null when current)",
    )


class RankingPendingOut(BaseModel):
    """202: nothing is ranked yet; a job is computing the program's first ranking."""

    state: Literal["computing"] = Field(description="The first ranking is being computed")
    job_id: int
    status: str = Field(description="The job's status: queued or running")
    progress: float = Field(description="The job's progress, 0 to 1")
    message: str = Field(description="The job's current step")
    status_url: str = Field(description="Poll this job; ask for the leaders again when done")


class SeedsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(50, ge=1, le=1000, description="Number of seeds")
    model: Literal["ic", "lt"] = "ic"
    epsilon: float = Field(0.5, ge=MIN_EPSILON, lt=1, description="IMM accuracy")
    ell: float = Field(1.0, gt=0, le=10)
    target: str | None = Field(
        None, max_length=200, description="ATTR=VALUE: only these members count towards spread"
    )
    consented_only: bool = Field(False, description="Only members with marketing consent")
    active_only: bool = Field(False, description="Only members with an event in 30 days")
    seed: int = Field(0, ge=0, description="Random seed: same seed, same answer")


class SeedsOut(BaseModel):
    seeds: list[str]
    spread: float
    model: str
    epsilon: float
    k: int
    rr_sets: int
    seconds: float
    marginal: list[float]
    cumulative: list[float]
    audience: int = Field(description="Members counted towards spread")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)
    seeds: list[str] | None = Field(None, max_length=10_000, description="Explicit seeds")
    strategy: Strategy | None = Field(
        None, description="Or choose k seeds: imm, followers (out-degree), pagerank, reach"
    )
    k: int = Field(50, ge=1, le=1000)
    launch_cost: float = Field(1.0, gt=0, le=100, description="Steps to share (1 = one tap)")
    reward: float = Field(0.0, ge=0, le=1000)

    @model_validator(mode="after")
    def one_source(self) -> PlanIn:
        if (self.seeds is None) == (self.strategy is None):
            raise ValueError("give either seeds or strategy")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds must not be empty")
        return self


class SimulationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plans: list[PlanIn] = Field(min_length=1, max_length=8)
    runs: int = Field(10_000, ge=1, le=200_000)
    seed: int = Field(0, ge=0)
    saturation: float = Field(0.8, gt=0, le=1)
    funnel: list[float] | None = Field(
        None, max_length=20, description="Measured step conversion rates to calibrate"
    )
    target: str | None = Field(None, max_length=200, description="ATTR=VALUE for imm plans")
    consented_only: bool = False
    active_only: bool = False
    max_steps: int = Field(50, ge=1, le=1000)


class SimulationStarted(BaseModel):
    job_id: int
    status: str
    status_url: str = Field(description="Poll this for progress and the result")
    payload: dict[str, Any]
