"""Requests whose path or query holds a NUL character are refused with 400 before any route runs: no
store can hold one as text (PostgreSQL refuses it mid-query), and no id or filter ever contains one."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from redrive.api.problems import Problem, problem_response


class UrlGuard:
    """ASGI middleware: no NUL in the path or the query string, raw or percent-encoded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for part, raw in (("path", scope.get("raw_path") or b""), ("query", scope["query_string"])):
                if b"\x00" in unquote_to_bytes(raw):
                    detail = (
                        f"the {part} holds a NUL character (%00), which no id or filter contains; remove it"
                    )
                    await problem_response(Problem(400, "NUL character in the URL", detail, field=part))(
                        scope, receive, send
                    )
                    return
        await self.app(scope, receive, send)
