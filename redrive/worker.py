"""The redrive worker: `python worker.py` (or `redrive worker`) runs `JobWorkflow` and every stage
activity on the task queue until SIGTERM or Ctrl-C, then drains in-flight activities for
`graceful_shutdown_seconds`."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import logging
import pkgutil
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import redrive
from redrive import workflows
from redrive.activities import ActivityDeps, build_activities, operations_activities
from redrive.activities.alerts import AlertConfig
from redrive.activities.notifications import warn_if_off
from redrive.context import Handler
from redrive.jobtypes import JobTypeRegistry, load_job_types, stage_handlers
from redrive.logs import configure_logging
from redrive.metrics import WorkerMetrics
from redrive.operations import Services
from redrive.probes import serving_probes
from redrive.schedules import ensure_maintenance_schedule
from redrive.settings import Settings
from redrive.store import create_engine, session_factory
from redrive.store.projection import GroupCommit
from redrive.temporal import TemporalUnreachable, connect, exit_process, metrics_runtime, temporal_target
from redrive.workflows import JobWorkflow
from redrive.workflows.breaker import BreakerWorkflow
from redrive.workflows.maintenance import MaintenanceWorkflow
from redrive.workflows.replay_campaign import ReplayCampaignWorkflow
from redrive.workflows.superseded_run import SupersededRunWorkflow

log = logging.getLogger("redrive.worker")


def _ours_but_workflows() -> tuple[str, ...]:
    return tuple(
        f"redrive.{module.name}"
        for module in pkgutil.iter_modules(redrive.__path__)
        if module.name != "workflows"
    )


# Our modules are deterministic or only used through the sandbox's passthrough; re-importing them
# per workflow run would cost CPU for nothing (see docs/benchmarks.md). Passthrough matches by
# prefix, so the workflow modules, which the sandbox must import anew, are left out by name.
PASSTHROUGH = (
    *_ours_but_workflows(),
    "redrive.workflows.failures",
    "pydantic",
    "pydantic_core",
    "sqlalchemy",
    "sqlmodel",
    "httpx",
    "opentelemetry",  # the tracing interceptor's, when traces are on
)


HEARTBEAT_THROTTLE = timedelta(seconds=2)


def precompile_workflows(package: ModuleType = workflows) -> None:
    """Write the bytecode of the modules the sandbox re-imports for every workflow run (`package`'s).

    With PYTHONDONTWRITEBYTECODE (set in many containers, and on our CI machines) Python would
    otherwise compile their source again on every run: measured as the largest single cost of a
    job in the worker. Reading bytecode is allowed under that setting; only writing it is not.
    """
    with contextlib.suppress(OSError):  # a read-only install simply keeps compiling
        compileall.compile_dir(package.__path__[0], quiet=2)
        parent = package.__name__.rpartition(".")[0]
        while parent:  # the packages above it are imported anew with it (`redrive` for ours)
            compileall.compile_file(str(sys.modules[parent].__file__), quiet=2)
            parent = parent.rpartition(".")[0]


def workflow_runner(sandbox: bool = True) -> WorkflowRunner:
    """The workflow sandbox with our own modules passed through (see `PASSTHROUGH`), or none.

    The sandbox guards workflow code against I/O, clocks and randomness by running each workflow in
    modules imported anew: a third of a worker's CPU per job (docs/benchmarks.md). Redrive's
    workflows are its own code, never a user's (teams declare stages, which run as activities), and
    the tests and the replay test run them sandboxed; `REDRIVE_WORKFLOW_SANDBOX=false` trusts that."""
    if not sandbox:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(
    client: Client, settings: Settings, deps: ActivityDeps, handlers: Mapping[str, Handler]
) -> Worker:
    """A worker for every workflow and every registered stage handler."""
    if settings.workflow_sandbox:  # only the sandbox imports the workflow modules again per run
        precompile_workflows()
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            JobWorkflow,
            MaintenanceWorkflow,
            SupersededRunWorkflow,
            # Campaigns and breakers started before they had a queue of their own.
            ReplayCampaignWorkflow,
            BreakerWorkflow,
        ],
        activities=build_activities(deps, handlers),
        max_concurrent_workflow_task_polls=20,
        max_concurrent_activity_task_polls=20,
        **_worker_options(settings),
    )


def build_operations_worker(client: Client, settings: Settings, deps: ActivityDeps) -> Worker:
    """A worker for replay campaigns and circuit breakers on their own task queue, in the same
    process: their workflow tasks and steps are not queued behind job tasks (a campaign step's
    thousand resets put a thousand job tasks ahead of its next decision on a shared queue, and a
    breaker opens when its stage's jobs crowd the queue with failing attempts)."""
    return Worker(
        client,
        task_queue=settings.operations_task_queue,
        workflows=[ReplayCampaignWorkflow, BreakerWorkflow],
        activities=operations_activities(deps),
        **_worker_options(settings),
    )


def _worker_options(settings: Settings) -> dict[str, Any]:
    """What the jobs' worker and the operations worker share: the sandbox, the drain on shutdown,
    and the heartbeat throttle."""
    return {
        "workflow_runner": workflow_runner(settings.workflow_sandbox),
        "graceful_shutdown_timeout": timedelta(seconds=settings.graceful_shutdown_seconds),
        # A cancelled job waits for its stage to stop, which it learns from its next heartbeat.
        "default_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }


def warn_missing_handlers(registry: JobTypeRegistry, handlers: Mapping[str, Handler], queue: str) -> None:
    """Say at start-up which stages on this worker's queue it cannot run (they dead-letter as
    HandlerMissing)."""
    for name in sorted(registry.activity_names(queue) - set(handlers)):
        log.warning("no handler registered for activity %s: its stages will dead-letter", name)


@asynccontextmanager
async def activity_deps(
    settings: Settings, client: Client | None = None, registry: JobTypeRegistry | None = None
) -> AsyncIterator[ActivityDeps]:
    """Engine and HTTP client for the worker's lifetime (and, with a Temporal client, the
    operations' services for the campaign steps)."""
    engine = create_engine(settings.resolved_database_url())
    sessions = session_factory(engine)
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http,
            GroupCommit(engine) as projection,
        ):
            alerts = AlertConfig.from_settings(settings)
            warn_if_off(alerts)
            runtime = (client.service_client.config.runtime or Runtime.default()) if client else None
            services = None
            if client is not None:
                registry = registry or load_job_types(settings.job_types, settings.config)
                services = Services(settings, registry, sessions, projection, client)
            yield ActivityDeps(
                sessions=sessions,
                projection=projection,
                http=http,
                alerts=alerts,
                temporal=client,
                metrics=WorkerMetrics(runtime.metric_meter if runtime else MetricMeter.noop),
                services=services,
            )
    finally:
        await engine.dispose()


async def run_worker(settings: Settings, stop: asyncio.Event, client: Client | None = None) -> None:
    """Run until `stop` is set, then shut down gracefully."""
    registry = load_job_types(settings.job_types, settings.config)
    handlers = stage_handlers(registry, settings.task_queue, settings.served_job_types())
    warn_missing_handlers(registry, handlers, settings.task_queue)
    client = client or await connect(settings, serve_metrics=True)
    async with activity_deps(settings, client, registry) as deps:
        worker = build_worker(client, settings, deps, handlers)
        operations = build_operations_worker(client, settings, deps)
        await ensure_maintenance_schedule(client, settings)
        async with _probes(settings, client) as polling, worker, operations:
            polling["started"] = True
            log.info(
                "worker polling task queues %s and %s on %s",
                settings.task_queue,
                settings.operations_task_queue,
                temporal_target(settings),
            )
            await stop.wait()
            log.info("stopping: draining in-flight activities")


@asynccontextmanager
async def _probes(settings: Settings, client: Client) -> AsyncIterator[dict[str, bool]]:
    """`/healthz`, `/readyz` and `/metrics` on REDRIVE_METRICS_PORT (nothing without it)."""
    if not settings.metrics_port:
        yield {"started": False}
        return
    async with serving_probes(client, settings.metrics_port, metrics_runtime()[1]) as app:
        polling: dict[str, bool] = app.state.polling
        yield polling


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(Settings(), stop)


def main() -> None:
    """Entry point of `python worker.py` and `redrive worker`."""
    configure_logging(Settings().log_format or "json")
    try:
        asyncio.run(_main())
    except TemporalUnreachable as error:  # say why in one line: no traceback for a setting to fix
        log.error("%s", error)
        exit_process(3)
    exit_process(0)


if __name__ == "__main__":
    main()
