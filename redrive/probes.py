"""A worker's HTTP face on `REDRIVE_METRICS_PORT`, for Kubernetes and Prometheus alike:

- `/healthz`: the process answers (liveness);
- `/readyz`: the worker polls its task queue and Temporal answers a health check within a few
  seconds (readiness: 503 saying which is not the case);
- `/metrics`: the Temporal SDK's metrics and redrive's worker metrics, which the SDK's runtime
  serves on a loopback port of its own (`metrics_runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

READY_CHECK_TIMEOUT_S = 5.0


class QuietServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the program that embeds it owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def probe_app(client: Client, sdk_metrics_url: str) -> Starlette:
    """The probe routes for a worker using `client`; `sdk_metrics_url` is the runtime's exporter."""
    polling = {"started": False}

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        if not polling["started"]:
            return JSONResponse({"status": "starting", "detail": "the worker is not polling yet"}, 503)
        try:
            serving = await asyncio.wait_for(client.service_client.check_health(), READY_CHECK_TIMEOUT_S)
        except Exception as error:  # unreachable, timed out: not ready, and say why
            serving, detail = (
                False,
                f"Temporal did not answer a health check: {error or type(error).__name__}",
            )
        else:
            detail = "Temporal reports it is not serving"
        if not serving:
            return JSONResponse({"status": "unavailable", "detail": detail}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics(_request: Request) -> Response:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(sdk_metrics_url)
        return Response(answer.content, media_type=answer.headers.get("content-type", "text/plain"))

    app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)])
    app.state.polling = polling
    return app


@contextlib.asynccontextmanager
async def serving_probes(client: Client, port: int, sdk_metrics_url: str) -> AsyncIterator[Starlette]:
    """Serve the probes on `port` (all interfaces) for the duration of the block; the caller marks
    the worker as polling with `app.state.polling["started"] = True`."""
    app = probe_app(client, sdk_metrics_url)
    server = QuietServer(uvicorn.Config(app, host="0.0.0.0", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        yield app
    finally:
        server.should_exit = True
        await task
