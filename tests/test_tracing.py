"""OpenTelemetry: with tracing on, a job's request, workflow, stages and dead letter are one trace
(spans kept in memory by the test's own tracer provider)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from redrive.settings import Settings
from tests.support import eventually, job_in, self_connected, settings_for

A = {"Authorization": "Bearer key-a"}


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Every span this process ends (a tracer provider can be installed once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
async def traced(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker with REDRIVE_TRACING on, each connecting to Temporal itself."""
    settings = settings_for(
        sqlite_url, tmp_path, tracing=True, temporal_address=dev_env.client.service_client.config.target_host
    )
    async with self_connected(settings, A) as http:
        yield http


def _about(spans: tuple[ReadableSpan, ...], job_id: str) -> list[ReadableSpan]:
    return [span for span in spans if (span.attributes or {}).get("temporalWorkflowID") == job_id]


async def test_a_job_is_one_trace(traced: httpx.AsyncClient, spans: InMemorySpanExporter) -> None:
    """The POST, the workflow, each stage attempt and the dead-letter bookkeeping share a trace id."""
    failing = {"fail": {"stage": "process", "error": "CorruptedFile"}}
    created = await traced.post("/v1/jobs", json={"type": "demo", "payload": failing})
    job_id = created.json()["id"]
    await eventually(lambda: job_in(traced, job_id, "dead_letter"), within=60)
    await asyncio.sleep(1)  # the workflow's last spans end once it has failed
    ended = spans.get_finished_spans()
    ours = _about(ended, job_id)
    names = {span.name for span in ours}
    assert {
        "StartWorkflow:demo",
        "RunWorkflow:demo",
        "RunActivity:demo.prepare",
        "RunActivity:demo.process",
    } <= names
    assert "RunActivity:record_dead_letter" in names, names
    request = [span for span in ended if span.name == "POST /v1/jobs" and span.kind == trace.SpanKind.SERVER]
    trace_ids = {span.context.trace_id for span in ours} | {span.context.trace_id for span in request[-1:]}
    assert len(trace_ids) == 1, sorted(names)


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTLP endpoint and no REDRIVE_TRACING: no interceptor, so nothing is spent on traces."""
    from redrive.tracing import client_interceptors

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert client_interceptors(Settings()) == []
