"""Retry-policy overrides from TOML: precedence, durations and errors that name the bad key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from redrive.breaker_policy import Breaker
from redrive.durations import parse_duration
from redrive.jobtypes import ConfigError, load_job_types


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redrive.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "seconds"), [("100ms", 0.1), ("30s", 30), ("2m", 120), ("1h", 3600), ("1.5s", 1.5)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    """Durations are a number and a unit."""
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_narrower_tables_win(tmp_path: Path) -> None:
    """Stage settings beat job-type settings, which beat defaults."""
    registry = load_job_types(
        config=_load(
            tmp_path,
            """
            [defaults]
            jitter = 0.1
            [job_types.demo]
            initial_interval = "100ms"
            max_retries = 5
            [job_types.demo.stages.process]
            max_retries = 1
            start_to_close_timeout = "2m"
            """,
        )
    )
    demo = registry.get("demo")
    prepare, process, _finish = demo.stages
    assert process.retry.max_retries == 1
    assert process.start_to_close_timeout == timedelta(minutes=2)
    assert prepare.retry.max_retries == 5
    assert prepare.retry.initial_interval == timedelta(milliseconds=100)
    (deliver,) = registry.get("webhook").stages
    assert deliver.retry.jitter == 0.1
    assert deliver.retry.max_retries == 3


def test_stages_declare_a_heartbeat_timeout_unless_turned_off(tmp_path: Path) -> None:
    """Every stage has a 10 s heartbeat timeout by default (a lost worker's attempt moves on in
    seconds); a table changes it, and "0s" turns it off."""
    registry = load_job_types(
        config=_load(
            tmp_path,
            """
            [job_types.demo]
            heartbeat_timeout = "3s"
            [job_types.demo.stages.finish]
            heartbeat_timeout = "0s"
            """,
        )
    )
    prepare, _process, finish = registry.get("demo").stages
    assert prepare.heartbeat_timeout == timedelta(seconds=3)
    assert not finish.heartbeat_timeout
    (deliver,) = registry.get("webhook").stages
    assert deliver.heartbeat_timeout == timedelta(seconds=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[job_types.demo]\nmax_retrys = 2", r"job_types\.demo\.max_retrys: unknown key"),
        ('[job_types.demo]\ninitial_interval = "soon"', r"job_types\.demo\.initial_interval = 'soon'"),
        ("[job_types.demo]\nmax_retries = 1.5", r"max_retries = 1\.5: must be a whole number"),
        ("[job_types.nope]\njitter = 0.1", r"job_types\.nope: unknown job type 'nope'; known types: demo"),
        ("[job_types.demo.stages.bake]\njitter = 0.1", r"job_types\.demo\.stages\.bake: unknown stage"),
        ("[defaults]\njitter = 3", r"jitter must be between 0 and 1"),
        ("[retries]\njitter = 0.1", r"retries: unknown table"),
        ("[defaults\n", r"not valid TOML"),
        (
            "[job_types.demo.stages.process.breaker]\nfailure_rate = 2.0",
            r"stages\.process\.breaker: breaker failure_rate must be above 0 and at most 1",
        ),
        ("[job_types.demo.stages.process.breaker]\nwindoe = '1m'", r"breaker\.windoe: unknown key"),
        (
            "[job_types.demo]\nlocal = true\n[job_types.demo.stages.process.breaker]\nmin_failures = 2",
            r"job_types\.demo: stage 'process': a breaker needs an ordinary activity stage",
        ),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    """A bad key or value raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        load_job_types(config=_load(tmp_path, text))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """REDRIVE_CONFIG pointing nowhere stops start-up."""
    with pytest.raises(ConfigError, match="cannot read it"):
        load_job_types(config=tmp_path / "absent.toml")


def test_a_stage_declares_its_breaker_in_toml(tmp_path: Path) -> None:
    """A breaker table declares the stage's breaker; keys left out keep their defaults; other stages
    have none."""
    registry = load_job_types(
        config=_load(
            tmp_path,
            """
            [job_types.webhook.stages.deliver.breaker]
            window = "30s"
            min_failures = 4
            cool_down = "10s"
            per = "url"
            """,
        )
    )
    (deliver,) = registry.get("webhook").stages
    assert deliver.breaker == Breaker(
        window=timedelta(seconds=30), min_failures=4, cool_down=timedelta(seconds=10), per="url"
    )
    assert all(stage.breaker is None for stage in registry.get("demo").stages)
