"""A Python client for redrive's REST API, typed with the API's own models (`redrive.schemas`).

    async with AsyncClient("http://localhost:8000", api_key) as redrive:
        job = await redrive.submit("invoice", {"customer": "ACME", "amount_cents": 1250})
        job = await redrive.wait(job.id)                 # until complete, dead_letter, cancelled, …
        if job.status == "dead_letter":
            await redrive.retry(job.id, reason="card updated")

`Client` is the same with blocking calls. Refusals are typed, each carrying the problem document:

    ClientError                  status, title, detail, field (the request field to blame, if any)
    ├── Unauthorized             401/403: no key, a bad one, or one without the scope
    ├── NotFound                 404: no such job or dead letter for this key's tenant
    ├── Conflict                 409: not in a state that allows it; `detail` says why
    ├── Invalid                  400/413/422: `field` names what to fix, `errors` lists all
    └── Unavailable              503, other 5xx, or no answer: `retry_after` seconds, when given
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from redrive.schemas import (
    BreakerList,
    BreakerPublic,
    BulkReplayPublic,
    CampaignList,
    CampaignPublic,
    CancelPublic,
    DeadLetterGroupPage,
    DeadLetterPage,
    DeadLetterPublic,
    JobPage,
    JobPublic,
    RetryPublic,
    ReviewPublic,
)

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

FINAL = frozenset({"complete", "dead_letter", "archived", "cancelled"})
"""Statuses a job leaves only when a person acts (retry, replay)."""


class ClientError(Exception):
    """The API refused the request, or could not be reached."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.field: str | None = problem.get("field")
        self.errors: list[dict[str, str]] = problem.get("errors") or []
        super().__init__(f"{status} {self.title}: {self.detail}")


class Unauthorized(ClientError):
    """401 or 403: send a valid key that has the scope this call needs."""


class NotFound(ClientError):
    """404: no such object for this key's tenant."""


class Conflict(ClientError):
    """409: the object is not in a state that allows this."""


class Invalid(ClientError):
    """400, 413 or 422: `field` names what to fix."""


class Unavailable(ClientError):
    """The API, its database or Temporal cannot answer now; try again after `retry_after` seconds."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


def _refusal(response: httpx.Response) -> ClientError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    problem = problem if isinstance(problem, dict) else {}
    problem.setdefault("detail", response.text[:500])
    status = response.status_code
    if status >= 500:
        after = response.headers.get("Retry-After")
        return Unavailable(status, problem, float(after) if after and after.isdigit() else None)
    kinds: dict[int, type[ClientError]] = {401: Unauthorized, 403: Unauthorized, 404: NotFound, 409: Conflict}
    return kinds.get(status, Invalid)(status, problem)


def _given(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class AsyncClient:
    """The REST API over httpx: one method per operation, each answering with the API's model."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _call(
        self,
        model: type[Model],
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Model:
        try:
            response = await self._http.request(method, path, json=body, params=_given(**(params or {})))
        except httpx.TransportError as error:
            raise Unavailable(
                0, {"title": "Unreachable", "detail": f"{self._http.base_url}: {error}"}
            ) from error
        if response.status_code >= 400:
            raise _refusal(response)
        return model.model_validate(response.json())

    async def submit(
        self, job_type: str, payload: dict[str, Any] | None = None, *, idempotency_key: str | None = None
    ) -> JobPublic:
        """Start a job (a repeat with the same idempotency key returns the same job)."""
        body = _given(type=job_type, payload=payload or {}, idempotency_key=idempotency_key)
        return await self._call(JobPublic, "POST", "/v1/jobs", body=body)

    async def get(self, job_id: str) -> JobPublic:
        """One job with its stages, actions and retry chain."""
        return await self._call(JobPublic, "GET", f"/v1/jobs/{job_id}")

    async def list(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> JobPage:
        """One page of jobs, newest first (filters: status, type, stage, label, error_reason,
        created_after, created_before, include_archived)."""
        return await self._call(
            JobPage, "GET", "/v1/jobs", params={**filters, "limit": limit, "cursor": cursor}
        )

    async def iter_jobs(self, *, page_size: int = 200, **filters: Any) -> AsyncIterator[JobPublic]:
        """Every job matching `filters`, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor, **filters)
            for job in page.items:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def wait(
        self, job_id: str, *, until: frozenset[str] = FINAL, within: float = 300.0, interval: float = 0.5
    ) -> JobPublic:
        """The job once its status is one of `until` (by default a final one); `TimeoutError` after
        `within` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            job = await self.get(job_id)
            if job.status in until:
                return job
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {within} s")
            await asyncio.sleep(interval)

    async def retry(
        self,
        job_id: str,
        *,
        from_stage: str | None = None,
        reason: str | None = None,
        force: bool = False,
        payload_patch: dict[str, Any] | None = None,
    ) -> RetryPublic:
        """Retry a dead job from its failed stage (or `from_stage`, any stage up to it); with
        `payload_patch` (a JSON Merge Patch) it continues there in a new run with the patched payload."""
        body = _given(from_stage=from_stage, reason=reason, force=force or None, payload_patch=payload_patch)
        return await self._call(RetryPublic, "POST", f"/v1/jobs/{job_id}/retry", body=body)

    async def cancel(self, job_id: str, *, reason: str | None = None) -> CancelPublic:
        """Stop a queued, running, retrying or waiting job."""
        return await self._call(CancelPublic, "POST", f"/v1/jobs/{job_id}/cancel", body=_given(reason=reason))

    async def review(self, job_id: str, decision: str, *, comment: str | None = None) -> ReviewPublic:
        """Approve or reject the review stage the job waits in."""
        body = _given(decision=decision, comment=comment)
        return await self._call(ReviewPublic, "POST", f"/v1/jobs/{job_id}/review", body=body)

    async def dead_letters(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Any
    ) -> DeadLetterPage:
        """One page of dead letters, newest first (filters: type, reason, stage, fingerprint, pending,
        dlq_before, dlq_after)."""
        params = {**filters, "limit": limit, "cursor": cursor}
        return await self._call(DeadLetterPage, "GET", "/v1/dead-letters", params=params)

    async def dead_letter_groups(
        self, *, job_type: str | None = None, pending: bool = True
    ) -> DeadLetterGroupPage:
        """Dead letters grouped by error fingerprint, largest first."""
        params = {"type": job_type, "pending": pending}
        return await self._call(DeadLetterGroupPage, "GET", "/v1/dead-letters/groups", params=params)

    async def dead_letter(self, entry_id: uuid.UUID | str) -> DeadLetterPublic:
        """One dead letter with its payload and every attempt's error."""
        return await self._call(DeadLetterPublic, "GET", f"/v1/dead-letters/{entry_id}")

    async def replay(
        self,
        entry_id: uuid.UUID | str,
        *,
        from_stage: str | None = None,
        reason: str | None = None,
        force: bool = False,
        payload_patch: dict[str, Any] | None = None,
    ) -> RetryPublic:
        """Replay one dead letter (a reset from its failed stage, or a new run from its payload; with
        `payload_patch`, a new run from the failed stage with the patched payload)."""
        body = _given(from_stage=from_stage, reason=reason, force=force or None, payload_patch=payload_patch)
        return await self._call(RetryPublic, "POST", f"/v1/dead-letters/{entry_id}/replay", body=body)

    async def replay_many(
        self,
        where: Mapping[str, str | None] | None = None,
        *,
        dry_run: bool = False,
        max: int = 100,
        rate: float | None = None,
        reason: str | None = None,
        force: bool = False,
        dlq_before: datetime | None = None,
        dlq_after: datetime | None = None,
    ) -> BulkReplayPublic:
        """Replay the pending dead letters matching `where` (`type`, `reason` — the error reason —,
        `stage`, `fingerprint`; None is no condition); `reason` beside it is why, kept on each job."""
        times = {
            "dlq_before": dlq_before.isoformat() if dlq_before else None,
            "dlq_after": dlq_after.isoformat() if dlq_after else None,
        }
        body = _given(
            filter=_given(**(where or {}), **times),
            dry_run=dry_run,
            max=max,
            rate=rate,
            reason=reason,
            force=force,
        )
        return await self._call(BulkReplayPublic, "POST", "/v1/dead-letters/replay", body=body)

    async def start_campaign(
        self,
        where: Mapping[str, str | None] | None = None,
        *,
        max: int = 100,
        rate: float | None = None,
        reason: str | None = None,
        force: bool = False,
        canary: Mapping[str, Any] | None = None,
    ) -> CampaignPublic:
        """Start a replay campaign over the pending dead letters matching `where` (as for
        `replay_many`); `canary` is `{"count": n}` or `{"percent": p}`, with `max_died_again_percent`
        and `settle_seconds` if wanted. Answers at once; follow it with `campaign`."""
        body = _given(
            filter=_given(**(where or {})), max=max, rate=rate, reason=reason, force=force, canary=canary
        )
        return await self._call(CampaignPublic, "POST", "/v1/replays", body=body)

    async def campaign(self, campaign_id: str) -> CampaignPublic:
        """A replay campaign and where it stands."""
        return await self._call(CampaignPublic, "GET", f"/v1/replays/{campaign_id}")

    async def campaigns(self, *, limit: int = 50) -> CampaignList:
        """The latest replay campaigns, newest first."""
        return await self._call(CampaignList, "GET", "/v1/replays", params={"limit": limit})

    async def steer_campaign(self, campaign_id: str, how: str) -> CampaignPublic:
        """`pause`, `resume` or `cancel` a replay campaign."""
        return await self._call(CampaignPublic, "POST", f"/v1/replays/{campaign_id}/{how}")

    async def breakers(self, *, job_type: str | None = None) -> BreakerList:
        """Every circuit breaker: state, why, its window's figures and the jobs it holds."""
        params = {"job_type": job_type} if job_type else None
        return await self._call(BreakerList, "GET", "/v1/breakers", params=params)

    async def breaker(self, job_type: str, stage: str, *, key: str = "") -> BreakerPublic:
        """One circuit breaker (`key`: the downstream, for one kept per downstream)."""
        params = {"key": key} if key else None
        return await self._call(BreakerPublic, "GET", f"/v1/breakers/{job_type}/{stage}", params=params)

    async def operate_breaker(
        self, job_type: str, stage: str, action: str, reason: str, *, key: str = ""
    ) -> BreakerPublic:
        """`open` (held open until closed by hand) or `close` a circuit breaker, saying why."""
        path = f"/v1/breakers/{job_type}/{stage}/{action}"
        params = {"key": key} if key else None
        return await self._call(BreakerPublic, "POST", path, body={"reason": reason}, params=params)


class Client:
    """`AsyncClient` with blocking calls, for scripts and the `redrive` command: the same methods,
    the same models, the same errors (`iter_jobs` yields as the pages arrive)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(base_url, api_key, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._loop.run_until_complete(self._async.close())
        self._loop.close()

    def _run(self, call: Awaitable[T]) -> T:
        return self._loop.run_until_complete(call)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._async, name)
        if name == "iter_jobs":
            return lambda **filters: self._iterate(method(**filters))
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def _iterate(self, jobs: AsyncIterator[JobPublic]) -> Any:
        while True:
            try:
                yield self._run(jobs.__anext__())
            except StopAsyncIteration:
                return
