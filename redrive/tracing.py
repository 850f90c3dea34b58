"""Traces (OpenTelemetry): one trace from `POST /v1/jobs` through every stage to the dead letter.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (spans are then exported over OTLP/HTTP, configured
by the standard `OTEL_*` variables) or when `REDRIVE_TRACING=true` (spans go to whatever tracer
provider the process installed). Off otherwise, at no cost: no interceptor, no instrumentation.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from redrive.settings import Settings


def tracing_on(settings: Settings) -> bool:
    """Whether this process traces; the first time it does, spans start going to the OTLP endpoint
    when one is configured."""
    on = (
        settings.tracing
        if settings.tracing is not None
        else bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    )
    if on:
        _export_over_otlp()
    return on


def client_interceptors(settings: Settings) -> list[Any]:
    """The Temporal client's interceptors: the SDK's tracing one (its workers inherit it)."""
    if not tracing_on(settings):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


@functools.cache
def _export_over_otlp() -> None:
    # Once per process, and only when an endpoint is configured: a test installs its own provider.
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "redrive")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
