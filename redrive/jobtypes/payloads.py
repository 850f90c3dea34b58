"""Payload models: a job type may declare one, and the API rejects a payload that does not fit it
(422 naming the field) before anything reaches Temporal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


class WebhookPayload(BaseModel):
    """What a `webhook` job sends."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(examples=["https://example.com/hooks/orders"])
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: Any = None
