"""Deterministic workflow code only: no I/O, clocks or randomness outside `workflow.*`."""

from workflows.job import JobWorkflow

__all__ = ["JobWorkflow"]
