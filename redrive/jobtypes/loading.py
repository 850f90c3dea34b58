"""Where job types come from, merged into one registry: the built-ins, installed packages that
advertise theirs under the entry point group `redrive.job_types`, the import paths listed in
`REDRIVE_JOB_TYPES`, and whole job types declared in the TOML file. A name declared twice, an import
path that does not resolve, or a handler of the wrong shape stops start-up naming it.

Handlers given by path are imported by the workers that run them (`stage_handlers`), not by the
API, so a stage on a GPU worker's queue can import what only that worker has installed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Collection, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from redrive.context import Handler
from redrive.jobtypes.builtin import BUILTIN
from redrive.jobtypes.overrides import ConfigError, JobTypeOverrides, apply_overrides, read_config
from redrive.jobtypes.registry import JobType, JobTypeRegistry, Stage, UnknownJobType

ENTRY_POINT_GROUP = "redrive.job_types"


def load_job_types(paths: str = "", config: Path | None = None) -> JobTypeRegistry:
    """Every job type this deployment knows, with the TOML file's overrides applied.

    `paths` is `REDRIVE_JOB_TYPES`: comma-separated `module:attribute` paths, each naming a
    `JobType` or a list of them. Entry points name the same kind of attribute."""
    document = read_config(config)
    declared: dict[str, tuple[str, JobType]] = {}
    for source, job_type in _sources(paths):
        if job_type.name in declared:
            raise ConfigError(
                f"job type {job_type.name!r} is declared twice: by {declared[job_type.name][0]} and by "
                f"{source}; rename one of them"
            )
        declared[job_type.name] = (source, job_type)
    for name, table in document.job_types.items():
        if name not in declared and table.stages:  # a table for a type no code declares declares it
            declared[name] = ("the configuration file", _from_table(name, table))
    registry = apply_overrides(JobTypeRegistry(job_type for _, job_type in declared.values()), document)
    for job_type in registry.job_types():
        check_handlers(job_type)
    return registry


def check_handlers(job_type: JobType) -> None:
    """Check the handlers `job_type` gives as functions (those given by path need an import: the
    worker that runs them checks them)."""
    for stage in job_type.stages:
        if stage.handler is not None and not isinstance(stage.handler, str):
            resolve_handler(stage.handler, f"job type {job_type.name!r}, stage {stage.name!r}")


def stage_handlers(
    registry: JobTypeRegistry, task_queue: str | None = None, only: Collection[str] = ()
) -> dict[str, Handler]:
    """The handlers a worker on `task_queue` runs, by the activity type each runs as: every stage's
    but those pinned to another queue (all of them when `task_queue` is None), of the job types in
    `only` when it names some. `ConfigError` for a handler that does not resolve, one activity type
    given two different handlers, or (see `_served`) a queue shared with job types left out."""
    handlers: dict[str, Handler] = {}
    for job_type in _served(registry, task_queue, only):
        for stage in job_type.stages:
            elsewhere = task_queue is not None and stage.task_queue not in (None, task_queue)
            if stage.kind != "activity" or stage.handler is None or elsewhere:
                continue
            handler = resolve_handler(stage.handler, f"job type {job_type.name!r}, stage {stage.name!r}")
            if handlers.setdefault(stage.activity, handler) is not handler:
                raise ConfigError(
                    f"job type {job_type.name!r}, stage {stage.name!r}: activity {stage.activity!r} "
                    "already runs another handler; give the stage an activity name of its own"
                )
    return handlers


def _served(registry: JobTypeRegistry, task_queue: str | None, only: Collection[str]) -> list[JobType]:
    """The job types a worker serves. A worker told to serve only some (REDRIVE_WORKER_JOB_TYPES)
    polls a queue of its own, to which their stages are pinned (`task_queue`): another job type with
    stages pinned there would have its tasks taken and failed as HandlerMissing, so that stops it."""
    if not only:
        return registry.job_types()
    try:
        served = [registry.get(name) for name in only]
    except UnknownJobType as error:
        raise ConfigError(f"REDRIVE_WORKER_JOB_TYPES: {error}") from None
    for job_type in registry.job_types():
        shared = [s.name for s in job_type.stages if s.kind == "activity" and s.task_queue == task_queue]
        if job_type.name not in only and shared:
            raise ConfigError(
                f"REDRIVE_WORKER_JOB_TYPES: job type {job_type.name!r} also runs stages {shared} on task "
                f"queue {task_queue!r}, which this worker polls but does not serve; give this worker a "
                "queue of its own (REDRIVE_TASK_QUEUE) and pin its job types' stages to it (task_queue)"
            )
    return served


def _sources(paths: str) -> Iterable[tuple[str, JobType]]:
    yield from (("the built-in job types", job_type) for job_type in BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.name} = {point.value!r} ({ENTRY_POINT_GROUP})"
        try:
            loaded = point.load()
        except Exception as error:
            raise ConfigError(f"{where}: cannot load it: {type(error).__name__}: {error}") from None
        yield from ((where, job_type) for job_type in _job_types(loaded, where))
    for path in filter(None, (part.strip() for part in paths.split(","))):
        where = f"REDRIVE_JOB_TYPES entry {path!r}"
        yield from ((where, job_type) for job_type in _job_types(import_path(path, where), where))


def _from_table(name: str, table: JobTypeOverrides) -> JobType:
    """A job type declared in the TOML file; `apply_overrides` then applies its keys to its stages."""
    where = f"job_types.{name}"
    model = None
    if table.payload_model is not None:
        model = import_path(table.payload_model, f"{where}.payload_model")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigError(f"{where}.payload_model: {table.payload_model!r} is not a pydantic model")
    stages = [
        Stage(name=stage, handler=own.handler, kind=own.kind or "activity")
        for stage, own in table.stages.items()
    ]
    try:
        return JobType(name=name, stages=stages, description=table.description or "", payload_model=model)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def _job_types(value: Any, where: str) -> list[JobType]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(item, JobType) for item in items):
        raise ConfigError(f"{where}: names {type(value).__name__}, not a redrive.JobType or a list of them")
    return list(items)


def import_path(path: str, where: str) -> Any:
    """The object `module:attribute` names; `ConfigError` saying what is wrong with it."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{where}: {path!r} is not an import path; write module:attribute")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ConfigError(
            f"{where}: cannot import {module_name!r}: {type(error).__name__}: {error}"
        ) from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ConfigError(f"{where}: module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def resolve_handler(handler: Handler | str, where: str) -> Handler:
    """The handler function `handler` names (or is); `ConfigError` unless it is an `async def`
    taking the stage context as its one argument."""
    function = import_path(handler, f"{where}: handler") if isinstance(handler, str) else handler
    shape = "an `async def handler(context)` taking the StageContext"
    if not inspect.iscoroutinefunction(function):
        raise ConfigError(f"{where}: handler {handler!r} is not {shape}")
    try:
        inspect.signature(function).bind(object())
    except TypeError:
        raise ConfigError(f"{where}: handler {handler!r} is not {shape}") from None
    resolved: Handler = function
    return resolved
