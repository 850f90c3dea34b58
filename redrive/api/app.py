"""The FastAPI app factory: Temporal client and database engine live in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from redrive.api.body_limit import BodyLimit
from redrive.api.problems import install_problem_handlers
from redrive.api.routers import breakers, codec, dead_letters, health, jobs, metrics, replays
from redrive.api.routers.docs import install_docs
from redrive.api.state import AppState
from redrive.api.url_guard import UrlGuard
from redrive.codec import data_converter
from redrive.jobtypes import load_job_types
from redrive.settings import Settings
from redrive.store import create_engine, session_factory
from redrive.store.projection import GroupCommit
from redrive.temporal import connect
from redrive.tracing import tracing_on


def create_app(settings: Settings, temporal: Client | None = None) -> FastAPI:
    """The API for `settings`; pass `temporal` to share a client (tests, `redrive dev`)."""
    registry = load_job_types(settings.job_types, settings.config)  # a bad one stops start-up here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url())
        sessions = session_factory(engine)
        client = temporal or await connect(settings)
        codec = data_converter(settings.payload_key).payload_codec
        try:
            async with GroupCommit(engine) as projection:
                app.state.redrive = AppState(
                    settings, registry, sessions, projection, client, settings.static_keys(), codec
                )
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="redrive",
        version="1",
        description="Durable jobs with declarative retries and a dead-letter queue you can drain.",
        lifespan=lifespan,
        docs_url=None,  # served from the package below, not a CDN
        redoc_url=None,
    )
    install_problem_handlers(app)
    if tracing_on(settings):  # a server span per request, parent of the Temporal spans it starts
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(UrlGuard)
    app.add_middleware(
        CORSMiddleware,  # the Temporal Web UI calls /codec from its own origin
        allow_origins=[settings.resolved_ui_url()],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    routers = (
        jobs.router,
        dead_letters.router,
        replays.router,
        breakers.router,
        codec.router,
        health.router,
        metrics.router,
    )
    for router in routers:
        app.include_router(router)
    install_docs(app)
    return app
