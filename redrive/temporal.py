"""The Temporal client every redrive process uses: one data converter (pydantic) everywhere, and
one connection configuration — the SDK's own (`temporalio.envconfig`: `TEMPORAL_ADDRESS`,
`TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_PROFILE` and its TOML profile
file), with `REDRIVE_TEMPORAL_*` as aliases that win when set."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from redrive.codec import data_converter
from redrive.settings import Settings
from redrive.tracing import client_interceptors

CONNECT_TIMEOUT_S = 10.0

ALIASES = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
    "temporal_api_key": "TEMPORAL_API_KEY",
    "temporal_tls": "TEMPORAL_TLS",
    "temporal_tls_server_ca_cert_path": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "temporal_tls_server_name": "TEMPORAL_TLS_SERVER_NAME",
    "temporal_tls_client_cert_path": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "temporal_tls_client_key_path": "TEMPORAL_TLS_CLIENT_KEY_PATH",
}
"""`Settings` field (`REDRIVE_<FIELD>`) -> the SDK's variable it stands for."""


class TemporalUnreachable(ConnectionError):
    """Temporal could not be reached with the configured address, TLS and credentials."""


def connect_config(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`Client.connect`'s keyword arguments: the SDK's environment and profile file, with the
    `REDRIVE_TEMPORAL_*` settings given (and the address and namespace defaults) laid over them."""
    env = dict(environ)
    for field, variable in ALIASES.items():
        value = getattr(settings, field)
        given = field in settings.model_fields_set
        default = field in ("temporal_address", "temporal_namespace") and variable not in env
        if field == "temporal_address" and not given:
            value = f"localhost:{settings.temporal_port}"  # where `redrive dev` runs its server
        if (given or default) and value not in (None, ""):
            env[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        config: dict[str, Any] = dict(ClientConfig.load_client_connect_config(override_env_vars=env))
    except (OSError, ValueError, RuntimeError) as error:
        raise TemporalUnreachable(
            f"Temporal connection settings: {error}; check TEMPORAL_* or REDRIVE_TEMPORAL_*"
        ) from None
    return config


def temporal_target(settings: Settings) -> str:
    """The address the configuration connects to, for messages."""
    try:
        return str(connect_config(settings).get("target_host", settings.temporal_address))
    except TemporalUnreachable:
        return settings.temporal_address


@functools.cache
def metrics_runtime() -> tuple[Runtime, str]:
    """The process's one SDK runtime that exports Prometheus metrics, and the loopback URL where it
    does (`redrive.probes` serves them on the worker's metrics port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prometheus = PrometheusConfig(
        bind_address=f"127.0.0.1:{port}",
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus)), f"http://127.0.0.1:{port}/metrics"


async def connect(settings: Settings, *, serve_metrics: bool = False) -> Client:
    """A client for the configured server, namespace, TLS (or mTLS) and API key; with
    `serve_metrics` and `REDRIVE_METRICS_PORT`, its runtime serves the SDK's and redrive's worker
    metrics there. A connection that fails (a wrong CA, a missing client certificate, nothing
    listening) is `TemporalUnreachable` with the reason, within `CONNECT_TIMEOUT_S`."""
    config = connect_config(settings)
    if serve_metrics and settings.metrics_port:
        config["runtime"] = metrics_runtime()[0]
    if interceptors := client_interceptors(settings):
        config["interceptors"] = interceptors
    target = config.pop("target_host", settings.temporal_address)
    secured = "TLS" if config.get("tls") else "plain"
    try:
        return await asyncio.wait_for(
            Client.connect(target, data_converter=data_converter(settings.payload_key), **config),
            CONNECT_TIMEOUT_S,
        )
    except (RuntimeError, OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise TemporalUnreachable(
            f"cannot connect to Temporal at {target} ({secured}): {reason}; check the address, the CA and "
            "client certificate (TEMPORAL_TLS_* / REDRIVE_TEMPORAL_TLS_*) and the API key"
        ) from None


def exit_process(code: int) -> NoReturn:
    """End a process that has used a Temporal client, skipping the interpreter's teardown.

    The SDK's Rust threads can still call into Python while the interpreter finalizes, which aborts
    the process with "Fatal Python error: PyGILState_Release" (sdk-python issue 300): 30 of 182
    worker exits after a clean drain in one day's benchmark runs, most of them short of CPU. Call it
    once everything of ours is closed; it flushes logging and the standard streams, nothing else.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def workflow_url(settings: Settings, workflow_id: str, run_id: str | None) -> str:
    """The job's page in the Temporal Web UI."""
    return ui_workflow_url(settings.resolved_ui_url(), settings.temporal_namespace, workflow_id, run_id)


def ui_workflow_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    """A workflow's page in the Temporal Web UI at `ui_url`."""
    base = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base
