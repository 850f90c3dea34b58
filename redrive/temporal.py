"""The Temporal client every redrive process uses: one data converter (pydantic) everywhere."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

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


def exit_process(code: int) -> NoReturn:
    """End a process that has used a Temporal client, skipping the interpreter's teardown.

    The SDK's Rust threads can still call into Python while the interpreter finalizes, which aborts
    the process with "Fatal Python error: PyGILState_Release" (sdk-python issue 300): 30 of 182
    worker exits after a clean drain in one day's benchmark runs, most of them short of CPU. Call it
    once everything of ours is closed; it flushes logging and the standard streams, nothing else.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def workflow_url(settings: Settings, workflow_id: str, run_id: str | None) -> str:
    """The job's page in the Temporal Web UI."""
    return ui_workflow_url(settings.resolved_ui_url(), settings.temporal_namespace, workflow_id, run_id)


def ui_workflow_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    """A workflow's page in the Temporal Web UI at `ui_url`."""
    base = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base
