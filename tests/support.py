"""Helpers shared by the tests: a worker on its own task queue, the API on a free port, polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleHandle
from temporalio.testing import WorkflowEnvironment

from redrive import worker
from redrive.api import create_app
from redrive.binaries import temporal_cli
from redrive.contracts import MaintenanceResult
from redrive.converter import DATA_CONVERTER
from redrive.probes import QuietServer
from redrive.settings import AlertSettings, Settings
from redrive.status import SEARCH_ATTRIBUTES
from redrive_cli.devserver import SQLITE_PRAGMAS

T = TypeVar("T")


def settings_for(database_url: str, home: Path, config: Path | None = None, **extra: Any) -> Settings:
    """Settings for one test: its own task queue, database and keys for tenants `a` and `b`."""
    return Settings(
        home=home,
        database_url=database_url,
        task_queue=f"redrive-test-{uuid.uuid4().hex[:8]}",
        config=config,
        **{"api_keys": "key-a:a,key-b:b", "graceful_shutdown_seconds": 1.0, **extra},
    )


async def register_search_attributes(client: Client) -> None:
    """Register redrive's search attributes (the time-skipping server starts with none)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


async def start_dev_server(db_file: Path, metrics_port: int | None = None) -> WorkflowEnvironment:
    """A real Temporal dev server on a SQLite file in WAL mode, as `redrive dev` runs it; with
    `metrics_port`, its Prometheus metrics on that port."""
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port else []
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        dev_server_database_filename=str(db_file),
        dev_server_extra_args=[*SQLITE_PRAGMAS, *metrics],
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=DATA_CONVERTER,
    )


@contextlib.asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    """The real worker, as `python worker.py` builds it, for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_worker(settings, stop, client))
    try:
        yield
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def running_api(settings: Settings, client: Client) -> AsyncIterator[str]:
    """The real API over real HTTP on a free port; yields its base URL."""
    async with serving(create_app(settings, client)) as url:
        yield url


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve the ASGI `app` over real HTTP on a free port; yields its base URL."""
    # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and with it on every reused connection waited 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = QuietServer(  # pytest owns the signals
        uvicorn.Config(app, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def job_in(
    http: httpx.AsyncClient, job_id: str, status: str, headers: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """The job as the API shows it (to the tenant of `headers`, if given), if it is in `status`
    (for `eventually`), else None."""
    body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}", headers=headers)).json()
    return body if body["status"] == status else None


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 30.0) -> T:
    """Poll `check` until it returns something other than None or False; fail with the last value."""
    deadline = asyncio.get_running_loop().time() + within
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last is not None and last is not False:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {within} s; last value: {last!r}")


@contextlib.asynccontextmanager
async def api_client(
    client: Client, settings: Settings, headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A real worker and the real API for `settings`, and an HTTP client sending `headers`."""
    async with (
        running_worker(client, settings),
        running_api(settings, client) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
    ):
        http.headers["X-Task-Queue"] = settings.task_queue  # for the tests' own look-ups
        yield http


@contextlib.asynccontextmanager
async def self_connected(settings: Settings, headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker that each connect to Temporal themselves from `settings`, as deployed;
    an HTTP client to the API sending `headers`."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_worker(settings, stop))
    try:
        async with (
            serving(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, headers=headers) as http,
        ):
            yield http
    finally:
        stop.set()
        await task


def worker_process_env(client: Client, settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `python worker.py` for `settings` (database, task queue, retry file)."""
    env = {
        **os.environ,
        "REDRIVE_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "REDRIVE_DATABASE_URL": settings.resolved_database_url(),
        "REDRIVE_TASK_QUEUE": settings.task_queue,
        **extra,
    }
    if settings.config is not None:
        env["REDRIVE_CONFIG"] = str(settings.config)
    return env


async def one_dead_one_done(http: httpx.AsyncClient) -> tuple[str, str]:
    """A demo job whose `process` always fails (retryable), and one that completes; their ids once
    the first is dead and the second complete."""
    failing = {"fail": {"stage": "process", "error": "ServiceUnavailable"}}
    dead = (await http.post("/v1/jobs", json={"type": "demo", "payload": failing})).json()["id"]
    done = (await http.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()["id"]
    await eventually(lambda: job_in(http, done, "complete"), within=60)
    await eventually(lambda: job_in(http, dead, "dead_letter"), within=60)
    return dead, done


@dataclass
class Mailbox:
    """A real SMTP server in the test process and the messages it received."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        """Keep each delivered message."""
        self.messages.append(message_from_bytes(envelope.content, _class=EmailMessage, policy=default))
        return "250 OK"

    def alert_settings(self) -> AlertSettings:
        """Alert settings that send e-mail here."""
        return AlertSettings(smtp_host=self.host, smtp_port=self.port, alert_emails="ops@example.com")

    def settings(self) -> dict[str, Any]:
        """Settings fields that send alerts here."""
        return {"alerts": self.alert_settings()}


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def smtp_server(kind: type[Mailbox] = Mailbox) -> Iterator[Mailbox]:
    """An aiosmtpd server on a free port for the duration of the block, delivering to a `kind`."""
    port = free_port()
    mailbox = kind("127.0.0.1", port)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


async def dead_runs(client: Client, task_queue: str) -> set[tuple[str, str]]:
    """(job id, run id) of every run Temporal lists as dead (`JobStatus="dead_letter"`) on `task_queue`."""
    query = f'JobStatus="dead_letter" AND TaskQueue="{task_queue}"'
    return {(execution.id, execution.run_id) async for execution in client.list_workflows(query)}


async def last_pass(client: Client, schedule: ScheduleHandle) -> MaintenanceResult | None:
    """The result of the maintenance pass `schedule` started last, once it has run to its end; None
    while it has started none (for `eventually`)."""
    actions = (await schedule.describe()).info.recent_actions
    if not actions:
        return None
    started = actions[-1].action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    handle = client.get_workflow_handle(
        started.workflow_id, run_id=started.first_execution_run_id, result_type=MaintenanceResult
    )
    result: MaintenanceResult = await handle.result()
    return result
