"""Opaque keyset cursors for job listings."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from redrive.api.problems import Problem


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """The cursor after the job created at `created_at` with id `job_id`."""
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The keyset position in `cursor`; a 422 naming `cursor` when it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(job_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise Problem(
            422,
            "Invalid cursor",
            "cursor: not a cursor from this API; pass next_cursor from the previous page unchanged",
            field="query.cursor",
        ) from None
