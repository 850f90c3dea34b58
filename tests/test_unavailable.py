"""While the database or Temporal is down the API answers 503 with Retry-After and a problem document
(never a stack trace), and changes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from redrive.operations.submit import job_id_for
from tests.support import running_api, settings_for, start_dev_server

A = {"Authorization": "Bearer key-a"}


def _assert_unavailable(response: httpx.Response, what: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert what in response.json()["title"]
    assert "Traceback" not in response.text


async def test_database_down_is_503(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A PostgreSQL nobody listens on: reads, keyed submissions and readiness are 503s naming the
    database, and the 503 started nothing; a submission without a key, which needs no read, starts
    its job and says so (202): its row is written once the database is back."""
    settings = settings_for("postgresql+asyncpg://postgres@127.0.0.1:9/none", tmp_path)
    async with (
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A) as http,
    ):
        _assert_unavailable(await http.get("/v1/jobs"), "database")
        _assert_unavailable(await http.get("/v1/dead-letters"), "database")
        created = await http.post("/v1/jobs", json={"type": "demo", "idempotency_key": "while-down"})
        _assert_unavailable(created, "database")
        with pytest.raises(RPCError) as missing:
            await dev_env.client.get_workflow_handle(job_id_for("a", "while-down")).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
        started = await http.post("/v1/jobs", json={"type": "demo"})
        assert started.status_code == 202, started.text
        description = await dev_env.client.get_workflow_handle(started.json()["id"]).describe()
        assert description.run_id == started.json()["run_id"]
        _assert_unavailable(await http.get("/readyz"), "database")
        assert (await http.get("/healthz")).status_code == 200


async def test_temporal_down_is_503(sqlite_url: str, tmp_path: Path) -> None:
    """A Temporal server that has stopped: a submission is a 503 naming Temporal, and no job row is left."""
    env = await start_dev_server(tmp_path / "temporal.db")
    settings = settings_for(sqlite_url, tmp_path)
    async with env:
        client = env.client
    async with (
        running_api(settings, client) as url,
        httpx.AsyncClient(base_url=url, headers=A, timeout=60) as http,
    ):
        _assert_unavailable(await http.post("/v1/jobs", json={"type": "demo", "payload": {}}), "Temporal")
        assert (await http.get("/v1/jobs")).json()["items"] == []
