"""`bench.scratch`: a benchmark's folder goes when the run ends well and stays when it fails."""

import shutil
from pathlib import Path

import pytest

from bench.scratch import scratch_home, tail


def test_the_folder_is_removed_after_a_run_that_ends_well() -> None:
    with scratch_home("redrive-test-scratch-") as home:
        (home / "temporal.db").write_bytes(b"\0" * 4096)
        (home / "worker.log").write_text("polling\n")
        assert home.is_dir()
    assert not home.exists()


def _fail_in_scratch(homes: list[Path]) -> None:
    with scratch_home("redrive-test-scratch-") as home:
        homes.append(home)
        (home / "worker.log").write_text("Traceback: boom\n")
        raise RuntimeError("worker exited with 1")


def test_the_folder_is_kept_and_named_after_a_run_that_fails(capsys: pytest.CaptureFixture[str]) -> None:
    homes: list[Path] = []
    with pytest.raises(RuntimeError, match="worker exited"):
        _fail_in_scratch(homes)
    [kept] = homes
    try:
        assert (kept / "worker.log").read_text() == "Traceback: boom\n"
        assert str(kept) in capsys.readouterr().err
    finally:
        shutil.rmtree(kept)


def test_tail_quotes_the_last_lines_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("".join(f"line {number}\n" for number in range(1, 31)))
    assert tail(log, 3) == "line 28\nline 29\nline 30"
    assert tail(tmp_path / "missing.log") == f"({tmp_path / 'missing.log'} was not written)"
