"""The Temporal client every redrive process uses: one data converter (pydantic) everywhere."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from redrive.settings import Settings


async def connect(settings: Settings) -> Client:
    """A client for the configured server and namespace."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


def workflow_url(settings: Settings, workflow_id: str, run_id: str | None) -> str:
    """The job's page in the Temporal Web UI."""
    base = f"{settings.resolved_ui_url()}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base
