"""The baseline's worker as a process of its own, as redrive's `python worker.py` is:

    python -m bench.bare_worker ADDRESS TASK_QUEUE

Kept apart from the workflows' modules because the sandbox imports those again for every run."""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench import bare_workflows
from bench.bare import bare_stage, shaped_stage
from bench.bare_workflows.plain import BareWorkflow
from bench.bare_workflows.shaped import BareShapedWorkflow
from bench.bare_workflows.status import BareStatusWorkflow
from redrive import worker as redrive_worker
from redrive.temporal import exit_process


def build(client: Client, task_queue: str) -> Worker:
    """The baseline worker with redrive's sandbox settings, poller counts and bytecode cache."""
    redrive_worker.precompile_workflows(bare_workflows)
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
    exit_process(0)  # as `python worker.py` does
