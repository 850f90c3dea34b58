"""The `redrive` command: the assembly point that wires core, API and worker together."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from redrive.jobtypes import ConfigError, load_job_types
from redrive.logs import configure_logging
from redrive.settings import Settings
from redrive.store.api_keys import ApiKeyRepository
from redrive.store.types import utcnow
from redrive_cli import remote
from redrive_cli.remote import Output, OutputOption

T = TypeVar("T")

app = typer.Typer(help="Durable jobs with declarative retries and a drainable dead-letter queue.")


def _settings() -> Settings:
    settings = Settings()
    try:
        load_job_types(settings.job_types, settings.config)
    except ConfigError as error:
        typer.echo(f"configuration error: {error}", err=True)
        raise typer.Exit(2) from None
    return settings


@app.command()
def dev() -> None:
    """Run a Temporal dev server (with Web UI), the worker and the API on the embedded defaults."""
    from redrive.binaries import BinaryNotFound
    from redrive.temporal import exit_process
    from redrive_cli.dev import run_dev  # the assembly imports api and the worker only when asked to
    from redrive_cli.ports import PortsBusy

    settings = _settings()
    configure_logging(settings.log_format or "text")
    try:
        asyncio.run(run_dev(settings))
    except (PortsBusy, BinaryNotFound) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    exit_process(0)


@app.command()
def worker() -> None:
    """Run a worker against REDRIVE_TEMPORAL_ADDRESS (what `python worker.py` does)."""
    from redrive import worker as worker_module

    _settings()
    worker_module.main()


@app.command()
def api() -> None:
    """Run the REST API against REDRIVE_TEMPORAL_ADDRESS and REDRIVE_DATABASE_URL."""
    import uvicorn

    from redrive.api import create_app
    from redrive.temporal import exit_process

    settings = _settings()
    configure_logging(settings.log_format or "json")
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None)
    exit_process(0)


@app.command()
def migrate() -> None:
    """Apply the database migrations to REDRIVE_DATABASE_URL."""
    from redrive.store import upgrade

    settings = _settings()
    asyncio.run(upgrade(settings.resolved_database_url()))
    typer.echo("database is up to date")


@app.command()
def doctor(output: OutputOption = Output.TABLE) -> None:
    """Check Temporal, namespace retention, search attributes, migrations and SMTP; exit 1 on a
    failure. With no settings it checks what `redrive dev` runs (its ports and home directory)."""
    from redrive.temporal import exit_process
    from redrive_cli.doctor import diagnose

    findings = asyncio.run(diagnose(_settings()))
    if output == Output.JSON:
        typer.echo(json.dumps([dataclasses.asdict(finding) for finding in findings], indent=2))
    for finding in findings if output == Output.TABLE else ():
        typer.echo(f"{finding.level:<5} {finding.check}: {finding.message}")
    exit_process(1 if any(finding.level == "fail" for finding in findings) else 0)


keys = typer.Typer(help="Manage API keys (stored hashed in REDRIVE_DATABASE_URL).")
app.add_typer(keys, name="keys")
app.add_typer(remote.jobs, name="jobs")
app.add_typer(remote.dlq, name="dlq")
app.add_typer(remote.replays, name="replays")
app.add_typer(remote.breakers, name="breakers")


@keys.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="the tenant the key acts for")],
    scopes: Annotated[
        str, typer.Option(help="comma-separated: submit, read, operate, admin")
    ] = "submit,read",
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from redrive.store.api_keys import check_scopes

    try:
        wanted = check_scopes([scope.strip() for scope in scopes.split(",") if scope.strip()])
    except ValueError as error:
        typer.echo(f"--scopes: {error}", err=True)
        raise typer.Exit(2) from None
    if not tenant or tenant == "*":
        typer.echo("--tenant: name a tenant ('*' is reserved)", err=True)
        raise typer.Exit(2)
    issued = asyncio.run(_key_store(lambda keys, now: keys.create(tenant, name or tenant, wanted, now)))
    typer.echo(f"created key {issued.key.id} for tenant {tenant} with scopes {issued.key.scopes}")
    typer.echo(issued.token)


@keys.command("list")
def list_keys(output: OutputOption = Output.TABLE) -> None:
    """Every key: id, tenant, scopes, name, created, revoked."""
    stored = asyncio.run(_key_store(lambda keys, _now: keys.list()))
    if output == Output.JSON:
        shown = [key.model_dump(mode="json", exclude={"secret_hash"}) for key in stored]
        typer.echo(json.dumps(shown, indent=2))
        return
    for key in stored:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        typer.echo(f"{key.id}  {key.tenant_id:<16} {key.scopes:<28} {revoked:<24} {key.name}")


@keys.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key's id, as `redrive keys list` shows it")],
) -> None:
    """Revoke a key at once; exit 1 when there is no live key with that id."""
    if not asyncio.run(_key_store(lambda keys, now: keys.revoke(key_id, now))):
        typer.echo(f"no live key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


async def _key_store(action: Callable[[ApiKeyRepository, datetime], Awaitable[T]]) -> T:
    from redrive.store import create_engine, session_factory

    engine = create_engine(_settings().resolved_database_url())
    try:
        async with session_factory(engine)() as session, session.begin():
            return await action(ApiKeyRepository(session), utcnow())
    finally:
        await engine.dispose()
