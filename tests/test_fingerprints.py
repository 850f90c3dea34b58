"""Error fingerprints ignore what varies between occurrences of one failure, and nothing else."""

from __future__ import annotations

import pytest

from redrive.fingerprints import fingerprint, normalise_message


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("HTTP 503 from https://api.example.com/v1?id=42 is down", "HTTP <n> from <url> is down"),
        ("job job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7 failed after 3.5 s", "job job-<id> failed after <n> s"),
        ("user bob@example.com id 550e8400-e29b-41d4-a716-446655440000", "user <email> id <id>"),
        ("order ord_9x8y7z6w failed", "order <id> failed"),
        ("  spaced\n\tout  ", "spaced out"),
        ("ServiceUnavailable", "ServiceUnavailable"),
    ],
)
def test_normalise_message(message: str, normalised: str) -> None:
    """Numbers, ids, e-mail addresses and URLs become placeholders; words stay."""
    assert normalise_message(message) == normalised


def test_fingerprint_groups_by_type_stage_error_and_shape() -> None:
    """Same shape → same key; a different job type, stage, error type or wording → a different key."""
    base = fingerprint("webhook", "deliver", "ServiceUnavailable", "HTTP 503 from https://a.example/1")
    assert base == fingerprint(
        "webhook", "deliver", "ServiceUnavailable", "HTTP 502 from https://b.example/2"
    )
    assert len(base) == 16
    others = {
        fingerprint("demo", "deliver", "ServiceUnavailable", "HTTP 503 from https://a.example/1"),
        fingerprint("webhook", "notify", "ServiceUnavailable", "HTTP 503 from https://a.example/1"),
        fingerprint("webhook", "deliver", "TimeoutError", "HTTP 503 from https://a.example/1"),
        fingerprint("webhook", "deliver", "ServiceUnavailable", "HTTP 503 to https://a.example/1"),
    }
    assert base not in others
    assert len(others) == 4
