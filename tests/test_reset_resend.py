"""A reset the server refuses for a transient reason is sent again, with the same request id."""

import importlib
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest, ResetWorkflowExecutionResponse
from temporalio.service import RPCError, RPCStatusCode

from redrive.operations.retry import _reset as reset
from redrive.operations.services import Actor, Services
from redrive.store.models import Job

RETRY = importlib.import_module("redrive.operations.retry")  # the package exports a function of that name


class Refusing:
    """A workflow service whose resets fail with `statuses`, in order, then succeed."""

    def __init__(self, *statuses: RPCStatusCode) -> None:
        self.statuses = list(statuses)
        self.requests: list[ResetWorkflowExecutionRequest] = []

    async def reset_workflow_execution(self, request: ResetWorkflowExecutionRequest) -> Any:
        self.requests.append(request)
        if self.statuses:
            raise RPCError("refused", self.statuses.pop(0), b"")
        return ResetWorkflowExecutionResponse(run_id="new-run")


def _services(service: Refusing) -> Services:
    fake = SimpleNamespace(
        temporal=SimpleNamespace(workflow_service=service),
        settings=SimpleNamespace(temporal_namespace="default"),
    )
    return cast(Services, fake)


async def _reset(service: Refusing) -> str:
    job = Job(id="job-1", tenant_id="a", type="demo", status="dead_letter", payload={})
    actor = Actor(tenant="a", identity="alice")
    return await reset(_services(service), job, "dead-run", 5, "why", "retry-7", actor)


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RETRY, "RESET_PAUSES", (0.0, 0.0))


async def test_a_cancelled_reset_is_sent_again_with_the_same_request_id() -> None:
    service = Refusing(RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE)
    assert await _reset(service) == "new-run"
    assert [request.request_id for request in service.requests] == ["retry-7"] * 3


async def test_a_reset_refused_for_good_is_not_sent_again() -> None:
    service = Refusing(RPCStatusCode.NOT_FOUND)
    with pytest.raises(RPCError) as refused:
        await _reset(service)
    assert (refused.value.status, len(service.requests)) == (RPCStatusCode.NOT_FOUND, 1)


async def test_the_resends_stop_after_the_last_pause() -> None:
    service = Refusing(*[RPCStatusCode.CANCELLED] * 3)
    with pytest.raises(RPCError):
        await _reset(service)
    assert len(service.requests) == 3
