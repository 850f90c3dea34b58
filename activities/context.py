"""What a stage handler is given, and the shape every handler has."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class StageContext:
    """One attempt of one stage: the job's payload, earlier stages' outputs and shared clients."""

    job_id: str
    job_type: str
    stage: str
    attempt: int
    payload: dict[str, Any]
    outputs: dict[str, Any]
    http: httpx.AsyncClient


Handler = Callable[[StageContext], Awaitable[Any]]
"""A stage handler: returns the stage's output (any JSON value) or raises a taxonomy error."""
