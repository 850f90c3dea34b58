"""Payload models: a job type may declare one, and the API rejects a payload that does not fit it
(422 naming the field) before anything reaches Temporal; its stage handlers read the payload through
the same model (`read_payload`)."""

from __future__ import annotations

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
