"""Log lines for people and for log pipelines: `REDRIVE_LOG_FORMAT=json` writes one JSON object a
line, `text` a readable line; either way a line about a job carries `job_id`, `run_id`, `job_type`,
`stage`, `attempt` and `tenant` (pass them as `extra`, see `job_fields`). The Temporal SDK's and
uvicorn's loggers go through the same handler."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

JOB_FIELDS = ("job_id", "run_id", "job_type", "stage", "attempt", "tenant")
LogFormat = Literal["json", "text"]
QUIET = ("httpx", "httpcore", "aiosqlite", "asyncio")
"""Libraries whose INFO lines say nothing an operator needs (httpx logs every request)."""


def job_fields(**fields: Any) -> dict[str, Any]:
    """The `extra` of a log call about a job: the given job fields that are not None."""
    if unknown := set(fields) - set(JOB_FIELDS):
        raise ValueError(f"not a job field: {sorted(unknown)}")
    return {key: value for key, value in fields.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the job fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({field: getattr(record, field) for field in JOB_FIELDS if hasattr(record, field)})
        activity = getattr(record, "temporal_activity", None)  # the SDK's own context
        if isinstance(activity, dict):
            line.setdefault("job_id", activity.get("workflow_id"))
            line.setdefault("run_id", activity.get("workflow_run_id"))
            line.setdefault("stage", activity.get("activity_id"))
            line.setdefault("attempt", activity.get("attempt"))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [job_id=… stage=… attempt=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(
            f"{field}={getattr(record, field)}" for field in JOB_FIELDS if hasattr(record, field)
        )
        return f"{text} [{fields}]" if fields else text


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Send every logger's records through one handler on standard error, in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # through the root handler, in the same format
        logging.getLogger(name).propagate = True
