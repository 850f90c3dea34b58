"""The declarations themselves and the registry that looks them up by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel

from redrive.breaker_policy import Breaker
from redrive.context import Handler
from redrive.retry_policy import Retry
from redrive.status import JobStatus

STAGE_KINDS = ("activity", "review")


DEFAULT_HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage: its handler, how it retries, and its Temporal timeouts.

        Stage(name="charge", handler=charge, retry=Retry(max_retries=5))
        Stage(name="charge", handler="billing.stages:charge")      # the same, by import path

    A job's stages travel in its workflow input (`JobType.plan`), so a configuration change never
    alters a running job's history (and the workflow stays deterministic).
    """

    name: str
    handler: Handler | str | None = field(default=None, compare=False)
    """The `async def handler(context)` that runs the stage, or its `module:function` path; none for a
    review stage. A declared stage whose handler no worker has dead-letters as `HandlerMissing`."""
    activity: str = ""
    """The Temporal activity type of the stage; `<job type>.<stage>` unless given."""
    retry: Retry = field(default_factory=Retry)
    start_to_close_timeout: timedelta = timedelta(minutes=5)
    schedule_to_start_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = DEFAULT_HEARTBEAT_TIMEOUT
    """A worker that stops heartbeating this long has lost the attempt, and another worker retries
    it. Every stage heartbeats on its own while its handler runs, so this detects a lost worker, not a
    slow handler; `None` (or `"0s"` in TOML) waits out `start_to_close_timeout` instead."""
    task_queue: str | None = None
    """Workers on another queue run this stage (say, machines with a GPU); None = the job's queue."""
    kind: str = "activity"
    """`activity` runs `activity`; `review` parks the job in `pending_review` until a person decides."""
    review_timeout: timedelta | None = None
    """A review stage left undecided this long dead-letters the job (reason `Timeout`)."""
    local: bool = False
    """Run as a Temporal local activity, in the worker that runs the job's workflow: no task queue
    round trip for short work. Same retries, timeouts and error history; no heartbeat timeout (a lost
    worker is noticed by the workflow task timing out), and a retry whose backoff exceeds
    `LOCAL_RETRY_THRESHOLD` waits on a workflow timer. A stage with a `task_queue` runs there, as
    an ordinary activity, whatever this says (the job's own workers may not have its handler)."""
    breaker: Breaker | None = None
    """A circuit breaker over this stage's attempts across all jobs (see `redrive.breaker_policy`):
    while it is open, the stage's attempts are paused instead of spending their retries."""


@dataclass(frozen=True, kw_only=True)
class JobType:
    """A named, ordered list of stages; in the Temporal UI a job's workflow type is its type's name.

    JobType(name="invoice", stages=[Stage(name="charge", handler=charge), Stage(...)],
            payload_model=Invoice)
    """

    name: str
    stages: Sequence[Stage]
    description: str = ""
    execution_timeout: timedelta | None = None
    """A run still open after this is closed by Temporal and recorded as a `Timeout` dead letter."""
    payload_model: type[BaseModel] | None = None
    """When set, a submitted payload must validate against it."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The job type's own words for its statuses, by `"<status>"` or `"<status>:<stage>"`, e.g.
    `{"queued": "uploaded", "running:extract": "extracting", "retrying:extract": "extraction_failed"}`;
    derived when a job is read, never stored. A status with no label reads as itself."""

    def __post_init__(self) -> None:
        named = tuple(
            stage if stage.activity else dataclasses.replace(stage, activity=f"{self.name}.{stage.name}")
            for stage in self.stages
        )
        object.__setattr__(self, "stages", named)  # frozen: fill in the defaults once, here
        for stage in self.stages:
            if stage.kind not in STAGE_KINDS:
                raise ValueError(
                    f"stage {stage.name!r} has kind {stage.kind!r}; kinds: {', '.join(STAGE_KINDS)}"
                )
            if stage.breaker is not None and (stage.kind != "activity" or stage.local):
                raise ValueError(
                    f"stage {stage.name!r}: a breaker needs an ordinary activity stage (not a review "
                    "or local stage): only those can be paused in Temporal"
                )
        names = [stage.name for stage in self.stages]
        if not names:
            raise ValueError(f"job type {self.name!r} has no stages")
        if len(set(names)) != len(names):
            raise ValueError(f"job type {self.name!r} repeats a stage name: {names}")
        for key in self.labels:
            status, _, stage_name = key.partition(":")
            if status not in set(JobStatus) or (stage_name and stage_name not in names):
                raise ValueError(
                    f"job type {self.name!r}: label key {key!r} is not <status> or <status>:<stage> "
                    f"(statuses: {', '.join(JobStatus)}; stages: {', '.join(names)})"
                )

    def label(self, status: str, stage: str | None) -> str:
        """The job type's word for a job in `status` at `stage`."""
        return self.labels.get(f"{status}:{stage}") or self.labels.get(status) or status

    def with_label(self, label: str) -> list[tuple[str, str | None]]:
        """The (status, stage) pairs that read as `label`; a None stage stands for any stage."""
        pairs: list[tuple[str, str | None]] = []
        for status in JobStatus:
            at_stages = [stage.name for stage in self.stages if self.label(status, stage.name) == label]
            if len(at_stages) == len(self.stages) and self.label(status, None) == label:
                pairs.append((status.value, None))
            else:
                pairs += [(status.value, stage) for stage in at_stages]
        return pairs

    def plan(self) -> tuple[Stage, ...]:
        """The stages as a job's workflow input carries them: data only, each handler by its path."""
        return tuple(dataclasses.replace(stage, handler=handler_path(stage.handler)) for stage in self.stages)


def handler_path(handler: Handler | str | None) -> str | None:
    """`module:function` for a handler function (a path stays as it is)."""
    if handler is None or isinstance(handler, str):
        return handler
    return f"{handler.__module__}:{handler.__qualname__}"


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

    def label(self, job_type: str, status: str, stage: str | None) -> str:
        """`status` in `job_type`'s own words (a type no longer declared has none)."""
        known = self._types.get(job_type)
        return known.label(status, stage) if known is not None else status

    def with_label(self, label: str) -> list[tuple[str, str, str | None]]:
        """The (job type, status, stage) combinations that read as `label` (stage None: any)."""
        return [
            (name, status, stage)
            for name, job_type in self._types.items()
            for status, stage in job_type.with_label(label)
        ]

    def activity_names(self, task_queue: str) -> set[str]:
        """Every activity a stage names that runs on `task_queue` (or on the job's own queue)."""
        return {
            stage.activity
            for job_type in self._types.values()
            for stage in job_type.stages
            if stage.kind == "activity" and stage.task_queue in (None, task_queue)
        }
