"""The declarations themselves and the registry that looks them up by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel

from redrive.retry_policy import RetryDeclaration

STAGE_KINDS = ("activity", "review")


@dataclass(frozen=True, kw_only=True)
class StageSpec:
    """One stage: the activity that runs it, how it retries, and its Temporal timeouts.

    A job's stage specs travel in the workflow input, so a configuration change never alters a
    running job's history (and the workflow stays deterministic).
    """

    name: str
    activity: str
    retry: RetryDeclaration = field(default_factory=RetryDeclaration)
    start_to_close_timeout: timedelta = timedelta(minutes=5)
    schedule_to_start_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None
    task_queue: str | None = None
    """Workers on another queue run this stage (say, machines with a GPU); None = the job's queue."""
    kind: str = "activity"
    """`activity` runs `activity`; `review` parks the job in `pending_review` until a person decides."""
    review_timeout: timedelta | None = None
    """A review stage left undecided this long dead-letters the job (reason `Timeout`)."""


@dataclass(frozen=True, kw_only=True)
class JobType:
    """A named, ordered list of stages."""

    name: str
    stages: tuple[StageSpec, ...]
    description: str = ""
    execution_timeout: timedelta | None = None
    """A run still open after this is closed by Temporal and recorded as a `Timeout` dead letter."""
    payload_model: type[BaseModel] | None = None
    """When set, a submitted payload must validate against it."""

    def __post_init__(self) -> None:
        for stage in self.stages:
            if stage.kind not in STAGE_KINDS:
                raise ValueError(
                    f"stage {stage.name!r} has kind {stage.kind!r}; kinds: {', '.join(STAGE_KINDS)}"
                )
        names = [stage.name for stage in self.stages]
        if not names:
            raise ValueError(f"job type {self.name!r} has no stages")
        if len(set(names)) != len(names):
            raise ValueError(f"job type {self.name!r} repeats a stage name: {names}")


class UnknownJobType(LookupError):
    """No job type has this name; the message lists the ones that exist."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown job type {name!r}; known types: {', '.join(self.known)}")


class JobTypeRegistry:
    """Job types by name."""

    def __init__(self, job_types: Iterable[JobType]) -> None:
        self._types = {job_type.name: job_type for job_type in job_types}

    def get(self, name: str) -> JobType:
        """The job type called `name`, or `UnknownJobType`."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(name, self._types) from None

    def job_types(self) -> list[JobType]:
        """Every job type, in declaration order."""
        return list(self._types.values())

    def activity_names(self) -> set[str]:
        """Every activity some stage names (the worker must register each)."""
        return {
            stage.activity
            for job_type in self._types.values()
            for stage in job_type.stages
            if stage.kind == "activity"
        }
