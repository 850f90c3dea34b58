"""Dead-letter e-mail: composed here, sent with the standard library's SMTP client off the loop."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime

from redrive.activities.alerts.config import Alert, AlertConfig

SMTP_TIMEOUT_S = 30.0


def compose_email(alert: Alert, config: AlertConfig) -> EmailMessage:
    """The message for `alert`; its Message-ID is the dead letter's, so a resend is recognisable."""
    message = addressed(
        config, f"[redrive] dead letter: {alert.job_type}/{alert.stage} {alert.reason} (job {alert.job_id})"
    )
    message["Message-ID"] = f"<{alert.dead_letter_id}@redrive>"
    message["Date"] = format_datetime(alert.dlq_at)
    lines = [
        f"Job {alert.job_id} of type {alert.job_type} (tenant {alert.tenant_id}) is dead-lettered.",
        "",
        f"Stage:      {alert.stage}",
        f"Reason:     {alert.reason} after {alert.attempts} attempt(s)",
        f"Last error: {alert.error_type}: {alert.error_message}",
        f"Dead since: {alert.dlq_at.isoformat()}",
        f"Job:        {alert.job_url(config)}",
        f"Temporal:   {alert.temporal_url(config)}",
        f"Fingerprint {alert.fingerprint} (GET /v1/dead-letters/groups)",
    ]
    if alert.digest:
        lines += [
            "",
            f"Also: {alert.digest} more dead letter(s) with this fingerprint since the last e-mail.",
        ]
    lines += ["", f"Retry it from the failed stage: POST {alert.job_url(config)}/retry"]
    message.set_content("\n".join(lines) + "\n")
    return message


def compose_digest(alert: Alert, config: AlertConfig) -> EmailMessage:
    """The digest for `alert.digest` dead letters that were counted, not e-mailed, in a closed window."""
    message = addressed(
        config,
        f"[redrive] digest: {alert.digest} more dead letter(s) {alert.job_type}/{alert.stage} {alert.reason}",
    )
    lines = [
        f"{alert.digest} dead letter(s) failed like this one and were not e-mailed one by one:",
        "",
        f"Type/stage: {alert.job_type}/{alert.stage}",
        f"Reason:     {alert.reason}",
        f"Error:      {alert.error_type}: {alert.error_message}",
        f"Latest job: {alert.job_url(config)}",
        f"Fingerprint {alert.fingerprint}: GET /v1/dead-letters?fingerprint={alert.fingerprint}",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def addressed(config: AlertConfig, subject: str) -> EmailMessage:
    """A message from the configured sender to the alert recipients."""
    message = EmailMessage()
    message["From"] = config.channels.smtp_sender
    message["To"] = ", ".join(config.channels.recipients())
    message["Subject"] = subject
    return message


async def send_email(message: EmailMessage, config: AlertConfig) -> None:
    """Deliver `message` to the configured SMTP server."""
    await asyncio.to_thread(_send, message, config)


def _send(message: EmailMessage, config: AlertConfig) -> None:
    channels = config.channels
    with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
        if channels.smtp_starttls:
            smtp.starttls()
        if channels.smtp_username:
            smtp.login(channels.smtp_username, channels.smtp_password)
        smtp.send_message(message)
