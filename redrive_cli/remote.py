"""`redrive jobs …` and `redrive dlq …`: the REST API from a terminal (REDRIVE_API_URL, REDRIVE_API_KEY).

Exit codes scripts can rely on: 0 done; 1 the API refused (4xx: not found, conflict, invalid —
the detail is printed); 2 bad usage; 3 the API could not be reached or is unavailable (5xx, 503).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress
from rich.table import Column, Table

from redrive.client import Client, ClientError, Unavailable
from redrive.settings import Settings

REFUSED, UNAVAILABLE = 1, 3
POLL_SECONDS = 1.0
"""How often `attach` asks for a campaign's progress."""

jobs = typer.Typer(
    help="Submit, list, show, retry, cancel and review jobs over the REST API.", no_args_is_help=True
)
dlq = typer.Typer(help="List, show, group and replay dead letters (REST).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    """How results are printed."""

    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table for people, json for scripts")]


def _client() -> Client:
    settings = Settings()
    return Client(settings.api_url or settings.resolved_api_url(), settings.api_key, timeout=120)


def _call(operation: Callable[[Client], BaseModel]) -> Any:
    """Run `operation` with a client; its answer as JSON data, or the exit code scripts rely on."""
    client = _client()
    try:
        return operation(client).model_dump(mode="json")
    except Unavailable as error:
        err.print(f"{error}; check REDRIVE_API_URL" if error.status == 0 else str(error))
        raise typer.Exit(UNAVAILABLE) from None
    except ClientError as error:
        err.print(str(error))
        raise typer.Exit(REFUSED) from None
    finally:
        client.close()


def _show(
    data: Any, output: Output, columns: list[str] | None = None, rows: list[dict[str, Any]] | None = None
) -> None:
    if output == Output.JSON:
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    if columns is None or rows is None:
        table = Table(Column(no_wrap=True), Column(overflow="fold"), show_header=False, box=None)
        for key, value in data.items():
            table.add_row(key, _cell(value))
    else:
        cells = [[_cell(row.get(column)) for column in columns] for row in rows]
        table = Table(*(_column(name, [line[n] for line in cells]) for n, name in enumerate(columns)))
        for line in cells:
            table.add_row(*line)
    out.print(table)


def _column(name: str, values: list[str]) -> Column:
    """Ids are never cut (they are for copying): their column keeps its width, and the others wrap."""
    if name == "id" or name.endswith("_id") or name == "fingerprint":
        return Column(name, no_wrap=True, min_width=max(map(len, [name, *values])))
    return Column(name, overflow="fold")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value)[:200]
    return str(value)


def _payload(payload: str | None, option: str = "--payload") -> dict[str, Any]:
    if payload is None:
        return {}
    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError as error:
        err.print(f"{option}: not JSON ({error})")
        raise typer.Exit(2) from None
    if not isinstance(parsed, dict):
        err.print(f"{option}: must be a JSON object")
        raise typer.Exit(2)
    return parsed


JOB_COLUMNS = ["id", "type", "status", "stage", "attempt", "error_reason", "created_at"]
DLQ_COLUMNS = ["id", "original_job_id", "type", "stage", "error_reason", "attempts", "state", "dlq_at"]


@jobs.command("submit")
def submit(
    job_type: Annotated[str, typer.Argument(help="a registered job type, such as demo or webhook")],
    payload: Annotated[str | None, typer.Option(help="the payload as a JSON object")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="a repeat with the same key returns the same job")
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Submit a job; prints it."""
    body = _payload(payload)
    _show(_call(lambda client: client.submit(job_type, body, idempotency_key=idempotency_key)), output)


@jobs.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option()] = None,
    job_type: Annotated[str | None, typer.Option("--type")] = None,
    stage: Annotated[str | None, typer.Option()] = None,
    label: Annotated[str | None, typer.Option(help="the job type's own word for a status")] = None,
    error_reason: Annotated[str | None, typer.Option()] = None,
    include_archived: Annotated[bool, typer.Option()] = False,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """List jobs, newest first, with counts per status."""
    filters = {  # the client leaves out those not given (None)
        "status": status,
        "type": job_type,
        "stage": stage,
        "label": label,
        "error_reason": error_reason,
        "include_archived": include_archived or None,
    }
    page = _call(lambda client: client.list(limit=limit, cursor=cursor, **filters))
    _show(page, output, JOB_COLUMNS, page["items"])
    if output == Output.TABLE:
        out.print(
            (f"counts: {page['counts']}" if page["counts"] is not None else "")
            + (f"  next: --cursor {page['next_cursor']}" if page["next_cursor"] else "")
        )


@jobs.command("show")
def show_job(job_id: str, output: OutputOption = Output.TABLE) -> None:
    """A job with its stages, actions and retry chain."""
    job = _call(lambda client: client.get(job_id))
    if output == Output.JSON:
        _show(job, output)
        return
    _show({k: v for k, v in job.items() if k not in ("stages", "actions", "dead_letters")}, output)
    _show(job, output, ["name", "status", "executions", "attempt", "duration_s"], job["stages"])


@jobs.command("retry")
def retry_job(
    job_id: str,
    from_stage: Annotated[str | None, typer.Option(help="a stage up to the failed one")] = None,
    reason: Annotated[str | None, typer.Option(help="why (kept on the job)")] = None,
    force: Annotated[bool, typer.Option(help="past the replay limit")] = False,
    payload_patch: Annotated[
        str | None, typer.Option(help="JSON Merge Patch of the payload: continue in a new run with it")
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Retry a dead job from the failed stage (or --from-stage), its payload patched if asked."""
    patch = _payload(payload_patch, "--payload-patch") if payload_patch is not None else None
    _show(
        _call(
            lambda client: client.retry(
                job_id, from_stage=from_stage, reason=reason, force=force, payload_patch=patch
            )
        ),
        output,
    )


@jobs.command("cancel")
def cancel_job(
    job_id: str, reason: Annotated[str | None, typer.Option()] = None, output: OutputOption = Output.TABLE
) -> None:
    """Cancel a queued, running, retrying or waiting job."""
    _show(_call(lambda client: client.cancel(job_id, reason=reason)), output)


@jobs.command("review")
def review_job(
    job_id: str,
    decision: Annotated[str, typer.Option(help="approve or reject")],
    comment: Annotated[str | None, typer.Option()] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Approve or reject a job waiting in a review stage."""
    _show(_call(lambda client: client.review(job_id, decision, comment=comment)), output)


@dlq.command("list")
def list_dead_letters(
    job_type: Annotated[str | None, typer.Option("--type")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    stage: Annotated[str | None, typer.Option()] = None,
    fingerprint: Annotated[str | None, typer.Option()] = None,
    pending: Annotated[bool | None, typer.Option("--pending/--replayed", help="default: both")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    output: OutputOption = Output.TABLE,
) -> None:
    """Dead letters, newest first."""
    filters = {
        "type": job_type,
        "reason": reason,
        "stage": stage,
        "fingerprint": fingerprint,
        "pending": pending,
    }
    page = _call(lambda client: client.dead_letters(limit=limit, **filters))
    _show(page, output, DLQ_COLUMNS, page["items"])


@dlq.command("show")
def show_dead_letter(entry_id: str, output: OutputOption = Output.TABLE) -> None:
    """One dead letter with the error of every attempt."""
    entry = _call(lambda client: client.dead_letter(entry_id))
    if output == Output.JSON:
        _show(entry, output)
        return
    _show({k: v for k, v in entry.items() if k != "error_history"}, output)
    _show(entry, output, ["attempt", "error_type", "message", "timestamp"], entry["error_history"])


@dlq.command("groups")
def groups(output: OutputOption = Output.TABLE) -> None:
    """Pending dead letters grouped by error fingerprint, largest first."""
    page = _call(lambda client: client.dead_letter_groups())
    columns = ["fingerprint", "count", "type", "stage", "error_type", "last_seen", "sample_message"]
    _show(page, output, columns, page["items"])


@dlq.command("replay")
def replay(
    entry_id: Annotated[str | None, typer.Argument(help="one dead letter; omit to replay by filter")] = None,
    job_type: Annotated[str | None, typer.Option("--type")] = None,
    reason: Annotated[str | None, typer.Option(help="error reason to match, such as MaxRetries")] = None,
    stage: Annotated[str | None, typer.Option()] = None,
    fingerprint: Annotated[str | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option(help="count and sample only")] = False,
    max_entries: Annotated[int, typer.Option("--max", min=1, max=10_000)] = 100,
    rate: Annotated[float | None, typer.Option(min=0.01, max=1000, help="replays per second")] = None,
    note: Annotated[str | None, typer.Option("--note", help="why (kept on each job)")] = None,
    force: Annotated[bool, typer.Option(help="past the replay limit")] = False,
    canary: Annotated[int | None, typer.Option(min=1, help="replay this many first, and wait")] = None,
    canary_percent: Annotated[float | None, typer.Option(min=0.01, max=100, help="or this share")] = None,
    canary_max_died: Annotated[
        float, typer.Option(min=0, max=100, help="stop when more than this % of the canary died again")
    ] = 0,
    detach: Annotated[bool, typer.Option(help="start the campaign and print its id only")] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replay one dead letter, or every pending one matching the filter in a replay campaign (with a
    progress bar; Ctrl-C detaches, the campaign goes on: `redrive replays attach ID`)."""
    if entry_id is not None:
        one = entry_id
        _show(_call(lambda client: client.replay(one, reason=note, force=force)), output)
        return
    where = {"type": job_type, "reason": reason, "stage": stage, "fingerprint": fingerprint}
    if dry_run:
        preview = _call(lambda client: client.replay_many(where, dry_run=True))
        _show(preview, output, DLQ_COLUMNS, preview["sample"])
        if output == Output.TABLE:
            out.print(f"{preview['matched']} pending dead letter(s) match")
        return
    first = None
    if canary is not None or canary_percent is not None:
        first = {"count": canary, "percent": canary_percent, "max_died_again_percent": canary_max_died}
        first = {key: value for key, value in first.items() if value is not None}
    order = functools.partial(_start, where, max_entries, rate, note, force, first)
    campaign = _call(order)
    if detach:
        if output == Output.JSON:
            _show(campaign, output)
        else:
            out.print(campaign["id"])
        return
    _attach(campaign["id"], output)


def _start(
    where: dict[str, Any],
    max_entries: int,
    rate: float | None,
    note: str | None,
    force: bool,
    canary: dict[str, Any] | None,
    client: Client,
) -> BaseModel:
    answer: BaseModel = client.start_campaign(
        where, max=max_entries, rate=rate, reason=note, force=force, canary=canary
    )
    return answer


ENDED = ("finished", "cancelled", "stopped")
CAMPAIGN_COLUMNS = ["dead_letter_id", "job_id", "outcome", "detail"]


def _attach(campaign_id: str, output: Output) -> None:
    """Follow a campaign with a progress bar until it ends; print what it did. Exit 1 when it was
    stopped by its canary or left entries failed."""
    campaign = _call(lambda client: client.campaign(campaign_id))
    with Progress(console=err, disable=output == Output.JSON) as progress:
        task = progress.add_task(f"replaying ({campaign_id})", total=campaign["taking"] or None)
        while True:
            progress.update(
                task,
                total=campaign["taking"],
                completed=campaign["taken"],
                description=f"replaying ({campaign['state']})",
            )
            if campaign["state"] in ENDED and campaign["workflow_status"] != "RUNNING":
                break
            time.sleep(POLL_SECONDS)
            campaign = _call(lambda client: client.campaign(campaign_id))
    if output == Output.JSON:
        _show(campaign, output)
    else:
        if campaign["problems"]:
            _show(campaign, output, CAMPAIGN_COLUMNS, campaign["problems"])
        out.print(_summary(campaign))
    if campaign["state"] == "stopped" or campaign["failed"]:
        raise typer.Exit(REFUSED)


def _summary(campaign: dict[str, Any]) -> str:
    said = (
        f"campaign {campaign['id']} {campaign['state']}: {campaign['replayed']} reset, "
        f"{campaign['resubmitted']} resubmitted, {campaign['skipped']} skipped, {campaign['failed']} failed; "
        f"{campaign['completed']} completed since, {campaign['died_again']} died again"
    )
    return f"{said}\n{campaign['stop_reason']}" if campaign["stop_reason"] else said


replays = typer.Typer(help="Follow and steer replay campaigns (REST).", no_args_is_help=True)


@replays.command("list")
def list_campaigns(output: OutputOption = Output.TABLE) -> None:
    """The latest replay campaigns, newest first."""
    page = _call(lambda client: client.campaigns())
    _show(page, output, ["id", "workflow_status", "started_at"], page["items"])


@replays.command("show")
def show_campaign(campaign_id: str, output: OutputOption = Output.TABLE) -> None:
    """A campaign's order, progress and its jobs' fates."""
    _show(_call(lambda client: client.campaign(campaign_id)), output)


@replays.command("attach")
def attach(campaign_id: str, output: OutputOption = Output.TABLE) -> None:
    """Follow a running campaign with a progress bar until it ends."""
    _attach(campaign_id, output)


def _steer(campaign_id: str, how: str, output: Output) -> None:
    campaign = _call(lambda client: client.steer_campaign(campaign_id, how))
    if output == Output.JSON:
        _show(campaign, output)
    else:
        out.print(_summary(campaign))


@replays.command("pause")
def pause(campaign_id: str, output: OutputOption = Output.TABLE) -> None:
    """Replay nothing more until resumed."""
    _steer(campaign_id, "pause", output)


@replays.command("resume")
def resume(campaign_id: str, output: OutputOption = Output.TABLE) -> None:
    """Go on from where it was paused."""
    _steer(campaign_id, "resume", output)


@replays.command("cancel")
def cancel_campaign(campaign_id: str, output: OutputOption = Output.TABLE) -> None:
    """Replay nothing more and end it."""
    _steer(campaign_id, "cancel", output)


breakers = typer.Typer(help="See and operate circuit breakers (REST).", no_args_is_help=True)
BREAKER_COLUMNS = ["job_type", "stage", "key", "state", "since", "failures", "attempts", "waiting", "reason"]
KeyOption = Annotated[str, typer.Option("--key", help="the downstream, for a breaker kept per downstream")]


@breakers.command("list")
def list_breakers(
    job_type: Annotated[str | None, typer.Option("--type", help="only this job type's")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Every circuit breaker: state, since when, its window's figures, the jobs it holds, why."""
    page = _call(lambda client: client.breakers(job_type=job_type))
    _show(page, output, BREAKER_COLUMNS, page["items"])


@breakers.command("show")
def show_breaker(job_type: str, stage: str, key: KeyOption = "", output: OutputOption = Output.TABLE) -> None:
    """One breaker in full, with its declaration."""
    _show(_call(lambda client: client.breaker(job_type, stage, key=key)), output)


def _operate(job_type: str, stage: str, action: str, reason: str, key: str, output: Output) -> None:
    shown = _call(lambda client: client.operate_breaker(job_type, stage, action, reason, key=key))
    if output == Output.JSON:
        _show(shown, output)
    else:
        out.print(f"{action} sent to the breaker of {job_type}/{stage}; it was {shown['state']}")


@breakers.command("open")
def open_breaker(
    job_type: str,
    stage: str,
    reason: Annotated[str, typer.Option("--reason", help="why: recorded, and sent in the alert")],
    key: KeyOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Hold the stage's jobs (no retries spent) until the breaker is closed by hand."""
    _operate(job_type, stage, "open", reason, key, output)


@breakers.command("close")
def close_breaker(
    job_type: str,
    stage: str,
    reason: Annotated[str, typer.Option("--reason", help="why: recorded, and sent in the alert")],
    key: KeyOption = "",
    output: OutputOption = Output.TABLE,
) -> None:
    """Close the breaker; the jobs it holds resume at its declared pace."""
    _operate(job_type, stage, "close", reason, key, output)
