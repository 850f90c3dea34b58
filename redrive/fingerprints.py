"""Error fingerprints: dead letters that failed the same way share one, whatever ids, numbers or URLs
their messages carry, so an operator can retry or discard a whole group at once."""

from __future__ import annotations

import hashlib
import re

# Order matters: URLs and UUIDs contain digits and hex runs that the later patterns would split.
_NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "<url>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<email>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\b[a-z]+[-_](?=[a-z0-9]*\d)[a-z0-9]{6,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"[-+]?\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)
MAX_NORMALISED = 500


def normalise_message(message: str) -> str:
    """`message` with URLs, ids, e-mail addresses and numbers replaced by placeholders."""
    for pattern, placeholder in _NORMALISERS:
        message = pattern.sub(placeholder, message)
    return message.strip()[:MAX_NORMALISED]


def fingerprint(job_type: str, stage: str, error_type: str, message: str) -> str:
    """A stable 16-hex-digit key for (job type, stage, error type, normalised message)."""
    key = "\0".join((job_type, stage, error_type, normalise_message(message)))
    return hashlib.sha256(key.encode()).hexdigest()[:16]
