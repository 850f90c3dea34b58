"""What an operation refuses, in domain terms. The API maps each kind to an HTTP status in one place
(`api/problems.py`); a workflow, the CLI or a test catches them as they are.

    OperationError          title (short), detail (what to do about it), the field to blame if any
    ├── NotFound            the tenant has no such job or dead letter
    ├── Conflict            the job is not in a state that allows this (not dead, already replayed, …)
    │   └── Busy            another request is doing it right now: ask again shortly
    ├── Invalid             an argument does not fit: `field` names it, `errors` lists every problem
    └── Unanswered          what must answer (a worker, for a campaign's progress) did not in time
"""

from __future__ import annotations


class OperationError(Exception):
    """An operation that was refused; nothing was changed."""

    def __init__(self, title: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.title, self.detail, self.field = title, detail, field


class NotFound(OperationError):
    """No such object for this tenant (another tenant's object is not found either)."""


class Conflict(OperationError):
    """The object exists but is not in a state that allows the operation."""


class Busy(Conflict):
    """Another request holds the object for the same change at this moment (a retry under way)."""


class Invalid(OperationError):
    """An argument does not fit; `field` is its dotted path within the operation's input."""

    def __init__(
        self, title: str, detail: str, *, field: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(title, detail, field=field)
        self.errors = errors or [{"field": field, "message": detail}]


class Unanswered(OperationError):
    """Nothing answered in time: no worker is polling, or every worker is too busy. Ask again later."""
