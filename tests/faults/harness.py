"""The fault suite's stack, each part its own process so each can be killed: a PostgreSQL cluster the
suite starts itself (never the shared one), a Temporal dev server, the API and two workers."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from redrive.converter import DATA_CONVERTER
from redrive.settings import Settings
from redrive.store import upgrade
from redrive_cli.devserver import server_command
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"Authorization": "Bearer key-a"}
CONFIG = """
[job_types.demo]
initial_interval = "1s"
backoff_coefficient = 1
max_retries = 2
"""


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class Postgres:
    """A throw-away PostgreSQL cluster on a free port; `stop` is an immediate (crash) shutdown."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        initdb = _pg_bin("initdb")
        if initdb is None:
            raise FileNotFoundError("initdb not found: install PostgreSQL's server binaries")
        self._bin = Path(initdb).parent

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root; the Debian package's `postgres` user runs it then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(str(self._bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        log = str(self.data / "server.log")
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


@dataclass
class Stack:
    """The dev server, the API and two workers, as separate processes over one database."""

    home: Path
    database_url: str
    settings: Settings = field(init=False)
    api_url: str = field(init=False)
    server: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: Client | None = None

    def __post_init__(self) -> None:
        config = self.home / "redrive.toml"
        config.write_text(CONFIG)
        self.settings = Settings(
            home=self.home,
            database_url=self.database_url,
            temporal_port=free_port(),
            ui_port=free_port(),
            api_port=free_port(),
            task_queue="faults",
            config=config,
        )
        self.api_url = f"http://127.0.0.1:{self.settings.api_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDRIVE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.settings.temporal_port}",
            "REDRIVE_DATABASE_URL": self.database_url,
            "REDRIVE_TASK_QUEUE": self.settings.task_queue,
            "REDRIVE_CONFIG": str(self.settings.config),
            "REDRIVE_API_KEYS": "key-a:a",
            "REDRIVE_API_PORT": str(self.settings.api_port),
            "REDRIVE_GRACEFUL_SHUTDOWN_SECONDS": "2",
            "REDRIVE_LOG_FORMAT": "text",
        }

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start_server(self) -> Client:
        self.server = self._spawn("temporal", server_command(self.settings, self.home / "temporal.db"))
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                self.client = await Client.connect(
                    f"127.0.0.1:{self.settings.temporal_port}", data_converter=DATA_CONVERTER
                )
                await self.client.workflow_service.get_system_info(GetSystemInfoRequest())
                return self.client
            except Exception:
                if self.server.poll() is not None or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def kill_server(self) -> None:
        assert self.server is not None
        _kill(self.server)

    def start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn(name, [sys.executable, "worker.py"])

    def kill_worker(self, name: str) -> None:
        _kill(self.workers.pop(name))

    def stop_worker(self, name: str) -> None:
        """SIGTERM: the worker's graceful shutdown, as Kubernetes stops a pod."""
        process = self.workers.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    async def start_api(self) -> None:
        self.api = self._spawn("api", [sys.executable, "-m", "redrive_cli", "api"])
        async with httpx.AsyncClient(base_url=self.api_url) as http:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                if self.api.poll() is not None or asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the API did not start; see {self.home / 'api.log'}")
                await asyncio.sleep(0.2)

    def stop_all(self) -> None:
        for process in [*self.workers.values(), self.api, self.server]:
            if process is not None and process.poll() is None:
                _kill(process)
        self.workers.clear()


def _kill(process: subprocess.Popen[bytes]) -> None:
    """kill -9 of the process and its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@contextlib.asynccontextmanager
async def running_stack(home: Path, database_url: str) -> AsyncIterator[Stack]:
    """The whole stack, up; every process killed at the end whatever happened."""
    await upgrade(database_url)
    stack = Stack(home=home, database_url=database_url)
    try:
        await stack.start_server()
        stack.start_worker("worker-1")
        stack.start_worker("worker-2")
        await stack.start_api()
        yield stack
    finally:
        stack.stop_all()


@contextlib.contextmanager
def own_postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the suite's own, started; stopped and deleted at the end. Its folder
    is not under pytest's (private to root), which the `postgres` user could not enter."""
    root = Path(tempfile.mkdtemp(prefix="redrive-faults-"))
    cluster = Postgres(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
