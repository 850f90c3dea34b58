"""Breaker alerts: when a breaker opens and when it closes, on the dead-letter alerts' channels."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import httpx

from redrive.activities.alerts.config import AlertConfig
from redrive.activities.alerts.email import addressed, send_email
from redrive.activities.alerts.webhook import post_event


@dataclass(frozen=True)
class BreakerAlert:
    """A breaker that moved to `state`, why, and who moved it (`breaker` when it moved by itself)."""

    job_type: str
    stage: str
    key: str
    state: str
    reason: str
    actor: str
    at: datetime

    def breaker_url(self, config: AlertConfig) -> str:
        """The breaker in the REST API."""
        query = f"?key={self.key}" if self.key else ""
        return f"{config.api_url.rstrip('/')}/v1/breakers/{self.job_type}/{self.stage}{query}"


async def announce_breaker(http: httpx.AsyncClient, alert: BreakerAlert, config: AlertConfig) -> None:
    """Send `alert` on every configured channel (nothing when none is)."""
    if config.email_on:
        where = f"{alert.job_type}/{alert.stage}" + (f" ({alert.key})" if alert.key else "")
        message = addressed(config, f"[redrive] breaker {alert.state}: {where}")
        lines = [
            f"The circuit breaker of stage {alert.stage} of job type {alert.job_type} is {alert.state}.",
            "",
            f"Why:     {alert.reason}",
            f"By:      {alert.actor}",
            f"Since:   {alert.at.isoformat()}",
            f"Breaker: {alert.breaker_url(config)}",
        ]
        if alert.state == "open":
            lines += ["", "Jobs at this stage wait, paused, instead of spending their retries."]
        message.set_content("\n".join(lines) + "\n")
        await send_email(message, config)
    if config.channels.alert_webhook_url:
        document = {**asdict(alert), "at": alert.at.isoformat(), "breaker_url": alert.breaker_url(config)}
        await post_event(http, f"breaker_{alert.state}", document, config)
