"""The examples under examples/, installed beside redrive as separate packages, run on the dev server
through the API and a real worker: the protocol pipeline on its sample documents, and the extraction
type's classification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from redrive_protocols.jobs import SAMPLES
from temporalio.testing import WorkflowEnvironment

from tests.support import api_client, eventually, job_in, serving, settings_for

A = {"Authorization": "Bearer key-a"}
QUICK = """
[job_types.protocol.stages.extract]
initial_interval = "1s"
backoff_coefficient = 1
[job_types.extraction]
initial_interval = "1s"
backoff_coefficient = 1
"""


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker on the dev server, with 1 s backoffs for the examples' stages."""
    config = tmp_path / "redrive.toml"
    config.write_text(QUICK)
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path, config=config), A) as http:
        yield http


def _sample(name: str) -> str:
    return (Path(str(SAMPLES)) / name).as_uri()


async def _submit(http: httpx.AsyncClient, job_type: str, payload: dict[str, Any]) -> str:
    created = await http.post("/v1/jobs", json={"type": job_type, "payload": payload})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


async def _approved(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    waiting = await eventually(lambda: job_in(http, job_id, "pending_review"), within=60)
    assert (waiting["label"], waiting["stage"]) == ("pending_review", "review")
    decided = await http.post(f"/v1/jobs/{job_id}/review", json={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    return await eventually(lambda: job_in(http, job_id, "complete"), within=60)


async def test_a_good_protocol_is_extracted_grounded_and_reviewed(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """The good PDF's text is extracted and its terms found; a person approves it; it completes."""
    job_id = await _submit(api, "protocol", {"url": _sample("protocol-good.pdf")})
    done = await _approved(api, job_id)
    assert [(stage["name"], stage["executions"]) for stage in done["stages"]] == [
        ("extract", 1),
        ("ground", 1),
    ]
    result = await dev_env.client.get_workflow_handle(job_id).result()
    assert {"aspirin", "placebo", "randomized controlled trial"} <= set(result["outputs"]["ground"]["terms"])


@pytest.mark.parametrize(
    ("sample", "error_type"),
    [("protocol-broken.pdf", "CorruptedFile"), ("protocol-notes.txt", "UnsupportedFormat")],
)
async def test_a_bad_document_dead_letters_after_one_attempt(
    api: httpx.AsyncClient, sample: str, error_type: str
) -> None:
    """A broken PDF is `CorruptedFile`, a file that is not a PDF `UnsupportedFormat`: no retry."""
    job_id = await _submit(api, "protocol", {"url": _sample(sample)})
    dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)
    assert (dead["stage"], dead["error_reason"], dead["error_type"], dead["attempt"]) == (
        "extract",
        "Validation",
        error_type,
        1,
    )


async def test_a_503_twice_then_the_file_completes(api: httpx.AsyncClient) -> None:
    """A local HTTP server answers 503 twice: extraction retries, reads as extraction_failed meanwhile,
    and the third attempt gets the PDF."""
    answers: list[int] = []
    server = FastAPI()

    @server.get("/protocol.pdf")
    async def protocol() -> Response:
        answers.append(503 if len(answers) < 2 else 200)
        if answers[-1] == 503:
            return Response(status_code=503, content=b"busy")
        return Response((Path(str(SAMPLES)) / "protocol-good.pdf").read_bytes(), media_type="application/pdf")

    async with serving(server) as url:
        job_id = await _submit(api, "protocol", {"url": f"{url}/protocol.pdf"})
        failing = await eventually(lambda: job_in(api, job_id, "retrying"), within=60)
        assert (failing["label"], failing["error_type"]) == ("extraction_failed", "ServiceUnavailable")
        done = await _approved(api, job_id)
    assert answers == [503, 503, 200]
    assert done["stages"][0]["executions"] == 3


@pytest.mark.parametrize(
    ("simulate", "status", "attempts"),
    [
        ("S3ConnectionError", "dead_letter", 4),
        ("PermissionDenied", "dead_letter", 1),
        ("KeyError", "dead_letter", 4),
    ],
)
async def test_extraction_classifies_its_errors(
    api: httpx.AsyncClient, simulate: str, status: str, attempts: int
) -> None:
    """Retryable errors (and unknown ones) use every retry; permanent ones dead-letter at once."""
    job_id = await _submit(api, "extraction", {"url": _sample("protocol-good.pdf"), "simulate": simulate})
    dead = await eventually(lambda: job_in(api, job_id, status), within=90)
    assert dead["attempt"] == attempts


async def test_extraction_reads_a_document(api: httpx.AsyncClient) -> None:
    """Without `simulate`, the stage extracts the document's text."""
    job_id = await _submit(api, "extraction", {"url": _sample("protocol-good.pdf")})
    await eventually(lambda: job_in(api, job_id, "complete"), within=60)
