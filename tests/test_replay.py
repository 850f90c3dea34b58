"""Recorded JobWorkflow histories replay under today's code; a reordered workflow does not."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.common import RawValue
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

import redrive
from redrive import worker, workflows
from redrive.contracts import JobInput, JobResult
from redrive.converter import DATA_CONVERTER
from redrive.workflows import JobWorkflow
from redrive.workflows import job as job_module
from redrive.workflows.breaker import BreakerWorkflow
from redrive.workflows.replay_campaign import ReplayCampaignWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _replayer(*workflows: type, sandbox: bool = True) -> Replayer:
    return Replayer(
        workflows=list(workflows),
        data_converter=DATA_CONVERTER,
        workflow_runner=worker.workflow_runner(sandbox),
    )


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@workflow.defn(dynamic=True)
class ReversedJobWorkflow(JobWorkflow):
    """A deliberately incompatible change: stages run last to first."""

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> JobResult:
        return await self.execute(self._job(args))

    async def execute(self, job: JobInput) -> JobResult:
        reversed_job = JobInput(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            job_type=job.job_type,
            payload=job.payload,
            stages=tuple(reversed(job.stages)),
        )
        return await super().execute(reversed_job)


def test_histories_were_recorded() -> None:
    """The complete, dead-letter, retried-after-reset, reviewed and continued (a patched retry's
    run, begun at its failed stage) job histories and three replay campaigns' (canary, pause, resume;
    steps overlapping; steps pipelined and paced by the window), a job held by a breaker and that
    breaker's own are present."""
    expected = {
        "complete",
        "dead_letter",
        "retried",
        "reviewed",
        "continued",
        "campaign",
        "campaign_overlapping",
        "campaign_pipelined",
        "held",
        "breaker",
    }
    assert {path.stem for path in HISTORIES} == expected


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unsandboxed"])
@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_recorded_history_replays(path: Path, sandbox: bool) -> None:
    """Each recorded history replays without a nondeterminism error, in the sandbox and without it
    (`REDRIVE_WORKFLOW_SANDBOX=false`)."""
    replayer = _replayer(JobWorkflow, ReplayCampaignWorkflow, BreakerWorkflow, sandbox=sandbox)
    result = await replayer.replay_workflow(_history(path))
    assert result.replay_failure is None


async def test_incompatible_change_is_caught() -> None:
    """Reordering stages breaks replay of a recorded history, so the replay test can fail."""
    with pytest.raises(NondeterminismError):
        await _replayer(ReversedJobWorkflow).replay_workflow(_history(HISTORIES[0]))


def test_the_modules_each_run_imports_anew_are_precompiled() -> None:
    """The sandbox imports the workflow package, and `redrive` above it, again for every run; with
    PYTHONDONTWRITEBYTECODE (set on our machines) their bytecode must be written at start-up, or
    every run compiles them (seen as +1 to +2 ms of CPU a job in bench.costs)."""
    sources = [Path(redrive.__file__ or ""), Path(workflows.__file__ or ""), Path(job_module.__file__ or "")]
    for source in sources:
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)
    worker.precompile_workflows()
    assert all(Path(importlib.util.cache_from_source(str(source))).exists() for source in sources)
