"""What the app builds in its lifespan and every route shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.converter import PayloadCodec

from redrive.metrics import ApiMetrics
from redrive.operations import Services
from redrive.settings import StaticKey


@dataclass(frozen=True)
class AppState(Services):
    """The operations' services, plus what only the API needs: the static API keys and the payload
    codec behind `/codec`."""

    static_keys: dict[str, StaticKey]
    codec: PayloadCodec | None = None
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
