"""Retry and timeout overrides from the TOML file named by `REDRIVE_CONFIG`.

    [defaults]                          # every stage of every job type
    jitter = 0.1

    [job_types.demo]                    # every stage of `demo`
    initial_interval = "1s"

    [job_types.demo.stages.process]     # one stage
    max_retries = 5
    start_to_close_timeout = "2m"

Later, narrower tables win. A bad key or value raises `ConfigError` naming it, so start-up stops.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from redrive.durations import parse_duration
from redrive.jobtypes.builtin import builtin_registry
from redrive.jobtypes.registry import JobType, JobTypeRegistry, StageSpec, UnknownJobType
from redrive.retry_policy import RetryDeclaration


class ConfigError(ValueError):
    """The configuration file has a key or value redrive cannot use."""


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError('must be a duration string such as "100ms", "30s", "2m"')
    return parse_duration(value)


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of error type names")
    return tuple(value)


_RETRY_KEYS: dict[str, Callable[[Any], Any]] = {
    "initial_interval": _duration,
    "backoff_coefficient": _number,
    "max_retries": _count,
    "maximum_interval": _duration,
    "jitter": _number,
    "non_retryable": _names,
}


def _queue_name(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise ValueError("must be a task queue name (1 to 200 characters)")
    return value


# Stage fields other than the retry declaration.
_TIMEOUT_KEYS: dict[str, Callable[[Any], Any]] = {
    "start_to_close_timeout": _duration,
    "schedule_to_start_timeout": _duration,
    "heartbeat_timeout": _duration,
    "task_queue": _queue_name,
    "review_timeout": _duration,
}


def _parse_table(table: Mapping[str, Any], where: str, allow: set[str]) -> dict[str, Any]:
    """Check and convert one table's keys; `allow` names nested tables that are skipped here."""
    parsed: dict[str, Any] = {}
    for key, raw in table.items():
        if key in allow:
            continue
        convert = _RETRY_KEYS.get(key) or _TIMEOUT_KEYS.get(key)
        if convert is None:
            known = ", ".join([*_RETRY_KEYS, *_TIMEOUT_KEYS])
            raise ConfigError(f"{where}.{key}: unknown key; known keys: {known}")
        try:
            parsed[key] = convert(raw)
        except ValueError as error:
            raise ConfigError(f"{where}.{key} = {raw!r}: {error}") from None
    return parsed


def _apply(stage: StageSpec, changes: Mapping[str, Any], where: str) -> StageSpec:
    retry_changes = {key: value for key, value in changes.items() if key in _RETRY_KEYS}
    timeout_changes = {key: value for key, value in changes.items() if key in _TIMEOUT_KEYS}
    try:
        retry = dataclasses.replace(stage.retry, **retry_changes)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    return dataclasses.replace(stage, retry=retry, **timeout_changes)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def apply_overrides(registry: JobTypeRegistry, document: Mapping[str, Any]) -> JobTypeRegistry:
    """A registry with `document`'s overrides applied to `registry`'s declarations."""
    unknown = set(document) - {"defaults", "job_types"}
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown table; known tables: defaults, job_types")
    defaults = _parse_table(_table(document.get("defaults", {}), "defaults"), "defaults", set())
    per_type = _table(document.get("job_types", {}), "job_types")
    for name in per_type:
        try:
            registry.get(name)
        except UnknownJobType as error:
            raise ConfigError(f"job_types.{name}: {error}") from None
    return JobTypeRegistry(
        _override_type(job_type, defaults, per_type.get(job_type.name, {}))
        for job_type in registry.job_types()
    )


def _override_type(job_type: JobType, defaults: dict[str, Any], raw: Any) -> JobType:
    where = f"job_types.{job_type.name}"
    table = _table(raw, where)
    type_level = _parse_table(table, where, {"stages", "execution_timeout"})
    execution_timeout = job_type.execution_timeout
    if "execution_timeout" in table:
        try:
            execution_timeout = _duration(table["execution_timeout"])
        except ValueError as error:
            raise ConfigError(
                f"{where}.execution_timeout = {table['execution_timeout']!r}: {error}"
            ) from None
    stage_tables = _table(table.get("stages", {}), f"{where}.stages")
    known = [stage.name for stage in job_type.stages]
    for name in stage_tables:
        if name not in known:
            raise ConfigError(f"{where}.stages.{name}: unknown stage; stages: {', '.join(known)}")
    stages = []
    for stage in job_type.stages:
        stage_where = f"{where}.stages.{stage.name}"
        own = _parse_table(_table(stage_tables.get(stage.name, {}), stage_where), stage_where, set())
        stages.append(_apply(stage, {**defaults, **type_level, **own}, stage_where))
    return dataclasses.replace(job_type, stages=tuple(stages), execution_timeout=execution_timeout)


def load_registry(path: Path | None) -> JobTypeRegistry:
    """The built-in registry, with the overrides from the TOML file at `path` when one is given."""
    registry = builtin_registry()
    if path is None:
        return registry
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"REDRIVE_CONFIG={path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"REDRIVE_CONFIG={path}: not valid TOML: {error}") from None
    return apply_overrides(registry, document)


__all__ = ["ConfigError", "RetryDeclaration", "apply_overrides", "load_registry"]
