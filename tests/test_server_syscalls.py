"""`bench.server_syscalls` counts the Temporal server's system calls per job with `perf stat`."""

import asyncio
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from bench.server_profile import table
from bench.server_syscalls import TOTAL, parse, per_job, recording
from bench.throughput import find_server_pid
from tests.support import start_dev_server

# What `perf stat -x,` wrote for one round (a comment line, then value,unit,event,run time,share,,).
PERF_STAT = """# started on Fri Dec  4 17:10:07 2026

12000,,raw_syscalls:sys_enter,9906716287,100.00,,
3000,,syscalls:sys_enter_pwrite64,9906716287,100.00,,
<not supported>,,syscalls:sys_enter_fsync,0,100.00,,
51.5,msec,task-clock,9906716287,100.00,,
240,,context-switches,9906716287,100.00,,
"""


def test_the_counts_are_read_by_row_and_divided_among_the_jobs(tmp_path: Path) -> None:
    """Events it asked for are kept under their rows; others, and ones perf could not count, are not."""
    assert parse(PERF_STAT) == {TOTAL: 12000.0, "pwrite64": 3000.0, "context switches": 240.0}
    output = tmp_path / "perf-stat.csv"
    output.write_text(PERF_STAT)
    assert per_job(output, jobs=300) == {TOTAL: 40.0, "pwrite64": 10.0, "context switches": 0.8}


def test_the_table_of_counts_has_no_total_row_and_says_its_unit() -> None:
    """Counts of different kinds do not add up: the table prints each row's medians only."""
    sides = {"bare+status": [{TOTAL: 10.0, "write": 2.0}], "redrive": [{TOTAL: 14.0, "write": 3.0}]}
    lines = table(sides, "bare+status", unit="per job", total=False)
    assert lines[0].startswith("per job ")
    assert [line.split()[-2:] for line in lines[1:]] == [["10.00", "14.00"], ["2.00", "3.00"]]


async def test_a_recording_of_the_dev_server_counts_the_calls_that_served_its_rpcs(tmp_path: Path) -> None:
    """perf counts a real dev server's system calls while it answers DescribeNamespace: its socket
    reads and writes are among them, and the total is at least their sum."""
    env = await start_dev_server(tmp_path / "temporal.db")
    async with env:
        describe = env.client.workflow_service.describe_namespace
        output = tmp_path / "perf-stat.csv"
        async with recording(find_server_pid(tmp_path / "temporal.db"), output):
            for _ in range(50):
                await describe(DescribeNamespaceRequest(namespace="default"))
            await asyncio.sleep(0.1)
    counts = parse(output.read_text())
    assert counts["read"] >= 50, counts
    assert counts["write"] >= 50, counts
    assert counts[TOTAL] >= counts["read"] + counts["write"] + counts["pread64"], counts
