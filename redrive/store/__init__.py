"""The SQL store: tables, engine, repositories, migrations (SQLite by default, PostgreSQL in production)."""

from redrive.store.engine import create_engine, session_factory
from redrive.store.migrate import upgrade
from redrive.store.models import AlertWindow, ApiKey, DeadLetter, Job, JobAction, JobStage, StageFailure

__all__ = [
    "AlertWindow",
    "ApiKey",
    "DeadLetter",
    "Job",
    "JobAction",
    "JobStage",
    "StageFailure",
    "create_engine",
    "session_factory",
    "upgrade",
]
