"""Where alerts go, read once from `Settings` by the worker, and what one alert says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redrive.settings import Settings
from redrive.temporal import ui_workflow_url


@dataclass(frozen=True)
class AlertConfig:
    """SMTP server and recipients, the optional webhook, the window, and the base URLs for links."""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    sender: str = "redrive@localhost"
    recipients: tuple[str, ...] = ()
    webhook_url: str = ""
    webhook_secret: str = ""
    window: timedelta = timedelta(hours=1)
    api_url: str = "http://127.0.0.1:8000"
    ui_url: str = "http://localhost:8233"
    namespace: str = "default"

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertConfig:
        """The alert configuration `settings` describe."""
        return cls(
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_username=settings.smtp_username,
            smtp_password=settings.smtp_password,
            smtp_starttls=settings.smtp_starttls,
            sender=settings.smtp_sender,
            recipients=tuple(settings.alert_recipients()),
            webhook_url=settings.alert_webhook_url,
            webhook_secret=settings.alert_webhook_secret,
            window=settings.alert_window,
            api_url=settings.resolved_api_url(),
            ui_url=settings.resolved_ui_url(),
            namespace=settings.temporal_namespace,
        )

    @property
    def email_on(self) -> bool:
        """E-mail needs a server and at least one recipient."""
        return bool(self.smtp_host and self.recipients)

    @property
    def enabled(self) -> bool:
        """Some channel is configured."""
        return self.email_on or bool(self.webhook_url)


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
