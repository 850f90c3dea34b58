"""`GET /metrics`: the API's counters and the dead letters pending, in Prometheus' text format.

Unauthenticated, like `/healthz`: it shows counts by job type and reason, no tenant or job."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from redrive.api.deps import SessionDep, StateDep
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
    """Jobs submitted and replays since the API started, and the dead letters pending now."""
    pending = state.metrics.pending
    pending.clear()  # a (type, reason) with nothing pending any more reads as absent, not stale
    for job_type, reason, count in await DeadLetterRepository(session).pending_counts():
        pending.labels(job_type, reason).set(count)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
