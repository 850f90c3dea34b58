"""Settings from the environment: one duration format, alert settings nested, bad values named."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from redrive.settings import Settings
from redrive.worker import _worker_options


def test_durations_in_the_environment_read_like_the_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """`REDRIVE_MAINTENANCE_INTERVAL=1h` and the other durations take the TOML file's format."""
    monkeypatch.setenv("REDRIVE_MAINTENANCE_INTERVAL", "1h")
    monkeypatch.setenv("REDRIVE_ARCHIVE_AFTER", "7d")
    monkeypatch.setenv("REDRIVE_ALERT_WINDOW", "90s")
    settings = Settings()
    assert settings.maintenance_interval == timedelta(hours=1)
    assert settings.archive_after == timedelta(days=7)
    assert settings.alerts.alert_window == timedelta(seconds=90)


@pytest.mark.parametrize("value", ["3600", "PT1H", "an hour"])
def test_other_duration_spellings_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Anything but a number and a unit stops start-up with the expected form."""
    monkeypatch.setenv("REDRIVE_RECONCILE_LOOKBACK", value)
    with pytest.raises(ValidationError, match=r"reconcile_lookback[\s\S]*100ms, 30s, 2m, 1h, 1d"):
        Settings()


def test_alert_settings_come_from_their_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """`REDRIVE_SMTP_*` and `REDRIVE_ALERT_*` fill the nested alert settings."""
    monkeypatch.setenv("REDRIVE_SMTP_HOST", "mail.example")
    monkeypatch.setenv("REDRIVE_ALERT_EMAILS", "a@example.com, b@example.com")
    alerts = Settings().alerts
    assert (alerts.smtp_host, alerts.recipients()) == ("mail.example", ("a@example.com", "b@example.com"))
    assert alerts.email_on


def test_secrets_come_from_files_in_the_secrets_dir(tmp_path: Path) -> None:
    """A mounted Secret: each file named like a variable is that setting; the variable, when set, wins."""
    (tmp_path / "REDRIVE_DATABASE_URL").write_text("postgresql+asyncpg://redrive@db/redrive")
    (tmp_path / "REDRIVE_SMTP_PASSWORD").write_text("from-a-file")
    env = {**os.environ, "REDRIVE_SECRETS_DIR": str(tmp_path), "REDRIVE_SMTP_PASSWORD": "from-the-env"}
    env.pop("REDRIVE_DATABASE_URL", None)
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from redrive.settings import Settings; s = Settings(); "
            "print(s.database_url, s.alerts.smtp_password)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert shown.stdout.split() == ["postgresql+asyncpg://redrive@db/redrive", "from-the-env"]


@pytest.mark.parametrize(
    ("value", "runner"), [("true", "SandboxedWorkflowRunner"), ("false", "UnsandboxedWorkflowRunner")]
)
def test_workers_run_workflows_in_the_sandbox_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, value: str, runner: str
) -> None:
    """`REDRIVE_WORKFLOW_SANDBOX` picks the runner of both of a process's workers (jobs, operations)."""
    monkeypatch.setenv("REDRIVE_WORKFLOW_SANDBOX", value)
    options = _worker_options(Settings())
    assert type(options["workflow_runner"]).__name__ == runner
