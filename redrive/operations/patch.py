"""A retry with an edited payload: the dead job's payload changed by a JSON Merge Patch (RFC 7396),
checked like a new submission, and the stages before the one to retry carried over from the dead
run's history with their outputs, so the job continues in a new run without running them again.

A Temporal reset cannot change a run's input, so this is the one retry that starts a run: the same
workflow id (the job id), its input the dead run's stage plan, the patched payload, the stage to
begin at and the outputs before it."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import MarkerRecordedEventAttributes
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import JobInput, StageResult


def merge_patch(target: Any, patch: Any) -> Any:
    """`target` changed by `patch` as RFC 7396 says: an object merges key by key, `null` removes a
    key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched_fields(patch: dict[str, Any], prefix: str = "payload") -> list[str]:
    """The fields `patch` sets or removes, as `payload.a.b`: what the job's action log records."""
    fields: list[str] = []
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            fields += patched_fields(value, f"{prefix}.{key}")
        else:
            fields.append(f"{prefix}.{key}")
    return fields


async def dead_run(client: Client, job_id: str, run_id: str) -> tuple[JobInput, dict[str, Any]] | None:
    """The dead run's input and the output of every stage it completed, or None when its history is
    gone (past retention)."""
    handle = client.get_workflow_handle(job_id, run_id=run_id)
    started: JobInput | None = None
    scheduled: dict[int, str] = {}
    outputs: dict[str, Any] = {}
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                (started,) = await client.data_converter.decode(payloads, [JobInput])
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
            elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                marker = event.marker_recorded_event_attributes
                stage = _local_activity_id(marker)
                names = {plan.name for plan in started.stages} if started is not None else set()
                if stage in names and "result" in marker.details and marker.details["result"].payloads:
                    decoded = await client.data_converter.decode(
                        marker.details["result"].payloads, [StageResult]
                    )
                    outputs[str(stage)] = decoded[0].output
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                attributes = event.activity_task_completed_event_attributes
                stage = scheduled.get(attributes.scheduled_event_id)
                names = {plan.name for plan in started.stages} if started is not None else set()
                if stage in names and attributes.result.payloads:
                    decoded = await client.data_converter.decode(attributes.result.payloads, [StageResult])
                    outputs[str(stage)] = decoded[0].output
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if started is None:
        return None
    return started, {**started.outputs, **outputs}


LOCAL_ACTIVITY_MARKER = "core_local_activity"
"""The marker the SDK's core records a local activity's outcome with (a local stage's)."""


def _local_activity_id(marker: MarkerRecordedEventAttributes) -> str | None:
    """The activity id a local activity's marker records (its `data` detail is JSON), else None."""
    if marker.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in marker.details:
        return None
    for payload in marker.details["data"].payloads:
        try:
            data = json.loads(payload.data)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("activity_id"), str):
            return str(data["activity_id"])
    return None
