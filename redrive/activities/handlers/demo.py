"""The `demo` job type: each stage sleeps `payload.sleep_ms` and fails on demand.

    {"sleep_ms": 200, "fail": {"stage": "process", "error": "ServiceUnavailable", "times": 2}}

`fail.error` is a taxonomy name. Without `times` or `while_exists` the stage fails on every
attempt; with `times` on its first `times` attempts; with `while_exists` as long as that file exists
on the worker (delete it, then retry the dead job, to watch it complete). The API checks the payload
against `DemoPayload` at submission, so the stage only reads it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio import activity

from redrive.context import StageContext
from redrive.errors import ERROR_CLASSES
from redrive.jobtypes.payloads import DemoFailure, DemoPayload, read_payload

_HEARTBEAT_EVERY_S = 1.0


async def run_stage(context: StageContext) -> dict[str, Any]:
    """Sleep, then fail if the payload asks this stage to."""
    payload = read_payload(DemoPayload, context.payload)
    await _sleep(payload.sleep_ms / 1000)
    if payload.fail is not None and _should_fail(payload.fail, context):
        raise ERROR_CLASSES[payload.fail.error](
            f"demo failure in stage {context.stage} on attempt {context.attempt}"
        )
    return {"stage": context.stage, "slept_ms": payload.sleep_ms}


def _should_fail(fail: DemoFailure, context: StageContext) -> bool:
    if fail.stage != context.stage:
        return False
    if fail.while_exists is not None:
        return Path(fail.while_exists).exists()
    return fail.times is None or context.attempt <= fail.times


async def _sleep(seconds: float) -> None:
    # Heartbeat while sleeping so a stage with a heartbeat timeout sees cancellation promptly.
    while seconds > 0:
        step = min(seconds, _HEARTBEAT_EVERY_S)
        await asyncio.sleep(step)
        seconds -= step
        if activity.in_activity():
            activity.heartbeat()
