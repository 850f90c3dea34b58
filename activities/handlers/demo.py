"""The `demo` job type: each stage sleeps `payload.sleep_ms` and fails on demand.

    {"sleep_ms": 200, "fail": {"stage": "process", "error": "ServiceUnavailable", "times": 2}}

`fail.error` is a taxonomy name. Without `times` or `while_exists` the stage fails on every
attempt; with `times` on its first `times` attempts; with `while_exists` as long as that file exists
on the worker (delete it, then retry the dead job, to watch it complete).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.context import StageContext
from redrive.errors import ERROR_CLASSES, ValidationError

_HEARTBEAT_EVERY_S = 1.0


async def run_stage(context: StageContext) -> dict[str, Any]:
    """Sleep, then fail if the payload asks this stage to."""
    sleep_ms = _sleep_ms(context.payload)
    await _sleep(sleep_ms / 1000)
    fail = context.payload.get("fail")
    if fail is not None and _should_fail(_fail_spec(fail), context):
        raise ERROR_CLASSES[fail["error"]](
            f"demo failure in stage {context.stage} on attempt {context.attempt}"
        )
    return {"stage": context.stage, "slept_ms": sleep_ms}


def _sleep_ms(payload: dict[str, Any]) -> int:
    value = payload.get("sleep_ms", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3_600_000:
        raise ValidationError("payload.sleep_ms must be a whole number of milliseconds, 0 to 3600000")
    return value


def _fail_spec(fail: Any) -> dict[str, Any]:
    if not isinstance(fail, dict) or not isinstance(fail.get("stage"), str):
        raise ValidationError('payload.fail must be an object like {"stage": "process", "error": "..."}')
    if fail.get("error") not in ERROR_CLASSES:
        known = ", ".join(ERROR_CLASSES)
        raise ValidationError(f"payload.fail.error must be one of: {known}")
    times = fail.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
        raise ValidationError("payload.fail.times must be a whole number, 0 or more")
    if fail.get("while_exists") is not None and not isinstance(fail["while_exists"], str):
        raise ValidationError("payload.fail.while_exists must be a file path")
    return fail


def _should_fail(fail: dict[str, Any], context: StageContext) -> bool:
    if fail["stage"] != context.stage:
        return False
    if fail.get("while_exists") is not None:
        return Path(fail["while_exists"]).exists()
    times = fail.get("times")
    return times is None or context.attempt <= times


async def _sleep(seconds: float) -> None:
    # Heartbeat while sleeping so a stage with a heartbeat timeout sees cancellation promptly.
    while seconds > 0:
        step = min(seconds, _HEARTBEAT_EVERY_S)
        await asyncio.sleep(step)
        seconds -= step
        if activity.in_activity():
            activity.heartbeat()
