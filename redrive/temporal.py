"""The Temporal client every redrive process uses: one data converter (pydantic) everywhere."""

from __future__ import annotations

from temporalio.client import Client

from redrive.codec import data_converter
from redrive.settings import Settings


async def connect(settings: Settings) -> Client:
    """A client for the configured server and namespace."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.payload_key),
    )


def workflow_url(settings: Settings, workflow_id: str, run_id: str | None) -> str:
    """The job's page in the Temporal Web UI."""
    return ui_workflow_url(settings.resolved_ui_url(), settings.temporal_namespace, workflow_id, run_id)


def ui_workflow_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    """A workflow's page in the Temporal Web UI at `ui_url`."""
    base = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base
