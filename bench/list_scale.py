"""Lists at scale: PostgreSQL filled with 100 k, 1 M (and, with --ten-million, 10 M) jobs, then the
API's list endpoints timed over HTTP at each size.

    python -m bench.list_scale [--sizes 100000 1000000] [--ten-million] [--requests 40]

The rows: 90 % one tenant, 1 % dead (half of those dead for longer than the archive age and stamped
`archived` by maintenance, and 1 % of them overdue but not stamped yet, the pass's lag that the
archived rule hides at read time), 1 % retrying, 1 % running, the rest complete; one dead-letter
entry per dead job. They are written with INSERT … SELECT from generate_series with the counting
triggers off, then the counts are rebuilt in one statement (as the migration does), since a million
single-row trigger firings would only time the fill. It prints the median and p95 of: the first
page with counts, `?status=dead_letter`, a cursor walk 20 pages deep (per page), `/v1/dead-letters`
and `/v1/dead-letters/groups`, and the goal: p95 <= 25 ms each at 1 M, and at 10 M no more than
1.5 x the 100 k figure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from temporalio.client import Client

from redrive.store import upgrade
from redrive.store.counts import rebuild_counts_sql
from tests.support import running_api, settings_for

ADMIN = os.environ.get("REDRIVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The server to fill (a database of its own is created and dropped), as for the tests."""
KEY = {"Authorization": "Bearer key-a"}
GOAL_MS = 25.0

FILL = """
INSERT INTO jobs (id, tenant_id, type, status, stage, run_id, payload, attempt, max_attempts,
                  created_at, updated_at, finished_at)
SELECT 'job-' || md5(i::text), CASE WHEN i % 10 = 0 THEN 'b' ELSE 'a' END, 'demo',
       CASE WHEN i % 10000 = 101 THEN 'dead_letter'
            WHEN i % 100 = 1 AND (i / 100) % 2 = 1 THEN 'archived'
            WHEN i % 100 = 1 THEN 'dead_letter' WHEN i % 100 = 2 THEN 'retrying'
            WHEN i % 100 = 3 THEN 'running' ELSE 'complete' END,
       'process', 'run-' || i, '{"sleep_ms": 1}'::json, 1, 4,
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
       CASE WHEN i % 10000 = 101 THEN now() - interval '8 days'
            WHEN i % 100 = 1 THEN now() - (((i / 100) % 2) * 10 || ' days')::interval - interval '1 hour'
            WHEN i % 100 >= 4 OR i % 100 = 0 THEN now() - (i || ' seconds')::interval END
FROM generate_series($1::bigint, $2::bigint) AS i
"""
DEAD = """
INSERT INTO dead_letters (id, original_job_id, run_id, app_id, type, stage, payload, error_reason,
                          error_type, error_message, attempts, error_history, dlq_at, fingerprint,
                          replay_count)
SELECT md5('dl' || i::text)::uuid, 'job-' || md5(i::text), 'run-' || i,
       CASE WHEN i % 10 = 0 THEN 'b' ELSE 'a' END, 'demo', 'process', '{}'::json, 'MaxRetries',
       'ServiceUnavailable', 'demo failure ' || (i % 7), 4, '[]'::json,
       now() - (((i / 100) % 2) * 10 || ' days')::interval, 'fp' || (i % 7), 0
FROM generate_series($1::bigint, $2::bigint) AS i WHERE i % 100 = 1
"""


async def _fill(admin: asyncpg.Connection, url: str, have: int, want: int) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("ALTER TABLE jobs DISABLE TRIGGER USER")
        for start in range(have + 1, want + 1, 500_000):
            end = min(start + 499_999, want)
            await connection.execute(FILL, start, end)
            await connection.execute(DEAD, start, end)
        await connection.execute("ALTER TABLE jobs ENABLE TRIGGER USER")
        await connection.execute("DELETE FROM job_counts")
        await connection.execute(rebuild_counts_sql("postgresql"))
        # As a table in service is: vacuumed (visibility map set) and analysed, the fill's WAL flushed,
        # so the timings are the reads' own and not the bulk load's aftermath.
        await connection.execute("VACUUM (ANALYZE) jobs, dead_letters, job_counts")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def _timed(call: Callable[[], Awaitable[None]], requests: int) -> list[float]:
    await call()  # warm
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return times


async def _measure(http: httpx.AsyncClient, requests: int) -> dict[str, list[float]]:
    async def get(path: str, **params: str) -> httpx.Response:
        answer = await http.get(path, params=params)
        answer.raise_for_status()
        return answer

    async def first_page() -> None:
        await get("/v1/jobs", limit="50")

    async def dead() -> None:
        await get("/v1/jobs", limit="50", status="dead_letter")

    walk: list[float] = []

    async def cursor_walk() -> None:
        cursor = (await get("/v1/jobs", limit="50")).json()["next_cursor"]
        for _ in range(20):
            began = time.perf_counter()
            page = (await get("/v1/jobs", limit="50", cursor=cursor)).json()
            walk.append((time.perf_counter() - began) * 1000)
            cursor = page["next_cursor"]

    async def dead_letters() -> None:
        await get("/v1/dead-letters", limit="50")

    async def groups() -> None:
        await get("/v1/dead-letters/groups")

    results = {
        "first page + counts": await _timed(first_page, requests),
        "status=dead_letter": await _timed(dead, requests),
    }
    await _timed(cursor_walk, max(1, requests // 10))
    results["cursor page (20 deep)"] = walk
    results["dead letters"] = await _timed(dead_letters, requests)
    results["dead-letter groups"] = await _timed(groups, requests)
    return results


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def main(sizes: list[int], requests: int) -> None:
    name = f"redrive_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    by_size: dict[int, dict[str, list[float]]] = {}
    try:
        await upgrade(url)
        temporal = await Client.connect("127.0.0.1:1", lazy=True)  # lists never call Temporal
        with tempfile.TemporaryDirectory() as home:
            settings = settings_for(url, Path(home))
            have = 0
            for size in sorted(sizes):
                began = time.monotonic()
                await _fill(admin, url, have, size)
                have = size
                print(f"filled {size:,} jobs in {time.monotonic() - began:.0f} s", flush=True)
                async with (
                    running_api(settings, temporal) as api,
                    httpx.AsyncClient(base_url=api, headers=KEY, timeout=60) as http,
                ):
                    by_size[size] = await _measure(http, requests)
                for what, values in by_size[size].items():
                    median = statistics.median(values)
                    print(f"  {what:<24} median {median:7.1f} ms   p95 {_p95(values):7.1f} ms")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    _verdict(by_size)


def _verdict(by_size: dict[int, dict[str, list[float]]]) -> None:
    print("\ngoal: p95 <= 25 ms each at 1 M; at 10 M at most 1.5 x the 100 k figure")
    for what in next(iter(by_size.values())):
        p95s = {size: _p95(results[what]) for size, results in by_size.items()}
        line = "  ".join(f"{size:>10,}: {value:6.1f} ms" for size, value in sorted(p95s.items()))
        verdicts = []
        if 1_000_000 in p95s:
            verdicts.append("met" if p95s[1_000_000] <= GOAL_MS else "NOT met")
        if 10_000_000 in p95s and 100_000 in p95s:
            ratio = p95s[10_000_000] / p95s[100_000]
            verdicts.append(f"10 M / 100 k = {ratio:.2f} ({'met' if ratio <= 1.5 else 'NOT met'})")
        print(f"  {what:<24} {line}   {'; '.join(verdicts)}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ten-million", action="store_true", help="add 10,000,000 jobs")
    parser.add_argument("--requests", type=int, default=40)
    arguments = parser.parse_args()
    sizes = arguments.sizes + ([10_000_000] if arguments.ten_million else [])
    asyncio.run(main(sizes, arguments.requests))
