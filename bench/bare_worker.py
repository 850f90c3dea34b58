"""The baseline's worker as a process of its own, as redrive's `python worker.py` is:

    python -m bench.bare_worker ADDRESS TASK_QUEUE

Kept apart from `bench.bare` because the sandbox imports a workflow's module again for every run."""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

import worker as redrive_worker
from bench.bare import BareShapedWorkflow, BareStatusWorkflow, BareWorkflow, bare_stage, shaped_stage


def build(client: Client, task_queue: str) -> Worker:
    """The baseline worker with redrive's sandbox settings and poller counts."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow, BareStatusWorkflow, BareShapedWorkflow],
        activities=[bare_stage, shaped_stage],
        workflow_runner=redrive_worker.workflow_runner(),
        max_concurrent_workflow_task_polls=20,
        max_concurrent_activity_task_polls=20,
    )


async def serve(address: str, task_queue: str) -> None:
    """Run until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with build(await Client.connect(address), task_queue):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
