"""`redrive dev`: Temporal dev server, migrations, worker and API in one command."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import sys
import time
from importlib import resources
from pathlib import Path

import uvicorn

from redrive import worker
from redrive.api import create_app
from redrive.probes import QuietServer
from redrive.settings import Settings
from redrive.store import upgrade
from redrive_cli.devserver import connect_when_ready, set_retention, start_server, stop_server
from redrive_cli.ports import check_free

DEMO_CONFIG = """# Written by `redrive dev`: short demo backoffs (2 s, 4 s, 8 s) so a failing demo job reaches
# the dead-letter queue in about 15 s. Set REDRIVE_CONFIG to use your own file instead.
[job_types.demo]
initial_interval = "2s"
backoff_coefficient = 2
"""


def dev_settings(settings: Settings) -> Settings:
    """`settings` pointed at the local dev server, with a dev API key kept under `home`."""
    settings.home.mkdir(parents=True, exist_ok=True)
    changes: dict[str, object] = {"temporal_address": f"127.0.0.1:{settings.temporal_port}"}
    if not settings.api_keys:
        key_file = settings.home / "dev-api-key"
        if not key_file.exists():
            key_file.write_text(f"dev-{secrets.token_urlsafe(16)}\n")
        changes["api_keys"] = f"{key_file.read_text().strip()}:dev"
    if settings.config is None:
        config = settings.home / "dev-config.toml"
        config.write_text(DEMO_CONFIG)
        changes["config"] = config
    return settings.model_copy(update=changes)


def banner(settings: Settings, seconds: float) -> str:
    """What a person needs to click through the demo."""
    key = next(iter(settings.static_keys()))
    api = f"http://{settings.api_host}:{settings.api_port}"
    breaker = (settings.home / "break-process").resolve()
    fail = {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(breaker)}
    body = json.dumps({"type": "demo", "payload": {"sleep_ms": 500, "fail": fail}})
    auth = f"-H 'Authorization: Bearer {key}'"
    cli = cli_command()
    return f"""
redrive is up in {seconds:.1f} s
  API          {api}   (OpenAPI docs: {api}/docs)
  Temporal UI  {settings.resolved_ui_url()}   (search: JobStatus="dead_letter")
  API key      {key}   (tenant: dev)
  data         {settings.home.resolve()}   (retry policies: {settings.config})

1. Submit a demo job whose stage 'process' fails while {breaker} exists
   (it does now): 4 attempts, then the dead-letter queue, in about 15 s.
  curl -s -X POST {api}/v1/jobs {auth} -H 'Content-Type: application/json' -d '{body}'
2. Watch it:  curl -s {api}/v1/jobs/<id> {auth}     and     curl -s {api}/v1/dead-letters {auth}
3. Remove the failure and retry from the failed stage ('prepare' does not run again):
  rm {breaker}; curl -s -X POST {api}/v1/jobs/<id>/retry {auth}
{_protocol_lines(api, auth)}The same from the command line (in another shell):
  export REDRIVE_API_URL={api} REDRIVE_API_KEY={key}
  {cli} jobs list; {cli} dlq groups; {cli} dlq replay --type demo --dry-run
Press Ctrl-C to stop everything.
"""


def cli_command() -> str:
    """How to run this `redrive` from a shell: its name when PATH finds this very one, else its path
    (a venv that is not activated is not on PATH)."""
    here = Path(sys.argv[0]).resolve() if Path(sys.argv[0]).name == "redrive" else None
    here = here or Path(sys.executable).parent / "redrive"
    found = shutil.which("redrive")
    if found is not None and Path(found).resolve() == here.resolve():
        return "redrive"
    if here.exists():
        relative = os.path.relpath(here)
        return relative if not relative.startswith("..") else str(here)
    return f"{sys.executable} -m redrive_cli"


def _protocol_lines(api: str, auth: str) -> str:
    """The protocol example's lines, when its package (examples/protocols) is installed."""
    try:
        samples = Path(str(resources.files("redrive_protocols") / "samples"))
    except ModuleNotFoundError:
        return ""
    post = f"curl -s -X POST {api}/v1/jobs {auth} -H 'Content-Type: application/json' -d"
    good, broken = ((samples / name).as_uri() for name in ("protocol-good.pdf", "protocol-broken.pdf"))
    body = json.dumps({"type": "protocol", "payload": {"url": good}})
    broken_body = json.dumps({"type": "protocol", "payload": {"url": broken}})
    approve = '-d \'{"decision": "approve"}\''
    return f"""4. The protocol pipeline (examples/protocols): extract a PDF's text, ground its terms, then
   your review (label: uploaded, extracting, grounding, pending_review, complete):
  {post} '{body}'
  curl -s -X POST {api}/v1/jobs/<id>/review {auth} -H 'Content-Type: application/json' {approve}
   A broken PDF dead-letters as CorruptedFile after one attempt:
  {post} '{broken_body}'
"""


async def run_dev(settings: Settings) -> None:
    """Run everything until SIGINT, SIGTERM or SIGHUP, then stop every part."""
    started = time.monotonic()
    settings = dev_settings(settings)
    check_free(
        "127.0.0.1",
        {
            "Temporal": (settings.temporal_port, "REDRIVE_TEMPORAL_PORT"),
            "Temporal UI": (settings.ui_port, "REDRIVE_UI_PORT"),
            "API": (settings.api_port, "REDRIVE_API_PORT"),
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: its terminal closed
        loop.add_signal_handler(signum, stop.set)
    server = start_server(settings)
    try:
        client = await connect_when_ready(settings, server)
        await set_retention(client, settings.temporal_namespace)
        await upgrade(settings.resolved_database_url())
        api = QuietServer(  # `redrive dev` owns the signals and stops every part
            uvicorn.Config(
                create_app(settings, client),
                host=settings.api_host,
                port=settings.api_port,
                log_level="warning",
            )
        )
        worker_task = asyncio.create_task(worker.run_worker(settings, stop, client))
        api_task = asyncio.create_task(api.serve())
        while not api.started and not api_task.done():  # noqa: ASYNC110 -- uvicorn offers only a flag
            await asyncio.sleep(0.05)
        (settings.home / "break-process").touch()
        print(banner(settings, time.monotonic() - started), flush=True)
        await stop.wait()
        api.should_exit = True
        await asyncio.gather(api_task, worker_task)
    finally:
        stop_server(server)
