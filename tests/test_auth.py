"""Keys, scopes and tenants on every endpoint, over HTTP: no or a wrong or revoked key is 401, a key
without the endpoint's scope is 403, another tenant's job or dead letter is 404 (and absent from
lists and bulk replays); an admin key acts for the tenant it names. Keys come from `redrive keys`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.store import DeadLetter, Job, create_engine, session_factory
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.types import utcnow
from tests.support import running_api, settings_for

JOB = "job-of-tenant-a"
ENDPOINTS = [
    # method, path, scope, body; {job} and {entry} belong to tenant a
    ("POST", "/v1/jobs", "submit", {"type": "demo", "payload": {}}),
    ("GET", "/v1/jobs", "read", None),
    ("GET", "/v1/jobs/{job}", "read", None),
    ("POST", "/v1/jobs/{job}/retry", "operate", {}),
    ("POST", "/v1/jobs/{job}/cancel", "operate", {}),
    ("POST", "/v1/jobs/{job}/review", "operate", {"decision": "approve"}),
    ("GET", "/v1/dead-letters", "read", None),
    ("GET", "/v1/dead-letters/groups", "read", None),
    ("GET", "/v1/dead-letters/{entry}", "read", None),
    ("POST", "/v1/dead-letters/{entry}/replay", "operate", {}),
    ("POST", "/v1/dead-letters/replay", "operate", {"dry_run": True}),
]
OBJECT_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if "{" in endpoint[1]]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"REDRIVE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "redrive_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _create(home: Path, tenant: str, scopes: str) -> str:
    result = _cli(
        home, "keys", "create", "--tenant", tenant, "--scopes", scopes, "--name", f"{tenant} {scopes}"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class World:
    """The API, keys per scope for tenant a, an all-scopes key for b, an admin, a revoked key."""

    http: httpx.AsyncClient
    keys: dict[str, str]
    entry: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REDRIVE_HOME whose SQLite database holds the keys `redrive keys create` made."""
    home = tmp_path_factory.mktemp("auth")
    assert _cli(home, "migrate").returncode == 0
    return home


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    """Keys made by `redrive keys create`: one per scope for a, all three for b, an admin, a revoked one."""
    made = {scope: _create(home, "a", scope) for scope in ("submit", "read", "operate")}
    made["b"] = _create(home, "b", "submit,read,operate")
    made["admin"] = _create(home, "ops", "admin")
    made["revoked"] = _create(home, "a", "read")
    revoked_id = made["revoked"].split("_")[1]
    assert _cli(home, "keys", "revoke", revoked_id).returncode == 0
    assert _cli(home, "keys", "revoke", revoked_id).returncode == 1  # already revoked
    listing = _cli(home, "keys", "list").stdout
    assert revoked_id in listing
    assert "revoked" in listing
    assert made["read"].split("_", 2)[2] not in listing  # a secret is shown once, at creation
    listed = json.loads(_cli(home, "keys", "list", "--output", "json").stdout)
    assert {key["id"]: key["revoked_at"] is not None for key in listed}[revoked_id]
    assert not any("secret_hash" in key for key in listed)
    return made


@pytest.fixture
async def world(dev_env: WorkflowEnvironment, home: Path, keys: dict[str, str]) -> AsyncIterator[World]:
    """A job and a dead letter of tenant a, and the API over HTTP with no static keys."""
    url = f"sqlite+aiosqlite:///{home / 'redrive.db'}"
    entry = await _tenant_a_rows(url)
    settings = settings_for(url, home, api_keys="")
    async with running_api(settings, dev_env.client) as base, httpx.AsyncClient(base_url=base) as http:
        yield World(http, keys, entry)


async def _tenant_a_rows(url: str) -> str:
    engine = create_engine(url)
    now = utcnow()
    try:
        async with session_factory(engine)() as session, session.begin():
            if await session.get(Job, JOB) is None:
                session.add(
                    Job(id=JOB, tenant_id="a", type="demo", status="dead_letter", run_id="r", stage="process")
                )
            entry = await DeadLetterRepository(session).insert(
                DeadLetter(
                    original_job_id=JOB,
                    run_id="r",
                    app_id="a",
                    type="demo",
                    stage="process",
                    error_reason="Validation",
                    error_type="ValidationError",
                    error_message="bad",
                    attempts=1,
                    dlq_at=now,
                )
            )
        return str(entry.id)
    finally:
        await engine.dispose()


async def _call(world: World, endpoint: tuple[str, str, str, object], key: str | None) -> httpx.Response:
    method, path, _scope, body = endpoint
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    url = path.format(job=JOB, entry=world.entry)
    return await world.http.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
async def test_missing_wrong_or_revoked_key_is_401(
    world: World, endpoint: tuple[str, str, str, object]
) -> None:
    """Every endpoint refuses a request without a valid, live key, as problem+json."""
    for key in (None, "not-a-key", "rdk_000000000000_guess", world.keys["revoked"]):
        response = await _call(world, endpoint, key)
        assert response.status_code == 401, (key, response.text)
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
async def test_key_without_the_scope_is_403(world: World, endpoint: tuple[str, str, str, object]) -> None:
    """Each endpoint needs its scope: every other single-scope key of the same tenant gets 403."""
    scope = endpoint[2]
    for other in {"submit", "read", "operate"} - {scope}:
        response = await _call(world, endpoint, world.keys[other])
        assert response.status_code == 403, (other, response.text)
        assert f"'{scope}' scope" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
async def test_another_tenants_object_is_404(world: World, endpoint: tuple[str, str, str, object]) -> None:
    """Tenant b, with every scope, cannot see or touch tenant a's job or dead letter."""
    response = await _call(world, endpoint, world.keys["b"])
    assert response.status_code == 404, response.text
    assert "ValidationError" not in response.text  # nothing of a's job or entry comes back


async def test_lists_and_bulk_replay_are_narrowed_to_the_tenant(world: World) -> None:
    """b's lists, groups and bulk replay never include a's rows; a's own key sees them."""
    b = {"Authorization": f"Bearer {world.keys['b']}"}
    assert (await world.http.get("/v1/jobs", headers=b)).json()["items"] == []
    assert (await world.http.get("/v1/dead-letters", headers=b)).json()["items"] == []
    assert (await world.http.get("/v1/dead-letters/groups", headers=b)).json()["items"] == []
    dry = (await world.http.post("/v1/dead-letters/replay", json={"dry_run": True}, headers=b)).json()
    assert (dry["matched"], dry["sample"]) == (0, [])
    a = {"Authorization": f"Bearer {world.keys['read']}"}
    assert [job["id"] for job in (await world.http.get("/v1/jobs", headers=a)).json()["items"]] == [JOB]


async def test_admin_acts_for_the_tenant_it_names(world: World) -> None:
    """An admin key with X-Redrive-Tenant reads that tenant's job; another key sending it is refused."""
    admin = {"Authorization": f"Bearer {world.keys['admin']}", "X-Redrive-Tenant": "a"}
    assert (await world.http.get(f"/v1/jobs/{JOB}", headers=admin)).status_code == 200
    own = {"Authorization": f"Bearer {world.keys['admin']}"}
    assert (await world.http.get(f"/v1/jobs/{JOB}", headers=own)).status_code == 404
    posing = {"Authorization": f"Bearer {world.keys['b']}", "X-Redrive-Tenant": "a"}
    refused = await world.http.get(f"/v1/jobs/{JOB}", headers=posing)
    assert (refused.status_code, refused.json()["field"]) == (403, "header.X-Redrive-Tenant")
