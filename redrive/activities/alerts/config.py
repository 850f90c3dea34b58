"""Where alerts go, read once from `Settings` by the worker, and what one alert says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redrive.settings import AlertSettings, Settings
from redrive.temporal import ui_workflow_url


@dataclass(frozen=True)
class AlertConfig:
    """Where alerts go (the `alerts` part of `Settings`) and the base URLs their links point at."""

    channels: AlertSettings = field(default_factory=AlertSettings.model_construct)
    """SMTP server and recipients, the optional webhook, the window (the defaults send nothing)."""
    api_url: str = "http://127.0.0.1:8000"
    ui_url: str = "http://localhost:8233"
    namespace: str = "default"

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertConfig:
        """The alert configuration `settings` describe."""
        return cls(
            channels=settings.alerts,
            api_url=settings.resolved_api_url(),
            ui_url=settings.resolved_ui_url(),
            namespace=settings.temporal_namespace,
        )

    @property
    def email_on(self) -> bool:
        """E-mail needs a server and at least one recipient."""
        return self.channels.email_on

    @property
    def enabled(self) -> bool:
        """Some channel is configured."""
        return self.channels.enabled

    @property
    def window(self) -> timedelta:
        """One alert per error fingerprint per this long."""
        return self.channels.alert_window


@dataclass(frozen=True)
class Alert:
    """One dead letter (or a digest of several) as the alert reports it."""

    dead_letter_id: str
    job_id: str
    run_id: str
    tenant_id: str
    job_type: str
    stage: str
    reason: str
    error_type: str
    error_message: str
    attempts: int
    fingerprint: str
    dlq_at: datetime
    digest: int = 0
    """Earlier dead letters with this fingerprint that were counted, not e-mailed."""

    def job_url(self, config: AlertConfig) -> str:
        """The job in the REST API."""
        return f"{config.api_url.rstrip('/')}/v1/jobs/{self.job_id}"

    def temporal_url(self, config: AlertConfig) -> str:
        """The dead run in the Temporal Web UI."""
        return ui_workflow_url(config.ui_url, config.namespace, self.job_id, self.run_id)
