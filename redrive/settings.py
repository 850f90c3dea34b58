"""One `Settings` object, read from `REDRIVE_*` environment variables where the program is assembled."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from redrive.durations import Duration

SECRETS_DIR = os.environ.get("REDRIVE_SECRETS_DIR") or None
"""A folder of files named like the variables (`REDRIVE_DATABASE_URL`, …), as Kubernetes mounts a
Secret: each file's content is that setting's value unless the variable itself is set. Read once,
when the process starts."""


class AlertSettings(BaseSettings):
    """Where dead-letter alerts go: the SMTP server and recipients, the signed webhook, and the window
    that holds one alert per error fingerprint (`REDRIVE_SMTP_*`, `REDRIVE_ALERT_*`)."""

    model_config = SettingsConfigDict(env_prefix="REDRIVE_", extra="ignore", secrets_dir=SECRETS_DIR)

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_sender: str = "redrive@localhost"
    alert_emails: str = Field(default="", description="comma-separated recipients of dead-letter alerts")
    alert_window: Duration = Field(
        default=timedelta(hours=1), description="one alert per fingerprint per window"
    )
    alert_webhook_url: str = ""
    alert_webhook_secret: str = Field(default="", description="HMAC-SHA256 key for the alert webhook")

    def recipients(self) -> tuple[str, ...]:
        """Who receives dead-letter e-mails."""
        return tuple(address.strip() for address in self.alert_emails.split(",") if address.strip())

    @property
    def email_on(self) -> bool:
        """E-mail needs a server and at least one recipient."""
        return bool(self.smtp_host and self.recipients())

    @property
    def enabled(self) -> bool:
        """Some channel is configured."""
        return self.email_on or bool(self.alert_webhook_url)


class Settings(BaseSettings):
    """Configuration for the worker, the API and `redrive dev`; defaults suit `redrive dev`."""

    model_config = SettingsConfigDict(env_prefix="REDRIVE_", extra="ignore", secrets_dir=SECRETS_DIR)

    home: Path = Path(".redrive")
    secrets_dir: Path | None = Field(default=None, description="settings read from files here (SECRETS_DIR)")
    database_url: str = ""
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_api_key: str = Field(default="", description="Temporal Cloud API key (TEMPORAL_API_KEY)")
    temporal_tls: bool | None = Field(default=None, description="TLS to Temporal on or off (TEMPORAL_TLS)")
    temporal_tls_server_ca_cert_path: Path | None = Field(
        default=None, description="CA of Temporal's certificate"
    )
    temporal_tls_server_name: str = Field(default="", description="the name Temporal's certificate is for")
    temporal_tls_client_cert_path: Path | None = Field(default=None, description="client certificate (mTLS)")
    temporal_tls_client_key_path: Path | None = Field(default=None, description="client key (mTLS)")
    task_queue: str = "redrive"
    config: Path | None = Field(default=None, description="TOML file: retry overrides and job types")
    job_types: str = Field(default="", description="comma-separated module:attribute paths of JobTypes")
    worker_job_types: str = Field(default="", description="comma-separated: the job types this worker serves")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    ui_url: str = ""
    api_keys: str = Field(default="", description="comma-separated key:tenant pairs")
    graceful_shutdown_seconds: float = 10.0
    workflow_sandbox: bool = Field(
        default=True, description="run workflow code in the SDK's sandbox; off saves worker CPU per job"
    )
    metrics_port: int | None = Field(default=None, description="the worker serves Prometheus metrics here")
    tracing: bool | None = Field(
        default=None, description="OpenTelemetry traces; default: on with an OTLP endpoint"
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None, description="json or text; default json for worker and api, text for redrive dev"
    )
    payload_key: str = Field(default="", description="32-byte URL-safe base64 key: encrypt Temporal payloads")
    max_body_bytes: int = Field(default=256 * 1024, gt=0, description="larger request bodies get 413")
    archive_after: Duration = Field(default=timedelta(days=7), description="dead letters older are archived")
    purge_replayed_after: Duration = Field(
        default=timedelta(days=30), description="replayed entries are purged"
    )
    maintenance_interval: Duration = timedelta(hours=1)
    reconcile_lookback: Duration = timedelta(days=2)
    max_replays: int = Field(
        default=3, ge=0, description="round trips through the DLQ before a replay needs force"
    )
    replay_rate: float = Field(default=20.0, gt=0, description="default bulk replays per second")
    public_api_url: str = Field(default="", description="base URL of the API in notification links")
    api_url: str = Field(default="", description="where `redrive jobs|dlq` send requests")
    api_key: str = Field(default="", description="the key `redrive jobs|dlq` send")
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("payload_key")
    @classmethod
    def _check_payload_key(cls, value: str) -> str:
        if value:
            from redrive.codec import parse_key  # cryptography loads only when a key is set

            parse_key(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    def served_job_types(self) -> list[str]:
        """`REDRIVE_WORKER_JOB_TYPES` as names (none: every job type)."""
        return [name.strip() for name in self.worker_job_types.split(",") if name.strip()]

    @property
    def operations_task_queue(self) -> str:
        """The task queue of replay campaigns, beside `task_queue`: every worker polls both, and a
        campaign's decisions and steps never wait in line behind the jobs it has just restarted."""
        return f"{self.task_queue}-operations"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'redrive.db').resolve()}"

    def resolved_ui_url(self) -> str:
        """Base URL of the Temporal Web UI, for links to jobs."""
        return self.ui_url or f"http://localhost:{self.ui_port}"

    def resolved_api_url(self) -> str:
        """Base URL of the API, for links in notifications."""
        return self.public_api_url or f"http://{self.api_host}:{self.api_port}"

    def static_keys(self) -> dict[str, StaticKey]:
        """API key → its tenant and scopes."""
        return parse_api_keys(self.api_keys)


DEFAULT_SCOPES = ("submit", "read", "operate")
KNOWN_SCOPES = (*DEFAULT_SCOPES, "admin")


@dataclass(frozen=True)
class StaticKey:
    """A key from `REDRIVE_API_KEYS` (for development and bootstrapping; `redrive keys` manages the
    hashed ones in the database)."""

    tenant: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES


def parse_api_keys(value: str) -> dict[str, StaticKey]:
    """Parse `key:tenant[:scope+scope],…`; a malformed entry is an error that names it."""
    keys: dict[str, StaticKey] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        key, sep, rest = entry.partition(":")
        tenant, _, scopes = rest.partition(":")
        if not sep or not key or not tenant:
            raise ValueError(f"REDRIVE_API_KEYS entry {entry[:4]}… must look like key:tenant[:scope+scope]")
        if tenant == "*":
            raise ValueError("REDRIVE_API_KEYS: '*' is reserved (it means every tenant); name the tenant")
        wanted = tuple(scopes.split("+")) if scopes else DEFAULT_SCOPES
        if unknown := set(wanted) - set(KNOWN_SCOPES):
            raise ValueError(
                f"REDRIVE_API_KEYS: unknown scope {sorted(unknown)[0]}; scopes: {', '.join(KNOWN_SCOPES)}"
            )
        keys[key] = StaticKey(tenant, wanted)
    return keys
