"""The `redrive` command: the assembly point that wires core, API and worker together."""

from __future__ import annotations

import asyncio
import logging

import typer

from redrive.jobtypes import ConfigError, load_registry
from redrive.settings import Settings

app = typer.Typer(help="Durable jobs with declarative retries and a drainable dead-letter queue.")


def _settings() -> Settings:
    settings = Settings()
    try:
        load_registry(settings.config)
    except ConfigError as error:
        typer.echo(f"configuration error: {error}", err=True)
        raise typer.Exit(2) from None
    return settings


@app.command()
def dev() -> None:
    """Run a Temporal dev server (with Web UI), the worker and the API on the embedded defaults."""
    from redrive.dev import run_dev  # the assembly imports api and the worker only when asked to

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_dev(_settings()))


@app.command()
def worker() -> None:
    """Run a worker against REDRIVE_TEMPORAL_ADDRESS (what `python worker.py` does)."""
    import worker as worker_module

    _settings()
    worker_module.main()


@app.command()
def api() -> None:
    """Run the REST API against REDRIVE_TEMPORAL_ADDRESS and REDRIVE_DATABASE_URL."""
    import uvicorn

    from api import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)


@app.command()
def migrate() -> None:
    """Apply the database migrations to REDRIVE_DATABASE_URL."""
    from redrive.store import upgrade

    settings = _settings()
    asyncio.run(upgrade(settings.resolved_database_url()))
    typer.echo("database is up to date")
