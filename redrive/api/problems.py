"""Errors as `application/problem+json` (RFC 9457), each with a detail a person can act on.

The one place where the operations' refusals become HTTP statuses: `NotFound` 404, `Conflict` 409,
`Invalid` 422 (their fields are in the request body, so `field` gets the `body.` prefix)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError, RPCStatusCode

from redrive.operations import Conflict, Invalid, NotFound, OperationError, Unanswered
from redrive.store.engine import out_of_reach

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
UNAVAILABLE_RETRY_AFTER_S = 5


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.field = status, title, detail, field
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(problem: Problem) -> JSONResponse:
    """The JSON response for `problem`."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    if problem.field is not None:
        body["field"] = problem.field
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


async def _validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": _field(item.get("loc", ())), "message": item.get("msg", "invalid")}
        for item in error.errors()
    ]
    return problem_response(invalid(errors))


def invalid(errors: list[dict[str, str]], title: str = "Invalid request") -> Problem:
    """A 422 listing every `{field, message}`, with the first one in `detail` and `field`."""
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    detail = f"{first['field']}: {first['message']}"
    return Problem(422, title, detail, field=first["field"], extra={"errors": errors})


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:  # Starlette names the first matching route's methods only
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(Problem(error.status_code, str(error.detail), str(error.detail), headers=headers))


async def _problem(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, Problem)
    return problem_response(error)


STATUS_OF: dict[type[OperationError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unanswered: 503,
    OperationError: 409,
}


def from_refusal(error: OperationError) -> Problem:
    """The problem document for an operation's refusal."""
    field = f"body.{error.field}" if error.field is not None else None
    status = next(code for kind, code in STATUS_OF.items() if isinstance(error, kind))
    extra = {}
    if isinstance(error, Invalid):
        extra["errors"] = [{**item, "field": f"body.{item['field']}"} for item in error.errors]
    return Problem(status, error.title, error.detail, field=field, extra=extra)


async def _refusal(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OperationError)
    return problem_response(from_refusal(error))


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods - {"HEAD"})


def _unavailable(what: str) -> JSONResponse:
    return problem_response(
        Problem(
            503,
            f"{what} unavailable",
            f"{what} cannot be reached right now; nothing was changed. Try again shortly.",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    )


async def _rpc(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RPCError)
    # CANCELLED: the server gave up on the call (seen for a reset of a run still closing).
    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return _unavailable("Temporal")
    raise error


async def _database(_request: Request, error: Exception) -> JSONResponse:
    if out_of_reach(error):
        return _unavailable("The database")
    # The database refused what was sent: a defect (input the edge should have refused), not an
    # outage; saying "unavailable, nothing changed, retry" would invite a retry that fails the same.
    log.error("the database refused a request's statement", exc_info=error)
    return problem_response(Problem(500, "Internal error", "the database refused the request; it is logged"))


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the app raises a problem document."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(OperationError, _refusal)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RPCError, _rpc)
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(SQLTimeoutError, _database)  # no pooled connection came free
    # asyncpg raises the socket's own error when PostgreSQL refuses the connection; the API makes no
    # other network calls of its own, so an OSError here means the database is out of reach.
    app.add_exception_handler(OSError, _database)
