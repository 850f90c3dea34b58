"""Job types from a team's own package: `billing` (tests/packages/billing, installed into the test
environment as a separate distribution) advertises `invoice` through the `redrive.job_types` entry
point, and the API and a real worker on the dev server run it with no change to redrive. Bad
declarations stop start-up with a message naming them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.jobtypes import ConfigError, JobType, JobTypeRegistry, Stage, load_job_types, stage_handlers
from redrive.jobtypes.loading import check_handlers
from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
INVOICE = {"customer": "ACME", "amount_cents": 1250}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker on the dev server, with the billing package installed beside redrive."""
    async with api_client(dev_env.client, settings_for(database_url, tmp_path), A) as http:
        yield http


async def _submit(http: httpx.AsyncClient, payload: dict[str, Any]) -> str:
    created = await http.post("/v1/jobs", json={"type": "invoice", "payload": payload})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


async def test_an_installed_job_type_runs_end_to_end(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """`invoice` completes, and the Temporal UI lists it under its own workflow type."""
    job_id = await _submit(api, INVOICE)
    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert [(stage["name"], stage["executions"]) for stage in done["stages"]] == [
        ("charge", 1),
        ("receipt", 1),
    ]
    query = f'WorkflowType="invoice" AND TaskQueue="{api.headers["X-Task-Queue"]}"'
    listed = [
        (execution.id, execution.workflow_type) async for execution in dev_env.client.list_workflows(query)
    ]
    assert listed == [(job_id, "invoice")]


async def test_its_permanent_error_dead_letters_after_one_attempt(api: httpx.AsyncClient) -> None:
    """A handler's own `PermanentError` subclass sends the job to the DLQ at once, named by its class."""
    job_id = await _submit(api, {**INVOICE, "card": "declined"})
    dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)
    assert dead["label"] == "dead_letter"  # a status the type gives no word of its own
    assert (dead["stage"], dead["error_reason"], dead["error_type"], dead["attempt"]) == (
        "charge",
        "Validation",
        "CardDeclined",
        1,
    )


async def test_it_retries_from_its_failed_stage(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """Its retryable error uses the declared retries, then a retry re-runs only the failed stage."""
    mail_down = tmp_path / "mail-down"
    mail_down.touch()
    job_id = await _submit(api, {**INVOICE, "mail_down_while": str(mail_down)})
    dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)
    assert (dead["stage"], dead["error_type"], dead["attempt"]) == ("receipt", "MailServerDown", 2)
    mail_down.unlink()
    retried = await api.post(f"/v1/jobs/{job_id}/retry")
    assert (retried.status_code, retried.json()["from_stage"]) == (200, "receipt")
    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert [(stage["name"], stage["executions"]) for stage in done["stages"]] == [
        ("charge", 1),
        ("receipt", 3),
    ]


async def test_its_payload_model_is_checked_at_submission(api: httpx.AsyncClient) -> None:
    """The job type's own payload model turns a bad payload into a 422 naming the field."""
    refused = await api.post("/v1/jobs", json={"type": "invoice", "payload": {"customer": "ACME"}})
    assert (refused.status_code, refused.json()["field"]) == (422, "body.payload.amount_cents")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redrive.toml"
    path.write_text(text)
    return path


def test_job_types_declared_in_the_config_file(tmp_path: Path) -> None:
    """A TOML table for a type no code declares declares it: stages in file order, handlers and the
    payload model by import path, retry keys as for any stage."""
    config = _config(
        tmp_path,
        """
        [job_types.refund]
        payload_model = "billing.jobs:Invoice"
        max_retries = 7
        [job_types.refund.stages.charge]
        handler = "billing.jobs:charge"
        [job_types.refund.stages.receipt]
        handler = "billing.jobs:send_receipt"
        """,
    )
    refund = load_job_types(config=config).get("refund")
    assert [(stage.name, stage.activity, stage.retry.max_retries) for stage in refund.stages] == [
        ("charge", "refund.charge", 7),
        ("receipt", "refund.receipt", 7),
    ]
    assert refund.payload_model is not None
    assert refund.payload_model.__name__ == "Invoice"


@pytest.mark.parametrize(
    ("paths", "toml", "message"),
    [
        (
            "billing.nowhere:JOB_TYPES",
            "",
            r"REDRIVE_JOB_TYPES entry 'billing.nowhere:JOB_TYPES': cannot import",
        ),
        ("billing.jobs:NOTHING", "", r"module 'billing.jobs' has no attribute 'NOTHING'"),
        ("billing.jobs", "", r"'billing.jobs' is not an import path; write module:attribute"),
        ("billing.jobs:Invoice", "", r"names ModelMetaclass, not a redrive.JobType"),
        (
            "billing.jobs:JOB_TYPES",
            "",
            r"job type 'invoice' is declared twice: by entry point billing .* and by REDRIVE_JOB_TYPES",
        ),
        (
            "",
            '[job_types.bad.stages.one]\nhandler = "billing.jobs:Invoice"',
            r"job type 'bad', stage 'one': handler 'billing.jobs:Invoice' is not an `async def handler",
        ),
        (
            "",
            '[job_types.bad.stages.one]\nhandler = "billing.jobs:missing"',
            r"job type 'bad', stage 'one': handler: module 'billing.jobs' has no attribute 'missing'",
        ),
    ],
)
def test_bad_declarations_stop_start_up(tmp_path: Path, paths: str, toml: str, message: str) -> None:
    """A bad import path, a name declared twice or a handler of the wrong shape is a ConfigError (a
    handler's path when the worker that runs it loads its handlers)."""
    with pytest.raises(ConfigError, match=message):
        stage_handlers(load_job_types(paths, _config(tmp_path, toml) if toml else None))


async def _two_arguments(context: object, extra: object) -> None:
    """Takes two arguments: not a stage handler."""


def test_a_handler_function_of_the_wrong_shape_stops_start_up() -> None:
    """A handler given as a function is checked when the job type is loaded, by the API too."""
    bad = JobType(name="bad", stages=[Stage(name="one", handler=_two_arguments)])  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ConfigError, match=r"job type 'bad', stage 'one': handler .* is not an `async def"):
        check_handlers(bad)


def test_a_worker_loads_only_the_handlers_of_its_queue() -> None:
    """A stage pinned to another task queue is left to the workers of that queue (say, GPU machines),
    so the others need not install what its handler imports."""
    pinned = JobType(
        name="gpu_job", stages=[Stage(name="infer", handler="no_such_module:infer", task_queue="gpu")]
    )
    registry = JobTypeRegistry([pinned])
    assert stage_handlers(registry, "redrive") == {}
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        stage_handlers(registry, "gpu")


def test_labels_are_derived_from_status_and_stage() -> None:
    """A label is looked up by status and stage, then by status, else is the status; a filter by a
    label finds every (status, stage) that reads as it."""
    invoice = load_job_types().get("invoice")
    assert invoice.label("retrying", "receipt") == "receipt_failed"
    assert invoice.label("queued", None) == "received"
    assert invoice.label("pending_review", "charge") == "pending_review"
    assert invoice.with_label("paid") == [("complete", None)]
    assert invoice.with_label("charging") == [("running", "charge")]
    with pytest.raises(ValueError, match="label key 'runing' is not <status> or <status>:<stage>"):
        JobType(name="typo", stages=[Stage(name="one")], labels={"runing": "busy"})


def test_a_worker_can_serve_only_some_job_types_on_a_queue_of_their_own() -> None:
    """REDRIVE_WORKER_JOB_TYPES narrows a worker to some job types, on a queue their stages are
    pinned to; when another job type's stages are pinned there too it refuses to start, since it
    would take their tasks and fail them."""
    invoice = load_job_types().get("invoice")

    def pinned(name: str) -> JobType:
        stages = [dataclasses.replace(stage, task_queue="billing") for stage in invoice.stages]
        return dataclasses.replace(invoice, name=name, stages=stages)

    registry = JobTypeRegistry([load_job_types().get("demo"), pinned("invoice")])
    assert sorted(stage_handlers(registry, "billing", ["invoice"])) == ["invoice.charge", "invoice.receipt"]
    crowded = JobTypeRegistry([*registry.job_types(), pinned("refund")])
    with pytest.raises(ConfigError, match=r"job type 'refund' also runs stages \['charge', 'receipt'\]"):
        stage_handlers(crowded, "billing", ["invoice"])
    with pytest.raises(ConfigError, match="REDRIVE_WORKER_JOB_TYPES: unknown job type 'nope'"):
        stage_handlers(registry, "billing", ["nope"])
