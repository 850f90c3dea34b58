"""`bench.server_profile` names the Temporal server's functions and puts perf's samples under headings."""

import asyncio
import struct
import time
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from bench.server_profile import GoSymbols, heading, headings, per_job, read, recording, table
from bench.throughput import find_server_pid
from redrive.binaries import temporal_cli
from tests.support import start_dev_server


@pytest.fixture(scope="module")
def symbols() -> GoSymbols:
    """The dev server's function names (read from a 150 MB binary: once, and only when a test asks)."""
    return GoSymbols(temporal_cli())


def _relative(symbols: GoSymbols, function: str) -> str:
    """An address inside `function` as perf prints it: relative to the executable's mapping."""
    return f"{symbols.entries[symbols.names.index(function)] + 4 - symbols.load_base:x}"


def test_the_executables_entry_point_is_named_from_the_function_table(symbols: GoSymbols) -> None:
    """The ELF header's entry address falls in the Go runtime's `_rt0_amd64_linux`."""
    with temporal_cli().open("rb") as binary:
        (entry,) = struct.unpack_from("<Q", binary.read(64), 0x18)
    assert symbols.name(entry) == "_rt0_amd64_linux"
    assert symbols.name(symbols.entries[0] - 1) is None
    assert symbols.name(symbols.end) is None


def test_a_sample_goes_under_its_innermost_handler_or_task_else_by_its_parts() -> None:
    """Handlers and history tasks win over the parts of a name; an empty stack is the kernel's."""
    handler = "go.temporal.io/server/api/historyservice/v1._HistoryService_RecordWorkflowTaskStarted_Handler"
    task = "go.temporal.io/server/service/history.(*visibilityQueueTaskExecutor).processCloseExecution"
    assert heading(["modernc.org/sqlite/lib._sqlite3VdbeExec", handler]) == (
        "rpc History.RecordWorkflowTaskStarted"
    )
    assert heading(["runtime.mallocgc", task, handler]) == "task visibility.CloseExecution"
    assert heading(["runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker"]) == "gc background"
    assert heading(["runtime.copystack", "runtime.newstack", "runtime.morestack"]) == "stack growth"
    assert heading(["main.work", "main.main"]) == "other: main.main"
    assert heading([]) == "outside the server's code (kernel)"


def test_perf_script_blocks_are_read_with_the_executables_frames_only(symbols: GoSymbols) -> None:
    """Kernel and vDSO frames are left out of a stack; each block is one sample."""
    path = symbols.path
    script = (
        f"\tffffffff81234567 ([kernel.kallsyms])\n\t{_relative(symbols, 'runtime.gcDrain')} ({path})\n"
        f"\t{_relative(symbols, 'runtime.gcBgMarkWorker')} ({path})\n\n"
        f"\t{_relative(symbols, 'runtime.mallocgc')} ({path})\n"
        f"\t{_relative(symbols, 'main.main')} ({path})\n\n"
        f"\t7ffd1234 ([vdso])\n\n"
    )
    assert headings(script, symbols) == {
        "gc background": 1,
        "other: main.main": 1,
        "outside the server's code (kernel)": 1,
    }


def test_the_table_shows_medians_per_job_the_largest_differences_first() -> None:
    """Per-job figures are samples at 997 Hz over the jobs; the table's rows are each side's medians."""
    assert per_job(Counter(a=997), jobs=10) == {"a": 100.0}
    sides = {
        "bare+status": [{"a": 1.0, "b": 5.0}, {"a": 3.0, "b": 5.0}, {"a": 2.0, "b": 5.0}],
        "redrive": [{"a": 2.0, "b": 9.0}, {"a": 2.0, "b": 7.0}, {"a": 2.0}],
    }
    lines = table(sides, against="bare+status")
    assert [line.split()[-2:] for line in lines[1:]] == [["7.00", "9.00"], ["5.00", "7.00"], ["2.00", "2.00"]]
    assert lines[2].startswith("b ")


async def test_a_recording_of_the_dev_server_shows_the_rpcs_it_served(
    tmp_path: Path, symbols: GoSymbols
) -> None:
    """perf records a real dev server while it answers DescribeNamespace; that handler has samples."""
    env = await start_dev_server(tmp_path / "temporal.db")
    async with env:
        describe = env.client.workflow_service.describe_namespace
        output = tmp_path / "perf.data"
        async with recording(find_server_pid(tmp_path / "temporal.db"), output):
            until = time.monotonic() + 2
            while time.monotonic() < until:
                await asyncio.gather(
                    *(describe(DescribeNamespaceRequest(namespace="default")) for _ in range(20))
                )
                await asyncio.sleep(0.02)  # 1,000 a second at most: faster met the namespace rate limit
        counts = await read(output, symbols)
    assert counts["rpc Workflow.DescribeNamespace"] > 0, counts.most_common(10)
