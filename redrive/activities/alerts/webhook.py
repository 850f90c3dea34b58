"""The alert webhook: a JSON POST signed with HMAC-SHA256 over `<timestamp>.<body>`, so a receiver
can check it came from us and is fresh (compare the timestamp with its own clock)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict
from typing import Any

import httpx

from redrive.activities.alerts.config import Alert, AlertConfig

SIGNATURE_HEADER = "X-Redrive-Signature"
TIMESTAMP_HEADER = "X-Redrive-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def post_webhook(http: httpx.AsyncClient, alert: Alert, config: AlertConfig) -> None:
    """POST the alert; any non-2xx answer raises, so the activity retries it."""
    document = {**asdict(alert), "dlq_at": alert.dlq_at.isoformat(), "job_url": alert.job_url(config)}
    await post_event(http, "dead_letter", document, config)


async def post_event(
    http: httpx.AsyncClient, event: str, document: dict[str, Any], config: AlertConfig
) -> None:
    """POST `{"event": event, **document}`, signed; any non-2xx answer raises."""
    body = json.dumps({"event": event, **document}, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
    if config.channels.alert_webhook_secret:
        headers[SIGNATURE_HEADER] = signature(config.channels.alert_webhook_secret, timestamp, body)
    response = await http.post(config.channels.alert_webhook_url, content=body, headers=headers)
    response.raise_for_status()
