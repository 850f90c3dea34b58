"""The TOML file named by `REDRIVE_CONFIG`: retry and timeout overrides, and whole job types.

    [defaults]                          # every stage of every job type
    jitter = 0.1

    [job_types.demo]                    # every stage of `demo`
    initial_interval = "1s"

    [job_types.demo.stages.process]     # one stage
    max_retries = 5
    start_to_close_timeout = "2m"

    [job_types.invoice]                 # a job type no code declares: its stages, in file order
    payload_model = "billing.models:Invoice"
    [job_types.invoice.stages.charge]
    handler = "billing.stages:charge"

Later, narrower tables win. The file is read into `ConfigFile`, a pydantic model that forbids
unknown keys; a bad key or value raises `ConfigError` naming it, so start-up stops.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from redrive.breaker_policy import Breaker
from redrive.durations import Duration
from redrive.jobtypes.registry import JobType, JobTypeRegistry, Stage, UnknownJobType
from redrive.retry_policy import Retry


class ConfigError(ValueError):
    """The configuration file has a key or value redrive cannot use."""


def _whole(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


Count = Annotated[int, BeforeValidator(_whole)]


class BreakerTable(BaseModel):
    """`[job_types.<name>.stages.<stage>.breaker]`: the stage's circuit breaker (see
    `redrive.breaker_policy.Breaker`); keys left out keep their defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    window: Duration | None = None
    min_failures: Count | None = None
    failure_rate: float | None = None
    cool_down: Duration | None = None
    max_cool_down: Duration | None = None
    resume_rate: float | None = None
    per: str | None = Field(default=None, min_length=1, max_length=200)


class StageOverrides(BaseModel):
    """What a table may change of a stage: its retry declaration, timeouts and task queue."""

    model_config = ConfigDict(extra="forbid", strict=True)

    initial_interval: Duration | None = None
    backoff_coefficient: float | None = None
    max_retries: Count | None = None
    maximum_interval: Duration | None = None
    jitter: float | None = None
    non_retryable: list[str] | None = None
    start_to_close_timeout: Duration | None = None
    schedule_to_start_timeout: Duration | None = None
    heartbeat_timeout: Duration | None = None
    task_queue: str | None = Field(default=None, min_length=1, max_length=200)
    review_timeout: Duration | None = None
    handler: str | None = Field(default=None, description="module:function of the stage's handler")
    kind: Literal["activity", "review"] | None = None
    local: bool | None = Field(default=None, description="run as a Temporal local activity")
    breaker: BreakerTable | None = Field(default=None, description="the stage's circuit breaker")

    def changes(self) -> dict[str, Any]:
        """The stage keys this table sets."""
        return self.model_dump(exclude_unset=True, exclude=JOB_TYPE_KEYS)


JOB_TYPE_KEYS = {"stages", "execution_timeout", "description", "payload_model"}


class JobTypeOverrides(StageOverrides):
    """`[job_types.<name>]`: stage keys for every stage, the job type's own keys, and per-stage
    tables (for a job type the file declares, its stages in order)."""

    execution_timeout: Duration | None = None
    description: str | None = None
    payload_model: str | None = Field(default=None, description="module:Model for the payload")
    stages: dict[str, StageOverrides] = Field(default_factory=dict)


class ConfigFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    defaults: StageOverrides = Field(default_factory=StageOverrides)
    job_types: dict[str, JobTypeOverrides] = Field(default_factory=dict)


RETRY_KEYS = {field.name for field in dataclasses.fields(Retry)}


def parse_config(document: dict[str, Any]) -> ConfigFile:
    """`document` as a `ConfigFile`; `ConfigError` naming the first bad key or value."""
    try:
        return ConfigFile.model_validate(document)
    except ValidationError as error:
        raise ConfigError(_describe(error.errors()[0])) from None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        if len(error["loc"]) == 1:
            return f"{where}: unknown table; known tables: {', '.join(ConfigFile.model_fields)}"
        known = ", ".join(name for name in JobTypeOverrides.model_fields if name != "stages")
        return f"{where}: unknown key; known keys: {known}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where} = {error['input']!r}: {message}"


def apply_overrides(registry: JobTypeRegistry, config: ConfigFile) -> JobTypeRegistry:
    """A registry with `config`'s overrides applied to `registry`'s declarations."""
    for name in config.job_types:
        try:
            registry.get(name)
        except UnknownJobType as error:
            raise ConfigError(f"job_types.{name}: {error}") from None
    empty = JobTypeOverrides()
    return JobTypeRegistry(
        _override_type(job_type, config.defaults, config.job_types.get(job_type.name, empty))
        for job_type in registry.job_types()
    )


def _override_type(job_type: JobType, defaults: StageOverrides, table: JobTypeOverrides) -> JobType:
    where = f"job_types.{job_type.name}"
    known = [stage.name for stage in job_type.stages]
    for name in table.stages:
        if name not in known:
            raise ConfigError(f"{where}.stages.{name}: unknown stage; stages: {', '.join(known)}")
    stages = []
    for stage in job_type.stages:
        own = table.stages.get(stage.name, StageOverrides())
        changes = {**defaults.changes(), **table.changes(), **own.changes()}
        stages.append(_apply(stage, changes, f"{where}.stages.{stage.name}"))
    timeout = table.execution_timeout or job_type.execution_timeout
    try:
        return dataclasses.replace(job_type, stages=tuple(stages), execution_timeout=timeout)
    except ValueError as error:  # a combination no one key breaks (a breaker on a local stage)
        raise ConfigError(f"{where}: {error}") from None


def _apply(stage: Stage, changes: dict[str, Any], where: str) -> Stage:
    if "breaker" in changes:  # a table of its own, over the stage's declared breaker (or the defaults)
        own = {key: value for key, value in (changes["breaker"] or {}).items() if value is not None}
        try:
            changes["breaker"] = dataclasses.replace(stage.breaker or Breaker(), **own)
        except ValueError as error:
            raise ConfigError(f"{where}.breaker: {error}") from None
    if "non_retryable" in changes:
        changes["non_retryable"] = tuple(changes["non_retryable"])
    retry_changes = {key: value for key, value in changes.items() if key in RETRY_KEYS}
    stage_changes = {key: value for key, value in changes.items() if key not in RETRY_KEYS}
    try:
        retry = dataclasses.replace(stage.retry, **retry_changes)
        return dataclasses.replace(stage, retry=retry, **stage_changes)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def read_config(path: Path | None) -> ConfigFile:
    """The TOML file at `path` (an empty one when None)."""
    if path is None:
        return ConfigFile()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"REDRIVE_CONFIG={path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"REDRIVE_CONFIG={path}: not valid TOML: {error}") from None
    return parse_config(document)


__all__ = ["ConfigError", "ConfigFile", "apply_overrides", "parse_config", "read_config"]
