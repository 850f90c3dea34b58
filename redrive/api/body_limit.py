"""Request bodies over the configured size are refused with 413 before any route (or Temporal)
sees them: by Content-Length when the client sends one, by reading (at most the limit) when it streams."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redrive.api.problems import Problem, problem_response


class BodyLimit:
    """ASGI middleware: at most `max_bytes` of request body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # Streamed (chunked): read it all here, at most `max_bytes`, and hand the app the buffer. An
        # error raised from inside the app's own read would reach it as a parse error, not a 413.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replayed() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is over {self.max_bytes} bytes; send less (REDRIVE_MAX_BODY_BYTES)"
        await problem_response(Problem(413, "Request body too large", detail, field="body"))(
            scope, receive, send
        )
