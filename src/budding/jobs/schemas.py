"""API shapes of jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobOut(BaseModel):
    """A background job's status, progress and outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="What the job does, e.g. webhooks.deliver")
    status: str = Field(description="queued, running, succeeded or failed")
    progress: float = Field(description="0 to 1")
    message: str = Field(description="The job's last progress message")
    result: Any | None = Field(None, description="What the job returned, once succeeded")
    error: str | None = Field(None, description="Why the last attempt failed")
    attempts: int = Field(description="Attempts started so far")
    max_attempts: int
    created_at: datetime
    run_after: datetime = Field(description="When the next attempt may start (queued jobs)")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobPage(BaseModel):
    jobs: list[JobOut]
