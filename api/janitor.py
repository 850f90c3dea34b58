"""Deleting dead runs that a retry superseded, so `JobStatus="dead_letter"` lists only dead jobs.

A closed run keeps its last search attributes, so a retried job's old run would stay listed as
dead forever. Everything an operator needs from it is kept: the payload and every attempt's error
in the DLQ row, the history up to the failed stage in the new run. The dev server was seen to
ignore a delete sent right after the reset and to honour a later one, so deletion is retried in
the background until the run is gone (or `GIVE_UP_AFTER_S` passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

FIRST_CHECK_S = 0.5
MAX_INTERVAL_S = 15.0
GIVE_UP_AFTER_S = 300.0


class RunJanitor:
    """Background deletion of superseded runs; `close()` stops what is still pending."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self._tasks: set[asyncio.Task[None]] = set()

    def forget(self, job_id: str, run_id: str) -> None:
        """Delete run `run_id` of `job_id` soon, retrying until it is gone."""
        task = asyncio.create_task(self._forget(job_id, run_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel pending deletions (a later retry or the maintenance sweep finishes them)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _forget(self, job_id: str, run_id: str) -> None:
        interval, waited = FIRST_CHECK_S, 0.0
        while waited < GIVE_UP_AFTER_S:
            try:
                await self._delete(job_id, run_id)
                await asyncio.sleep(interval)
                await self.client.get_workflow_handle(job_id, run_id=run_id).describe()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return
                log.warning("deleting superseded run %s of %s: %s", run_id, job_id, error)
            waited += interval
            interval = min(interval * 2, MAX_INTERVAL_S)
        log.warning("superseded run %s of %s still exists after %.0f s", run_id, job_id, waited)

    async def _delete(self, job_id: str, run_id: str) -> None:
        await self.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=self.namespace,
                workflow_execution=WorkflowExecution(workflow_id=job_id, run_id=run_id),
            )
        )
