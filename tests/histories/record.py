"""Record JobWorkflow, ReplayCampaign and CircuitBreaker histories for the replay test:
`python -m tests.histories.record`.

Existing files are kept: they are what jobs started by older code look like to the code that will
replay them. Only missing histories are written (delete one on purpose to re-record it).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from redrive.store import upgrade
from tests.support import running_api, running_worker, settings_for, start_dev_server

HERE = Path(__file__).parent
FAST = '[job_types.demo]\ninitial_interval = "1s"\nbackoff_coefficient = 1\n'
HELD = (
    "[job_types.demo_review.stages.finish]\nmax_retries = 0\n"
    + "[job_types.demo_review.stages.finish.breaker]\n"
)


async def _wait(http: httpx.AsyncClient, job_id: str, status: str) -> None:
    for _ in range(300):
        if (await http.get(f"/v1/jobs/{job_id}")).json()["status"] == status:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{job_id} never reached {status}")


async def record() -> None:
    """Run a complete, a dead-lettered, a retried, a reviewed and a continued (retried with a patched
    payload) job, and a replay campaign; save their histories as JSON."""
    home = Path(tempfile.mkdtemp())
    (home / "redrive.toml").write_text(FAST + HELD)
    url = f"sqlite+aiosqlite:///{home / 'redrive.db'}"
    await upgrade(url)
    settings = settings_for(url, home, config=home / "redrive.toml")
    breaker = home / "break"
    breaker.touch()
    failing = {"fail": {"stage": "process", "error": "TemporaryFailure", "while_exists": str(breaker)}}
    env = await start_dev_server(home / "temporal.db")
    async with env, running_worker(env.client, settings), running_api(settings, env.client) as api:
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": "Bearer key-a"}) as http:

            async def submit(job_type: str, payload: dict[str, Any]) -> str:
                body = {"type": job_type, "payload": payload}
                job_id: str = (await http.post("/v1/jobs", json=body)).json()["id"]
                return job_id

            jobs = {
                "complete": await submit("demo", {}),
                "dead_letter": await submit("demo", failing),
                "retried": await submit("demo", failing),
                "reviewed": await submit("demo_review", {}),
                "continued": await submit("demo", {"fail": {"stage": "process", "error": "ValidationError"}}),
            }
            await _wait(http, jobs["complete"], "complete")
            await _wait(http, jobs["dead_letter"], "dead_letter")
            await _wait(http, jobs["retried"], "dead_letter")
            await _wait(http, jobs["reviewed"], "pending_review")
            await http.post(f"/v1/jobs/{jobs['reviewed']}/review", json={"decision": "approve"})
            await _wait(http, jobs["reviewed"], "complete")
            breaker.unlink()
            await http.post(f"/v1/jobs/{jobs['retried']}/retry", json={"reason": "recorded"})
            await _wait(http, jobs["retried"], "complete")
            await _wait(http, jobs["continued"], "dead_letter")
            patch = {"payload_patch": {"fail": None}, "reason": "recorded"}
            await http.post(f"/v1/jobs/{jobs['continued']}/retry", json=patch)
            await _wait(http, jobs["continued"], "complete")
            campaign = await _campaign(http, home)
            overlapping = await _overlapping_campaign(http, home)
            pipelined = await _pipelined_campaign(http, home)
            held = await _held_by_breaker(http)
        recorded = {
            **jobs,
            "campaign": campaign,
            "campaign_overlapping": overlapping,
            "campaign_pipelined": pipelined,
        }
        for name, job_id in {
            **recorded,
            "held": held,
            "breaker": f"breaker/{settings.task_queue}/demo_review/finish",
        }.items():
            target = HERE / f"{name}.json"
            if target.exists():
                continue
            handle = env.client.get_workflow_handle(job_id)
            await _closed(handle)
            target.write_text((await handle.fetch_history()).to_json())
            print(f"recorded {name}: {job_id}")


async def _dead(http: httpx.AsyncClient, home: Path, count: int) -> list[str]:
    """`count` demo jobs dead in `process`, the cause then fixed."""
    breaker = home / "break-campaign"
    breaker.touch()
    failing = {"fail": {"stage": "process", "error": "ValidationError", "while_exists": str(breaker)}}
    body = {"type": "demo", "payload": failing}
    dead = [(await http.post("/v1/jobs", json=body)).json()["id"] for _ in range(count)]
    for job_id in dead:
        await _wait(http, job_id, "dead_letter")
    breaker.unlink()
    return dead


async def _overlapping_campaign(http: httpx.AsyncClient, home: Path) -> str:
    """A replay campaign of 130 dead jobs in steps of 100 (at most) paced at half a second, so the
    second starts while the first is replaying."""
    dead = await _dead(http, home, 130)
    order = {"filter": {"type": "demo"}, "max": 200, "rate": 200, "reason": "recorded"}
    campaign_id: str = (await http.post("/v1/replays", json=order)).json()["id"]
    for job_id in dead:
        await _wait(http, job_id, "complete")
    return campaign_id


async def _pipelined_campaign(http: httpx.AsyncClient, home: Path) -> str:
    """A replay campaign of 130 dead jobs at 100 a second after a canary of one: the first step
    past the canary starts alone (half a step), the next waits for the next window."""
    dead = await _dead(http, home, 130)
    canary = {"count": 1}
    order = {"filter": {"type": "demo"}, "max": 200, "rate": 100, "canary": canary, "reason": "recorded"}
    campaign_id: str = (await http.post("/v1/replays", json=order)).json()["id"]
    for job_id in dead:
        await _wait(http, job_id, "complete")
    return campaign_id


async def _campaign(http: httpx.AsyncClient, home: Path) -> str:
    """A replay campaign of two dead jobs with a canary of one, paused and resumed on the way."""
    dead = await _dead(http, home, 2)
    order = {"filter": {"type": "demo"}, "rate": 2, "canary": {"count": 1}, "reason": "recorded"}
    campaign_id: str = (await http.post("/v1/replays", json=order)).json()["id"]
    await http.post(f"/v1/replays/{campaign_id}/pause")
    await asyncio.sleep(1)
    await http.post(f"/v1/replays/{campaign_id}/resume")
    for job_id in dead:
        await _wait(http, job_id, "complete")
    return campaign_id


async def _held_by_breaker(http: httpx.AsyncClient) -> str:
    """A demo_review job whose `finish` (one attempt) waits on a breaker opened by hand, then closed."""
    await http.post("/v1/breakers/demo_review/finish/open", json={"reason": "recorded"})
    for _ in range(300):
        if (await http.get("/v1/breakers/demo_review/finish")).json()["state"] == "open":
            break
        await asyncio.sleep(0.1)
    job_id: str = (await http.post("/v1/jobs", json={"type": "demo_review", "payload": {}})).json()["id"]
    await _wait(http, job_id, "pending_review")
    await http.post(f"/v1/jobs/{job_id}/review", json={"decision": "approve"})
    for _ in range(300):
        if (await http.get(f"/v1/jobs/{job_id}")).json()["held_by_breaker"] is not None:
            break
        await asyncio.sleep(0.1)
    await http.post("/v1/breakers/demo_review/finish/close", json={"reason": "recorded"})
    await _wait(http, job_id, "complete")
    return job_id


async def _closed(handle: WorkflowHandle[Any, Any]) -> None:
    # The API shows dead_letter before the workflow's last steps (the alert) have run.
    for _ in range(300):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{handle.id} never closed")


if __name__ == "__main__":
    asyncio.run(record())
