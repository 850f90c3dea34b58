"""Deterministic workflow code only: no I/O, clocks or randomness outside `workflow.*`.

The sandbox executes this package's `__init__` again for every workflow run, so it imports only
`JobWorkflow`, the hot one; the others (`workflows.maintenance`, `workflows.superseded_run`) are
imported by module where they are registered.
"""

from redrive.workflows.job import JobWorkflow

__all__ = ["JobWorkflow"]
