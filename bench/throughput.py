"""Jobs per second: N three-stage `demo` jobs through redrive (HTTP API, JobWorkflow, stage
activities with the SQL projection on SQLite in WAL mode) against N bare Temporal workflows running
three no-op activities, on the same dev server in the same run, rounds alternating (every other
round in reverse order, so a machine that drifts favours no side); and the bare
workflow with one search-attribute upsert (queued -> running), the ceiling for keeping a job's
status in Temporal's visibility, which redrive does.

    python -m bench.throughput [--jobs 400] [--rounds 3] [--concurrency 20] [--one-process] [--shaped]
                               [--server-apart] [--local] [--counts] [--no-sandbox] [--profile]
                               [--syscalls]

Each side's worker runs as its own process, as deployed (`python worker.py`; the baseline's
`bench.bare_worker`); `--one-process` runs both in this process instead. Both sides submit with the
same concurrency from this process and are timed from the first submission until every workflow
has returned its result. Jobs go to redrive over HTTP with aiohttp to the API served here: the load
generator stands for clients on other machines, and httpx cost more CPU per request (1.7 ms) than
the API itself, all of it charged to redrive on this shared box. Beside jobs/s it prints the CPU
each job cost here (load generator, API or bare client), in the worker process and in the Temporal
server: on a shared, noisy machine CPU per job moves less than wall-clock rates, and where every
core is busy (two on our CI machines) the ratio follows the CPU each job costs in all.

`--server-apart` pins the Temporal server to half of this machine's cores and everything else
(load generator, API, workers) to the other half, as in production, where the server runs on
machines of its own and API and workers scale out beside it: the ratio then says how much more of
the server's capacity a redrive job takes than a bare one.

`--counts` adds, after the rounds, one round of each side alone, each followed by a minute of quiet
(until the timers it set have fired), and prints the server's own counts per job: database
requests, visibility writes, history tasks, bytes of history events and of mutable state, and how
many tasks were matched to a waiting poll or written to the task queue's table instead. Those move
little with the machine's load, so they show whether a redrive job asks the server for more work.

`--profile` records the server with `perf` through every timed round and prints, per side, the
server's CPU per job under each of the headings of `bench.server_profile` (each RPC's handler, each
kind of history task, garbage collection, ...): where a side's extra server CPU goes.

`--syscalls` counts the server's system calls in every timed round (`bench.server_syscalls`) and
prints them per job by kind: SQLite's page reads and writes, gRPC's socket writes, the total. Counts
do not move with the machine's speed as CPU time does, so a few percent more work per job shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench import bare_worker, server_counts, server_profile, server_syscalls, spread
from bench.bare import JOB_STATUS
from bench.bare_workflows.plain import BareWorkflow
from bench.bare_workflows.shaped import BareShapedWorkflow
from bench.bare_workflows.status import BareStatusWorkflow
from bench.scratch import scratch_home, tail
from redrive.binaries import temporal_cli
from redrive.contracts import JobInput
from redrive.converter import DATA_CONVERTER
from redrive.jobtypes.builtin import DEMO
from redrive.status import JOB_TYPE, TENANT_ID
from redrive.store import upgrade
from tests.support import free_port, running_api, running_worker, settings_for, start_dev_server

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sample:
    """One round: throughput and CPU milliseconds per job, here, in the worker process and in the server."""

    rate: float
    local_cpu_ms: float
    worker_cpu_ms: float
    server_cpu_ms: float
    server_profile: dict[str, float] = field(default_factory=dict)
    """With `--profile`: the server's CPU per job in ms by what it was doing (`bench.server_profile`)."""
    server_syscalls: dict[str, float] = field(default_factory=dict)
    """With `--syscalls`: the server's system calls per job, by kind (`bench.server_syscalls`)."""


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def find_server_pid(db_file: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(db_file).encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
    raise RuntimeError(f"no Temporal server process found for {db_file}")


def _pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process `pid` to `cpus`; threads it starts later inherit the mask."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), cpus)


def _server_cores() -> tuple[list[int], list[int]]:
    """The first half of the usable cores, for the server, and the rest."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("--server-apart needs at least two cores")
    return cores[: len(cores) // 2], cores[len(cores) // 2 :]


def _split_cores(server_pid: int) -> tuple[list[int], list[int]]:
    """Give the server the first half of the usable cores and this process (and the workers it
    starts later) the rest; the two halves."""
    server, rest = _server_cores()
    _pin(server_pid, set(server))
    _pin(os.getpid(), set(rest))
    return server, rest


Measure = Callable[[Callable[[], Awaitable[None]], list[int]], Awaitable[Sample]]


def measuring(
    jobs: int, server_pid: int, symbols: server_profile.GoSymbols | None = None, syscalls: bool = False
) -> Measure:
    """A function that times `work` and charges its CPU (here, in the worker processes `pids` and in
    the server) to `jobs` jobs; with the server's `symbols`, it records the server with perf too, and
    with `syscalls` counts its system calls."""

    async def timed(work: Callable[[], Awaitable[None]], pids: list[int]) -> Sample:
        def workers() -> float:
            return sum(_process_cpu_s(pid) for pid in pids)

        local, worker, server = time.process_time(), workers(), _process_cpu_s(server_pid)
        started = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
        return Sample(
            rate=jobs / elapsed,
            local_cpu_ms=(time.process_time() - local) * 1000 / jobs,
            worker_cpu_ms=(workers() - worker) * 1000 / jobs,
            server_cpu_ms=(_process_cpu_s(server_pid) - server) * 1000 / jobs,
        )

    async def counted(work: Callable[[], Awaitable[None]], pids: list[int]) -> Sample:
        with tempfile.TemporaryDirectory() as scratch:
            output = Path(scratch) / "perf-stat.csv"
            async with server_syscalls.recording(server_pid, output):
                sample = await timed(work, pids)
            return dataclasses.replace(sample, server_syscalls=server_syscalls.per_job(output, jobs))

    # The syscall count wraps the timed round only, so the profile's perf script is not in its window.
    round_: Measure = counted if syscalls else timed

    async def profiled(work: Callable[[], Awaitable[None]], pids: list[int]) -> Sample:
        assert symbols is not None
        with tempfile.TemporaryDirectory() as scratch:
            recording = Path(scratch) / "perf.data"
            async with server_profile.recording(server_pid, recording):
                sample = await round_(work, pids)
            counts = await server_profile.read(recording, symbols)
        return dataclasses.replace(sample, server_profile=server_profile.per_job(counts, jobs))

    return round_ if symbols is None else profiled


QUIET = 65.0
"""Seconds until the timers a round set have fired (activities' start-to-close timeouts, 60 s, are
the last): a counted round starts and ends with as much quiet."""


def counting(jobs: int, url: str) -> Measure:
    """A function that runs `work`, waits until the timers it set have fired, and prints the server's
    counts per job over the whole (`bench.server_counts`); its Sample holds the rate only."""

    async def measure(work: Callable[[], Awaitable[None]], pids: list[int]) -> Sample:
        async with aiohttp.ClientSession() as http:
            before = await server_counts.read(http, url)
            started = time.perf_counter()
            await work()
            elapsed = time.perf_counter() - started
            await asyncio.sleep(QUIET)
            figures = server_counts.per_job(before, await server_counts.read(http, url), jobs)
        print(
            "  "
            + ", ".join(
                f"{value / 1024:.1f} K{name}" if name.endswith("bytes") else f"{value:.2f} {name}"
                for name, value in figures.items()
            ),
            flush=True,
        )
        return Sample(rate=jobs / elapsed, local_cpu_ms=0.0, worker_cpu_ms=0.0, server_cpu_ms=0.0)

    return measure


async def _bounded(count: int, concurrency: int, submit: Callable[[int], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await submit(index)

    await asyncio.gather(*(one(index) for index in range(count)))


async def _until_completed(client: Client, workflow_ids: list[str]) -> None:
    """Wait for every workflow's result: one long poll each, whatever the round's length (polling a
    count query instead cost the server more per poll the more workflows it held, and more polls
    for the slower side)."""
    await asyncio.gather(*(client.get_workflow_handle(id_).result() for id_ in workflow_ids))


async def fresh_database(home: Path) -> str:
    """The URL of a new, migrated SQLite database under `home`."""
    database = f"sqlite+aiosqlite:///{home / f'{uuid.uuid4().hex}.db'}"
    await upgrade(database)
    return database


@contextlib.asynccontextmanager
async def worker_process(
    client: Client, task_queue: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """A worker as its own process, as deployed; yields its pid once it polls both of its queues."""
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=output, stderr=output
        )
    try:
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            request = DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
            )
            while not (await client.workflow_service.describe_task_queue(request)).pollers:
                if process.returncode is not None:
                    raise RuntimeError(f"worker exited with {process.returncode}; see {log}")
                await asyncio.sleep(0.1)
        yield process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        if await process.wait() != 0:  # after its round's results: the figures stand, the exit does not
            # Quoted, since the run's folder goes when it ends.
            said = f"warning: worker {' '.join(argv)} exited with {process.returncode}; its log ends:"
            print(f"{said}\n{tail(log)}", flush=True)


def _address(client: Client) -> str:
    return client.service_client.config.target_host


async def redrive_round(
    client: Client,
    home: Path,
    jobs: int,
    concurrency: int,
    measure: Measure,
    apart: bool,
    local: bool = False,
    sandbox: bool = True,
) -> Sample:
    """Jobs/s through the real API and worker (`python worker.py` in its own process if `apart`);
    with `local`, the demo job type's stages declared local; without `sandbox`, the worker runs
    its workflows outside the SDK's sandbox (`REDRIVE_WORKFLOW_SANDBOX=false`)."""
    database = await fresh_database(home)
    config = home / "local.toml"
    config.write_text("[job_types.demo]\nlocal = true\n")
    settings = settings_for(database, home, config=config if local else None, workflow_sandbox=sandbox)
    env = {
        "REDRIVE_HOME": str(home),
        "REDRIVE_DATABASE_URL": database,
        "REDRIVE_TASK_QUEUE": settings.task_queue,
        "REDRIVE_TEMPORAL_ADDRESS": _address(client),
        **({"REDRIVE_CONFIG": str(config)} if local else {}),
        "REDRIVE_WORKFLOW_SANDBOX": str(sandbox).lower(),
    }
    async with contextlib.AsyncExitStack() as stack:
        if apart:
            argv = [str(ROOT / "worker.py")]
            pids = [
                await stack.enter_async_context(
                    worker_process(client, settings.task_queue, argv, home / "worker.log", env)
                )
            ]
        else:
            pids = []
            await stack.enter_async_context(running_worker(client, settings))
        url = await stack.enter_async_context(running_api(settings, client))
        http = await stack.enter_async_context(
            aiohttp.ClientSession(base_url=url, headers={"Authorization": "Bearer key-a"})
        )

        started: list[str] = []

        async def submit(_: int) -> None:
            async with http.post("/v1/jobs", json={"type": "demo", "payload": {}}) as response:
                response.raise_for_status()
                started.append((await response.json())["id"])

        async def work() -> None:
            await _bounded(jobs, concurrency, submit)
            await _until_completed(client, started)

        return await measure(work, pids)


Flavour = Literal["bare", "bare+status", "bare+shape"]
CEILING_GOAL = 0.97
"""redrive's throughput against the ceiling's (bare with the status upsert), median of 8 rounds."""


def _start_options(flavour: Flavour, workflow_id: str) -> tuple[str, Any, dict[str, Any]]:
    """Workflow name, input and start options of one baseline workflow."""
    if flavour == "bare":
        return BareWorkflow.__name__, {}, {}
    queued = SearchAttributePair(JOB_STATUS, "queued")
    if flavour == "bare+status":
        return BareStatusWorkflow.__name__, {}, {"search_attributes": TypedSearchAttributes([queued])}
    job = JobInput(
        job_id=workflow_id,
        tenant_id="a",
        job_type=DEMO.name,
        payload={},
        stages=DEMO.plan(),
    )
    attributes = [SearchAttributePair(JOB_TYPE, DEMO.name), SearchAttributePair(TENANT_ID, "a"), queued]
    options = {"search_attributes": TypedSearchAttributes(attributes), "static_summary": f"{DEMO.name} job"}
    return (
        BareShapedWorkflow.__name__,
        json.loads(DATA_CONVERTER.payload_converter.to_payload(job).data),
        options,
    )


async def bare_round(
    client: Client,
    home: Path,
    jobs: int,
    concurrency: int,
    measure: Measure,
    apart: bool,
    flavour: Flavour = "bare",
) -> Sample:
    """Jobs/s for a plain workflow, with the same worker tuning (and bytecode cache) as redrive's:
    three no-op activities (`bare`), plus the one search-attribute upsert of a status change
    (`bare+status`), or carrying redrive's input, stage arguments and search attributes
    (`bare+shape`)."""
    task_queue = f"bare-{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as stack:
        if apart:
            argv = ["-m", "bench.bare_worker", _address(client), task_queue]
            pids = [
                await stack.enter_async_context(worker_process(client, task_queue, argv, home / "worker.log"))
            ]
        else:
            pids = []
            await stack.enter_async_context(bare_worker.build(client, task_queue))

        started: list[str] = []

        async def submit(index: int) -> None:
            name, argument, options = _start_options(flavour, f"{task_queue}-{index}")
            handle = await client.start_workflow(
                name, argument, id=f"{task_queue}-{index}", task_queue=task_queue, **options
            )
            started.append(handle.id)

        async def work() -> None:
            await _bounded(jobs, concurrency, submit)
            await _until_completed(client, started)

        return await measure(work, pids)


async def main(
    jobs: int,
    rounds: int,
    concurrency: int,
    apart: bool,
    shaped: bool,
    server_apart: bool,
    local: bool = False,
    counts: bool = False,
    sandbox: bool = True,
    profile: bool = False,
    syscalls: bool = False,
) -> None:
    """Alternate redrive and bare rounds on one dev server; print medians and the ratio."""
    if profile and (missing := server_profile.available()):
        raise SystemExit(missing)
    if syscalls and (missing := server_syscalls.available()):
        raise SystemExit(missing)
    symbols = server_profile.GoSymbols(temporal_cli()) if profile else None
    with scratch_home("redrive-bench-") as home:
        metrics_port = free_port()
        if server_apart:
            # Go sizes its scheduler by the cores it may use at start; pinned later to fewer, its idle
            # threads would spin on the server's own cores. A server on machines of its own has as
            # many threads as cores.
            os.environ["GOMAXPROCS"] = str(len(_server_cores()[0]))
        env = await start_dev_server(home / "temporal.db", metrics_port)
        extra: list[Flavour] = ["bare+shape"] if shaped else []
        sides: list[Flavour | Literal["redrive"]] = ["bare", "redrive", "bare+status", *extra]
        results: dict[str, list[Sample]] = {side: [] for side in sides}
        async with env:
            server_pid = find_server_pid(home / "temporal.db")
            if server_apart:
                server_cores, other_cores = _split_cores(server_pid)
                print(f"Temporal server on cores {server_cores}, everything else on {other_cores}")
            measure = measuring(jobs, server_pid, symbols, syscalls)
            for number in range(1, rounds + 1):
                # Every other round runs the sides in reverse, so a machine that speeds up or slows down
                # over the run does not always favour the side that comes first.
                for side in sides if number % 2 else reversed(sides):
                    results[side].append(
                        await redrive_round(
                            env.client, home, jobs, concurrency, measure, apart, local, sandbox
                        )
                        if side == "redrive"
                        else await bare_round(env.client, home, jobs, concurrency, measure, apart, side)
                    )
                print(
                    f"round {number}: " + ", ".join(_describe(n, s[-1]) for n, s in results.items()),
                    flush=True,
                )
            if counts:
                print(f"the server's own counts per job, each side alone, {QUIET:.0f} s of quiet after it:")
                count = counting(jobs, f"http://127.0.0.1:{metrics_port}/metrics")
                await asyncio.sleep(QUIET)  # for the timers the timed rounds set
                for side in sides:
                    print(f" {side}:", flush=True)
                    if side == "redrive":
                        await redrive_round(env.client, home, jobs, concurrency, count, apart, local, sandbox)
                    else:
                        await bare_round(env.client, home, jobs, concurrency, count, apart, side)
    medians = {name: _median(samples) for name, samples in results.items()}
    where = "workers in their own processes" if apart else "workers in this process"
    if server_apart:
        where += ", the server on cores of its own"
    if not sandbox:
        where += ", redrive's workflows outside the sandbox"
    print(f"median of {rounds} rounds, {jobs} jobs each, concurrency {concurrency}, {where}:")
    for name, sample in medians.items():
        print(f"  {_describe(name, sample)}")
    bare, ours, ceiling = medians["bare"], medians["redrive"], medians["bare+status"]
    goal = 1.5 if local else 0.9
    said = " (redrive's stages local, bare's ordinary activities)" if local else ""
    verdict = "met" if ours.rate / bare.rate >= goal else "NOT met"
    print(f"  ratio    {ours.rate / bare.rate:.2f} of bare throughput{said} (goal >= {goal:.2f}: {verdict})")
    print(f"  per round {_per_round(results['redrive'], results['bare'])}: the run's spread")
    print(
        f"  ceiling  {ceiling.rate / bare.rate:.2f}: bare with the one search-attribute upsert of "
        "queued -> running, which redrive keeps"
    )
    if not local:
        of_ceiling = ours.rate / ceiling.rate
        verdict = "met" if of_ceiling >= CEILING_GOAL else "NOT met"
        print(
            f"  redrive at {of_ceiling:.3f} of the ceiling (goal >= {CEILING_GOAL:.2f}, {rounds} rounds: "
            f"{verdict}); per round {_per_round(results['redrive'], results['bare+status'])}"
        )
        low, high = spread.ratio_interval(
            [sample.rate for sample in results["redrive"]], [sample.rate for sample in results["bare+status"]]
        )
        print(f"  the rounds drawn again: {low:.3f} to {high:.3f} of the ceiling (90 %, bench/spread.py)")
    if shaped:
        shape = medians["bare+shape"]
        print(
            f"  shape    {shape.rate / bare.rate:.2f}: bare carrying redrive's input, stage arguments "
            f"and search attributes; redrive runs at {ours.rate / shape.rate:.2f} of it"
        )
    print(
        f"  extra CPU per job: {ours.local_cpu_ms - bare.local_cpu_ms:+.1f} ms here, "
        f"{ours.worker_cpu_ms - bare.worker_cpu_ms:+.1f} ms in the worker, "
        f"{ours.server_cpu_ms - bare.server_cpu_ms:+.1f} ms in the server; "
        f"in all {_total(ours) / _total(bare):.2f} x bare's {_total(bare):.1f} ms"
    )
    if profile:
        print("where the server's CPU went (perf samples; the headings are in bench/server_profile.py):")
        figures = {side: [sample.server_profile for sample in samples] for side, samples in results.items()}
        for line in server_profile.table(figures, against="bare+status"):
            print(f"  {line}")
    if syscalls:
        print("the server's system calls (perf stat; what they count is in bench/server_syscalls.py):")
        figures = {side: [sample.server_syscalls for sample in samples] for side, samples in results.items()}
        rows = len(server_syscalls.EVENTS)
        for line in server_profile.table(figures, "bare+status", rows, unit="per job", total=False):
            print(f"  {line}")


def _per_round(ours: list[Sample], theirs: list[Sample]) -> str:
    """Each round's ratio of the two sides' rates, and their median."""
    ratios = [mine.rate / other.rate for mine, other in zip(ours, theirs, strict=True)]
    return f"{' '.join(f'{ratio:.2f}' for ratio in ratios)} (median {statistics.median(ratios):.3f})"


def _total(sample: Sample) -> float:
    return sample.local_cpu_ms + sample.worker_cpu_ms + sample.server_cpu_ms


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(sample.rate for sample in samples),
        local_cpu_ms=statistics.median(sample.local_cpu_ms for sample in samples),
        worker_cpu_ms=statistics.median(sample.worker_cpu_ms for sample in samples),
        server_cpu_ms=statistics.median(sample.server_cpu_ms for sample in samples),
    )


def _describe(name: str, sample: Sample) -> str:
    return (
        f"{name} {sample.rate:.1f} jobs/s, CPU/job {sample.local_cpu_ms:.1f} ms here + "
        f"{sample.worker_cpu_ms:.1f} ms worker + {sample.server_cpu_ms:.1f} ms server"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="run the workers in this process, beside the API and the load generator",
    )
    parser.add_argument(
        "--shaped",
        action="store_true",
        help="add rounds of a bare workflow carrying redrive's input, arguments and search attributes",
    )
    parser.add_argument(
        "--server-apart",
        action="store_true",
        help="pin the Temporal server to half the cores and everything else to the other half",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="declare the demo job type's stages local (Temporal local activities); goal 1.5 x bare",
    )
    parser.add_argument(
        "--counts",
        action="store_true",
        help="after the rounds, count the server's work per job on each side alone (about a minute each)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with perf in every timed round and print its CPU per job by what it did",
    )
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="count the server's system calls in every timed round and print them per job, by kind",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run redrive's worker with REDRIVE_WORKFLOW_SANDBOX=false (the baseline stays in the sandbox)",
    )
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.jobs,
            arguments.rounds,
            arguments.concurrency,
            not arguments.one_process,
            arguments.shaped,
            arguments.server_apart,
            arguments.local,
            arguments.counts,
            not arguments.no_sandbox,
            arguments.profile,
            arguments.syscalls,
        )
    )
