"""Schemathesis against the live OpenAPI document, as two tenants (its object-level authorization
check replays one tenant's reads with the other's key): no 5xx, no response outside the schema, no
cross-tenant read. Without a worker, submitted jobs stay queued, so the run only exercises the API."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.support import running_api, settings_for

EXAMPLES_PER_OPERATION = 15
SEED = "20261124"


async def test_schemathesis_finds_nothing(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """Every check but positive-data acceptance passes (a schema cannot say which job ids, cursors or
    job-type payloads exist, so valid-looking values are rightly refused with 404/409/422)."""
    auth = tmp_path / "auth.json"
    tenants = [("tenant-a", "key-a"), ("tenant-b", "key-b")]
    identities = [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
        for name, key in tenants
    ]
    auth.write_text(json.dumps({"auth": identities}))
    schemathesis = shutil.which("schemathesis") or str(Path(__file__).parents[1] / ".venv/bin/schemathesis")
    async with running_api(settings_for(sqlite_url, tmp_path), dev_env.client) as url:
        process = await asyncio.create_subprocess_exec(
            schemathesis,
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--auth-wfc",
            str(auth),
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            SEED,
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output = (await process.communicate())[0].decode()
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert process.returncode == 0, output[-6000:]
    assert summary is not None, output[-2000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed > 300, output[-2000:]
    print(summary.group(0))
