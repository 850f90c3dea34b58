"""The OpenAPI document at /openapi.json (rendered at /docs) describes every operation and gives an
example of its request or answer, and documents its errors as problem+json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from temporalio.testing import WorkflowEnvironment

from redrive import schemas
from redrive.api import create_app
from redrive.api.routers.docs import ASSETS
from redrive.jobtypes import load_job_types
from redrive.operations.submit import check_payload
from redrive.settings import Settings
from tests.support import running_api, settings_for


def _has_example(node: Any, schemas: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return name not in seen and _has_example(schemas[name], schemas, seen | {name})
        return any(_has_example(value, schemas, seen) for value in node.values())
    if isinstance(node, list):
        return any(_has_example(value, schemas, seen) for value in node)
    return False


def test_every_operation_has_a_description_an_example_and_problem_errors() -> None:
    """No operation is undocumented, without an example, or with errors that are not problem+json."""
    document = create_app(Settings(api_keys="key:a")).openapi()
    schemas = document["components"]["schemas"]
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 15
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("description"), where
        answers = {code: answer for code, answer in operation["responses"].items() if code.startswith("2")}
        assert _has_example(answers, schemas), where
        for code, answer in operation["responses"].items():
            if code.startswith(("4", "5")):
                assert list(answer["content"]) == ["application/problem+json"], (where, code)


def _examples(model: type[BaseModel]) -> list[Any]:
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    return examples if isinstance(examples, list) else []


MODELS = [
    value for value in vars(schemas).values() if isinstance(value, type) and issubclass(value, BaseModel)
]


@pytest.mark.parametrize(
    "model", [model for model in MODELS if _examples(model)], ids=lambda model: model.__name__
)
def test_examples_fit_their_schemas(model: type[BaseModel]) -> None:
    """Every example the OpenAPI document shows is a valid instance of the schema it illustrates."""
    for example in _examples(model):
        model.model_validate(example)


async def test_docs_are_served_from_the_api_alone(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """/docs renders the document for a person, naming no outside URL: every script, style and icon
    it loads comes from the API itself (a machine without internet renders it); /openapi.json is
    the document."""
    settings = settings_for(sqlite_url, tmp_path)
    async with running_api(settings, dev_env.client) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "http://" not in page.text
        assert "https://" not in page.text
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assets += re.findall(r"""url: ?['"]([^'"]+)['"]""", page.text)
        assert {"/openapi.json", f"{ASSETS}/swagger-ui-bundle.js", f"{ASSETS}/swagger-ui.css"} <= set(assets)
        for asset in assets:
            answer = await http.get(asset)
            assert answer.status_code == 200, asset
            assert answer.content, asset
        script = await http.get(f"{ASSETS}/swagger-ui-bundle.js")
        document = (await http.get("/openapi.json")).json()
    assert "javascript" in script.headers["content-type"]
    assert document["info"]["title"] == "redrive"


@pytest.mark.parametrize("name", sorted(schemas.SUBMIT_EXAMPLES))
def test_each_submission_example_is_accepted(name: str) -> None:
    """The per-type examples of POST /v1/jobs fit the request and their job type's payload model,
    and the OpenAPI document shows each."""
    example = schemas.SUBMIT_EXAMPLES[name]["value"]
    order = schemas.JobCreate.model_validate(example)
    job_type = load_job_types().get(order.type)
    check_payload(job_type.payload_model, order.payload)
    document = create_app(Settings(api_keys="key:a")).openapi()
    shown = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert shown[name]["value"] == example
