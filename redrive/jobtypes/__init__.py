"""Job types: a name and an ordered list of stages, each declaring its handler, retries and timeouts."""

from redrive.jobtypes.loading import ENTRY_POINT_GROUP, load_job_types, resolve_handler, stage_handlers
from redrive.jobtypes.overrides import ConfigError
from redrive.jobtypes.registry import JobType, JobTypeRegistry, Stage, UnknownJobType

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConfigError",
    "JobType",
    "JobTypeRegistry",
    "Stage",
    "UnknownJobType",
    "load_job_types",
    "resolve_handler",
    "stage_handlers",
]
