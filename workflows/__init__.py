"""Deterministic workflow code only: no I/O, clocks or randomness outside `workflow.*`.

The sandbox executes this package's `__init__` again for every workflow run, so it imports only
`JobWorkflow`, the hot one; `workflows.maintenance` is imported by name where it is needed.
"""

from workflows.job import JobWorkflow

__all__ = ["JobWorkflow"]
