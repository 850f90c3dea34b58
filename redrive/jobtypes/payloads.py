"""Payload models: a job type may declare one, and the API rejects a payload that does not fit it
(422 naming the field) before anything reaches Temporal; its stage handlers read the payload through
the same model (`read_payload`)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from redrive.errors import ERROR_CLASSES, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def payload_errors(model: type[BaseModel], payload: dict[str, Any]) -> list[dict[str, str]]:
    """Every `{field, message}` that keeps `payload` from fitting `model` (fields as `payload.x`)."""
    try:
        model.model_validate(payload)
    except PydanticValidationError as error:
        return [
            {"field": ".".join(["payload", *map(str, item["loc"])]), "message": item["msg"]}
            for item in error.errors()
        ]
    return []


MAX_DEPTH = 64
"""How deep a payload may nest: deeper JSON cannot be walked, stored or rendered safely everywhere."""


def unstorable(value: Any, path: str = "payload", depth: int = 0) -> tuple[str, str] | None:
    """The first `(field, message)` in `value` that a store cannot hold: a number that is not finite
    (JSON has no NaN or Infinity; PostgreSQL refuses them), text with a NUL character (PostgreSQL's
    text and JSON refuse it) or a lone surrogate (not UTF-8), in values and keys alike."""
    if depth > MAX_DEPTH:
        return path, f"nests deeper than {MAX_DEPTH} levels; flatten it"
    if isinstance(value, float) and not math.isfinite(value):
        return path, f"{value} is not a JSON number; send a finite number, or null"
    if isinstance(value, str):
        return _bad_text(value, path)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _bad_text(str(key), f"{path} (a key)") or unstorable(item, f"{path}.{key}", depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := unstorable(item, f"{path}[{index}]", depth + 1):
                return found
    return None


def _bad_text(text: str, path: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return path, "contains a NUL character (\\u0000), which no store can hold as text; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return path, "contains a lone surrogate (such as \\ud800), which is not UTF-8; send whole characters"
    return None


def printable(text: str) -> str:
    """`text` as every store can hold it: NUL characters and lone surrogates replaced."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def read_payload(model: type[Model], payload: dict[str, Any]) -> Model:
    """`payload` as `model`, for a stage handler; a payload that does not fit (one that never went
    through the API) is the permanent `ValidationError` naming the first bad field."""
    if errors := payload_errors(model, payload):
        raise ValidationError(f"{errors[0]['field']}: {errors[0]['message']}")
    return model.model_validate(payload)


class WebhookPayload(BaseModel):
    """What a `webhook` job sends."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(examples=["https://example.com/hooks/orders"])
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),
    ] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: Any = None


def _taxonomy_name(value: str) -> str:
    if value not in ERROR_CLASSES:
        raise ValueError(f"must be one of: {', '.join(ERROR_CLASSES)}")
    return value


class DemoFailure(BaseModel):
    """Which stage of a `demo` job fails, with which taxonomy error, and for how long."""

    model_config = ConfigDict(extra="forbid", strict=True)

    stage: str = Field(examples=["process"])
    error: Annotated[str, AfterValidator(_taxonomy_name)] = Field(examples=["ServiceUnavailable"])
    times: int | None = Field(default=None, ge=0, description="fail the first `times` attempts only")
    while_exists: str | None = Field(default=None, description="fail while this file exists on the worker")


class DemoPayload(BaseModel):
    """What a `demo` job does: sleep in each stage, and fail where `fail` says."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sleep_ms: int = Field(default=0, ge=0, le=3_600_000)
    fail: DemoFailure | None = None
