"""`redrive doctor`: checks what a deployment needs and says what to fix — the Temporal connection,
namespace retention, search attributes, database migrations and SMTP settings."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from redrive.settings import Settings
from redrive.status import SEARCH_ATTRIBUTES
from redrive.store import create_engine
from redrive.store.migrate import alembic_config
from redrive.temporal import TemporalUnreachable, connect, connect_config, temporal_target

CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Finding:
    """One check's outcome and, unless it is fine, what to do about it."""

    level: Literal["ok", "warn", "fail"]
    check: str
    message: str


async def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in order; later Temporal checks are skipped when the server cannot be reached."""
    findings = [await _database(settings), _smtp(settings)]
    try:
        client = await asyncio.wait_for(connect(settings), CONNECT_TIMEOUT_S)
    except TemporalUnreachable as error:  # it says where, how and what to check
        return [Finding("fail", "temporal", str(error)), *findings]
    except Exception as error:  # any failure to connect is the finding itself
        where = temporal_target(settings)
        message = f"cannot connect to {where}: {error}; start Temporal or set TEMPORAL_ADDRESS"
        return [Finding("fail", "temporal", message), *findings]
    checks: list[Callable[[Client, Settings], Awaitable[Finding]]] = [_retention, _search_attributes]
    secured = " (TLS)" if connect_config(settings).get("tls") else ""
    temporal = [Finding("ok", "temporal", f"connected to {temporal_target(settings)}{secured}")]
    temporal += [await check(client, settings) for check in checks]
    return [*temporal, *findings]


async def _retention(client: Client, settings: Settings) -> Finding:
    namespace = settings.temporal_namespace
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    if retention <= settings.archive_after:
        hours = int(settings.purge_replayed_after.total_seconds() // 3600)
        return Finding(
            "fail",
            "retention",
            f"namespace {namespace} keeps histories {retention}, not longer than the archive age "
            f"{settings.archive_after}, so old dead letters cannot be reset; run: temporal operator "
            f"namespace update -n {namespace} --retention {hours}h",
        )
    return Finding("ok", "retention", f"namespace {namespace} keeps histories {retention}")


async def _search_attributes(client: Client, settings: Settings) -> Finding:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=settings.temporal_namespace)
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    missing = [key.name for key in SEARCH_ATTRIBUTES if listed.custom_attributes.get(key.name) != keyword]
    if missing:
        create = "temporal operator search-attribute create --type Keyword --name"
        commands = "; ".join(f"{create} {name}" for name in missing)
        message = f"missing or not Keyword: {', '.join(missing)}; run: {commands}"
        return Finding("fail", "search attributes", message)
    return Finding("ok", "search attributes", ", ".join(key.name for key in SEARCH_ATTRIBUTES))


async def _database(settings: Settings) -> Finding:
    url = settings.resolved_database_url()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if url.startswith("sqlite") and not await asyncio.to_thread(Path(url.split(":///", 1)[-1]).exists):
        return Finding("fail", "database", f"no database at {url}; run: redrive migrate")
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_revision)
    except Exception as error:  # an unreachable database is the finding itself
        return Finding("fail", "database", f"cannot open {engine.url.render_as_string()}: {error}")
    finally:
        await engine.dispose()
    if current != head:
        return Finding(
            "fail", "database", f"schema at {current or 'nothing'}, code expects {head}; run: redrive migrate"
        )
    return Finding("ok", "database", f"schema at {head}")


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _smtp(settings: Settings) -> Finding:
    alerts = settings.alerts
    if not alerts.smtp_host:
        return Finding("warn", "smtp", "REDRIVE_SMTP_HOST is not set: dead letters will not be e-mailed")
    if not alerts.recipients():
        return Finding("warn", "smtp", "REDRIVE_ALERT_EMAILS is empty: nobody will be e-mailed")
    try:
        with smtplib.SMTP(alerts.smtp_host, alerts.smtp_port, timeout=CONNECT_TIMEOUT_S) as smtp:
            if alerts.smtp_starttls:
                smtp.starttls()
            if alerts.smtp_username:
                smtp.login(alerts.smtp_username, alerts.smtp_password)
            smtp.noop()
    except (OSError, smtplib.SMTPException) as error:
        return Finding(
            "fail", "smtp", f"{alerts.smtp_host}:{alerts.smtp_port}: {error}; check REDRIVE_SMTP_*"
        )
    return Finding("ok", "smtp", f"{alerts.smtp_host}:{alerts.smtp_port} answers")
