"""Walking a Temporal listing in batches, for the maintenance steps that compare each batch of runs
with the SQL projection in one query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio.client import Client, WorkflowExecution

BATCH = 500


async def sum_over_batches(
    client: Client, query: str, each: Callable[[list[WorkflowExecution]], Awaitable[int]]
) -> int:
    """Call `each` with the runs `query` lists, `BATCH` at a time; the sum of what it returned."""
    total = 0
    batch: list[WorkflowExecution] = []
    async for execution in client.list_workflows(query):
        batch.append(execution)
        if len(batch) == BATCH:
            total += await each(batch)
            batch = []
    return total + (await each(batch) if batch else 0)
