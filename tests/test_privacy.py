"""Nothing personal in Temporal's plain-text fields: a recognisable secret in a job's payload (and
in the error it causes) is in no workflow id, search attribute or memo; with REDRIVE_PAYLOAD_KEY it
is nowhere in the raw history either, while the API's codec endpoint still shows it to a key holder."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from redrive.codec import data_converter, new_key
from tests.support import api_client, eventually, serving, settings_for

A = {"Authorization": "Bearer key-a"}
SECRET = "SECRET-4111-1111-1111-1111"


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        # A downstream that rejects the request and echoes it: the secret ends up in the error.
        return Response(f"rejected {await request.body()!r}", status_code=400)

    return app


def _everything_in(history_json: str) -> str:
    """The history's JSON plus every base64 value in it decoded, so a payload cannot hide."""
    decoded = []
    for value in re.findall(r'"([A-Za-z0-9+/=_-]{16,})"', history_json):
        try:
            decoded.append(base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            continue
    return "\n".join([history_json, *decoded])


async def _dead_webhook(http: httpx.AsyncClient, hook: str) -> str:
    key = f"{SECRET}-{uuid.uuid4().hex}"  # the dev server outlives each test's database
    body = {"type": "webhook", "payload": {"url": hook, "body": {"card": SECRET}}, "idempotency_key": key}
    job_id: str = (await http.post("/v1/jobs", json=body)).json()["id"]

    async def dead() -> bool:
        return bool((await http.get(f"/v1/jobs/{job_id}")).json()["status"] == "dead_letter")

    await eventually(dead)
    return job_id


async def _plain_fields(client: Client, job_id: str) -> str:
    description = await client.get_workflow_handle(job_id).describe()
    return json.dumps(
        [
            job_id,
            {key.name: value for key, value in description.typed_search_attributes},
            await description.memo(),
            description.raw_description.execution_config.user_metadata.summary.data.decode(errors="replace"),
        ],
        default=str,
    )


async def test_secret_is_in_no_plain_field(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """Without a key the history carries the payload (so the check below can see it), but the
    workflow id, search attributes, memo and summary never do."""
    async with (
        serving(_echo_app()) as hook_base,
        api_client(dev_env.client, settings_for(sqlite_url, tmp_path), A) as http,
    ):
        job_id = await _dead_webhook(http, f"{hook_base}/hook")
    assert SECRET not in await _plain_fields(dev_env.client, job_id)
    history = (await dev_env.client.get_workflow_handle(job_id).fetch_history()).to_json()
    assert SECRET in _everything_in(history)


async def test_codec_keeps_the_secret_out_of_the_history(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """With REDRIVE_PAYLOAD_KEY, payloads and failure messages are sealed; /codec/decode opens them."""
    key = new_key()
    plain = dev_env.client
    sealed = await Client.connect(
        plain.service_client.config.target_host, namespace=plain.namespace, data_converter=data_converter(key)
    )
    settings = settings_for(sqlite_url, tmp_path, payload_key=key)
    async with serving(_echo_app()) as hook_base, api_client(sealed, settings, A) as http:
        job_id = await _dead_webhook(http, f"{hook_base}/hook")
        history = (await plain.get_workflow_handle(job_id).fetch_history()).to_json()
        started = json.loads(history)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
        decoded = await http.post("/codec/decode", json=started)
        refused = await http.post("/codec/decode", json=started, headers={"Authorization": ""})
        ui_origin = settings.resolved_ui_url()
        cors = {"Origin": ui_origin, "Access-Control-Request-Method": "POST"}
        preflight = await http.options("/codec/decode", headers=cors)
        entry = (await http.get("/v1/dead-letters")).json()["items"][0]
    assert SECRET not in _everything_in(history)
    assert SECRET not in await _plain_fields(plain, job_id)
    assert decoded.status_code == 200, decoded.text
    assert SECRET in _everything_in(json.dumps(decoded.json()))
    assert refused.status_code == 401
    assert preflight.headers.get("access-control-allow-origin") == ui_origin
    assert SECRET in entry["error_message"]  # the operator still sees it, in our own database
