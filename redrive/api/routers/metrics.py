"""`GET /metrics`: the API's counters and the dead letters pending, in Prometheus' text format.

Unauthenticated, like `/healthz`: it shows counts by job type and reason, no tenant or job."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from redrive.api.deps import SessionDep, StateDep
from redrive.operations import breakers
from redrive.store.breakers import STATES
from redrive.store.dead_letters import DeadLetterRepository

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                CONTENT_TYPE_LATEST: {"example": 'redrive_jobs_submitted_total{job_type="demo"} 3.0\n'}
            }
        }
    },
)
async def metrics(state: StateDep, session: SessionDep) -> Response:
    """Jobs submitted and replays since the API started; the dead letters pending and each circuit
    breaker's state and held jobs now."""
    pending = state.metrics.pending
    pending.clear()  # a (type, reason) with nothing pending any more reads as absent, not stale
    for job_type, reason, count in await DeadLetterRepository(session).pending_counts():
        pending.labels(job_type, reason).set(count)
    state.metrics.breaker_state.clear()
    state.metrics.breaker_held.clear()
    for report in await breakers.read_reports(session, state.registry):
        ref = report.ref
        for name in STATES:
            state.metrics.breaker_state.labels(ref.job_type, ref.stage, ref.key, name).set(
                name == report.state
            )
        state.metrics.breaker_held.labels(ref.job_type, ref.stage, ref.key).set(report.waiting)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
