"""Deterministic workflow code only: no I/O, clocks or randomness outside `workflow.*`."""

from workflows.job import JobWorkflow
from workflows.maintenance import MaintenanceWorkflow

__all__ = ["JobWorkflow", "MaintenanceWorkflow"]
