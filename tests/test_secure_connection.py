"""A secured Temporal: the dev server behind nginx (TLS, then mTLS), with certificates this test
makes. The API, a worker and `redrive doctor` connect through it with the SDK's own variables or
redrive's aliases; a wrong CA or a missing client certificate is a clear error within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.settings import Settings
from redrive.temporal import TemporalUnreachable, connect, connect_config
from tests.support import eventually, free_port, job_in, self_connected, settings_for

A = {"Authorization": "Bearer key-a"}


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate for localhost signed by it, a client certificate, and a CA nobody uses."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed(folder: Path, name: str, ca: Path, ca_key: Path, extensions: str) -> tuple[Path, Path]:
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    _openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(request),
        "-subj",
        f"/CN={name}",
    )
    (folder / f"{name}.ext").write_text(extensions)  # v3 extensions: the SDK refuses v1 certificates
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(folder / f"{name}.ext"),
    )  # fmt: skip
    return cert, key


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Certificates made for this test run."""
    folder = tmp_path_factory.mktemp("certs")
    ca, ca_key = _ca(folder, "redrive-test-ca")
    other_ca, _ = _ca(folder, "another-ca")
    server = (
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    server_cert, server_key = _signed(folder, "server", ca, ca_key, server)
    client_cert, client_key = _signed(
        folder, "client", ca, ca_key, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    )
    return Certificates(ca, server_cert, server_key, client_cert, client_key, other_ca)


def _nginx_conf(folder: Path, port: int, upstream: str, certs: Certificates, mutual: bool) -> Path:
    verify = f"ssl_client_certificate {certs.ca}; ssl_verify_client on;" if mutual else ""
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
user root;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {certs.server_cert};
        ssl_certificate_key {certs.server_key};
        {verify}
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
}}
"""
    )
    return conf


@contextlib.contextmanager
def nginx(folder: Path, upstream: str, certs: Certificates, mutual: bool) -> Iterator[str]:
    """nginx terminating TLS (mTLS when `mutual`) in front of `upstream`; yields its address."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is not installed; scripts/test installs it (apt-get install nginx-light)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = _nginx_conf(folder, port, upstream, certs, mutual)
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, (folder / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _upstream(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def _runs_a_job(http: httpx.AsyncClient) -> None:
    created = await http.post("/v1/jobs", json={"type": "demo", "payload": {}})
    assert created.status_code == 202, created.text
    await eventually(lambda: job_in(http, created.json()["id"], "complete"), within=60)


async def test_tls_with_redrives_own_settings(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, certificates: Certificates
) -> None:
    """REDRIVE_TEMPORAL_TLS_* settings: API and worker reach Temporal through TLS and run a job."""
    with nginx(tmp_path / "nginx", _upstream(dev_env), certificates, mutual=False) as address:
        settings = settings_for(
            sqlite_url,
            tmp_path,
            temporal_address=address,
            temporal_tls_server_ca_cert_path=certificates.ca,
            temporal_tls_server_name="localhost",
        )
        async with self_connected(settings, A) as http:
            await _runs_a_job(http)


async def test_mtls_with_the_sdks_variables(
    dev_env: WorkflowEnvironment,
    sqlite_url: str,
    tmp_path: Path,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TEMPORAL_* variables (the SDK's own): API, worker and `redrive doctor` connect with a client
    certificate; without one, or trusting another CA, the connection fails within seconds, saying so."""
    with nginx(tmp_path / "nginx", _upstream(dev_env), certificates, mutual=True) as address:
        variables = {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certificates.ca),
            "TEMPORAL_TLS_SERVER_NAME": "localhost",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certificates.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certificates.client_key),
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        settings = settings_for(sqlite_url, tmp_path)
        assert connect_config(settings)["target_host"] == address
        async with self_connected(settings, A) as http:
            await _runs_a_job(http)
        doctor = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "redrive_cli", "doctor"],
            env={**os.environ, "REDRIVE_DATABASE_URL": sqlite_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert f"ok    temporal: connected to {address} (TLS)" in doctor.stdout, doctor.stdout + doctor.stderr

        monkeypatch.delenv("TEMPORAL_TLS_CLIENT_CERT_PATH")
        monkeypatch.delenv("TEMPORAL_TLS_CLIENT_KEY_PATH")
        await _refused(settings, address)
        monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(certificates.other_ca))
        await _refused(settings, address)


async def _refused(settings: Settings, address: str) -> None:
    async def first_call() -> None:
        client = await connect(settings)
        await client.count_workflows()  # in case the handshake passed: the first call must fail

    started = time.monotonic()
    with pytest.raises(TemporalUnreachable, match=f"cannot connect to Temporal at {address} \\(TLS\\)"):
        await first_call()
    assert time.monotonic() - started < 10.5
