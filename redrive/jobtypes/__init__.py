"""Job types: a name and an ordered list of stages, each declaring its activity, retries and timeouts."""

from redrive.jobtypes.builtin import builtin_registry
from redrive.jobtypes.overrides import ConfigError, load_registry
from redrive.jobtypes.registry import JobType, JobTypeRegistry, StageSpec, UnknownJobType

__all__ = [
    "ConfigError",
    "JobType",
    "JobTypeRegistry",
    "StageSpec",
    "UnknownJobType",
    "builtin_registry",
    "load_registry",
]
