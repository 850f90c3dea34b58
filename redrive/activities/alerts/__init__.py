"""Dead-letter alerts: e-mail over SMTP and a signed webhook."""

from redrive.activities.alerts.config import Alert, AlertConfig
from redrive.activities.alerts.email import compose_digest, compose_email, send_email
from redrive.activities.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, post_webhook, signature

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertConfig",
    "compose_digest",
    "compose_email",
    "post_webhook",
    "send_email",
    "signature",
]
