"""Circuit breakers' side effects: the guard every attempt of a stage with a breaker goes through,
and the steps of the breaker's own workflow (`workflows/breaker.py`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from redrive.activities.alerts.breakers import BreakerAlert, announce_breaker
from redrive.activities.deps import ActivityDeps
from redrive.breaker_policy import Breaker, BreakerRef, downstream
from redrive.contracts import (
    CLOSE_BREAKER,
    HALF_OPEN_BREAKER,
    HOLD_AT_BREAKER,
    OPEN_BREAKER,
    PROBE_OUTCOME,
    RELEASE_HELD_JOBS,
    BreakerChange,
    BreakerOrder,
    HoldInput,
    ProbeOutcome,
    Released,
    ReleaseHeld,
    StageInput,
)
from redrive.jobtypes import JobTypeRegistry
from redrive.operations.breakers import (
    declared,
    extend_attempts,
    pause_stage,
    release_waiting,
    resume_stage,
    send_order,
)
from redrive.operations.errors import NotFound
from redrive.store.breakers import CLOSED, HALF_OPEN, PAUSED, WAITING, BreakerStore, retrying_at

log = logging.getLogger(__name__)

AT_ONCE = 16
"""Temporal calls in flight while a breaker pauses or releases many jobs."""


def ref_of(stage_input: StageInput) -> BreakerRef:
    """The breaker an attempt of `stage_input` goes through (its stage must declare one)."""
    assert stage_input.stage.breaker is not None
    key = downstream(stage_input.stage.breaker, stage_input.payload)
    return BreakerRef(stage_input.job_type, stage_input.stage.name, key)


@dataclass(frozen=True)
class Admission:
    """What the breaker said when an attempt started."""

    ref: BreakerRef
    breaker: Breaker
    state: str
    probe: bool = False

    @property
    def held(self) -> bool:
        """The attempt must not call the handler: the breaker is open, or half-open with another
        job as its probe."""
        return self.state != CLOSED and not self.probe


class BreakerGuard:
    """Asks the breaker before an attempt, counts the attempt after it, trips the breaker when its
    window crosses the threshold, and pauses an attempt the breaker holds."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    async def admit(self, stage_input: StageInput) -> Admission:
        """The breaker's word on an attempt about to start (closed when the database cannot say:
        the breaker must never be why a job cannot run)."""
        ref = ref_of(stage_input)
        breaker = stage_input.stage.breaker
        assert breaker is not None
        try:
            async with self.deps.sessions() as session, session.begin():
                store = BreakerStore(session)
                row = await store.state(ref)
                if row is None or row.state == CLOSED:
                    return Admission(ref, breaker, CLOSED)
                probe = row.state == HALF_OPEN and await store.claim_probe(ref, stage_input.job_id)
                return Admission(ref, breaker, row.state, probe=probe)
        except Exception:
            log.warning("could not read breaker %s; the attempt goes ahead", ref, exc_info=True)
            return Admission(ref, breaker, CLOSED)

    async def settle(self, stage_input: StageInput, admission: Admission, failed: bool, why: str) -> bool:
        """Count the attempt (`failed`: it failed in a way worth retrying); tell a probe's outcome to
        the breaker, trip a closed breaker whose window crossed its threshold. Whether the breaker
        holds the job now (it is, or is about to be, open)."""
        ref, now = admission.ref, self.deps.now()
        try:
            async with self.deps.sessions() as session, session.begin():
                store = BreakerStore(session)
                await store.record_attempt(ref, stage_input.job_id, failed=failed, at=now)
                row = await store.state(ref)  # as it is now: it may have opened while this attempt ran
                state = row.state if row is not None else CLOSED
                figures = None
                if failed and state == CLOSED:
                    window_start = now - admission.breaker.window
                    await store.forget_attempts(ref, window_start)
                    since = max(window_start, row.since) if row is not None else window_start
                    figures = await store.figures(ref, since)
        except Exception:
            log.warning("could not count an attempt of breaker %s", ref, exc_info=True)
            return False
        client, settings = self.deps.client(), self.deps.operations().settings
        if admission.probe:
            outcome = ProbeOutcome(job_id=stage_input.job_id, ok=not failed, message=why)
            await _signal(client, ref.workflow_id(settings.task_queue), PROBE_OUTCOME, outcome)
        if not failed:
            return False
        if state != CLOSED or admission.state != CLOSED:
            return True
        if figures is None or not admission.breaker.crossed(figures.attempts, figures.failures):
            return False
        reason = (
            f"{figures.failures} of {figures.attempts} attempts failed within "
            f"{admission.breaker.window}; last: {why}"
        )
        await send_order(client, settings, ref, stage_input.stage, BreakerOrder(action="trip", reason=reason))
        return True

    async def hold(self, stage_input: StageInput, admission: Admission) -> None:
        """Record the job as held by the breaker, then pause this attempt's stage in Temporal (the
        pause takes hold once the attempt ends, so its retry waits for the breaker). Recorded first:
        a held job the breaker does not know of would never be released."""
        async with self.deps.sessions() as session, session.begin():
            await BreakerStore(session).hold(admission.ref, stage_input.job_id, PAUSED, self.deps.now())
        namespace = self.deps.operations().settings.temporal_namespace
        reason = f"circuit breaker {admission.ref} is open"
        client, job_id = self.deps.client(), stage_input.job_id
        await pause_stage(client, namespace, job_id, stage_input.stage.name, reason)

    async def give_back(self, stage_input: StageInput, allowed: int) -> bool:
        """Allow the stage one attempt more than `allowed` (this one, which the breaker held without
        calling the handler, is not the job's to spend); False when that could not be done."""
        namespace = self.deps.operations().settings.temporal_namespace
        try:
            return await extend_attempts(
                self.deps.client(), namespace, stage_input.job_id, stage_input.stage.name, allowed + 1
            )
        except Exception:
            log.warning("could not give back a held attempt of job %s", stage_input.job_id, exc_info=True)
            return False


async def _signal(client: Client, workflow_id: str, signal: str, argument: object) -> None:
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, argument)
    except RPCError as error:  # its workflow has ended: the next trip starts a new one
        log.warning("breaker %s did not take %s: %s", workflow_id, signal, error)


class BreakerActivities:
    """The breaker workflow's steps: each writes the breaker's state, then acts on the jobs."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    def _ref(self, change: BreakerChange | ReleaseHeld | HoldInput) -> BreakerRef:
        return BreakerRef(change.job_type, change.stage, change.key)

    async def _set(self, change: BreakerChange, probe_job_id: str | None = None) -> None:
        async with self.deps.sessions() as session, session.begin():
            await BreakerStore(session).set_state(
                self._ref(change),
                change.state,
                at=self.deps.now(),
                reason=change.reason,
                actor=change.actor,
                manual=change.manual,
                cool_down=change.cool_down,
                probe_job_id=probe_job_id,
            )

    @activity.defn(name=OPEN_BREAKER)
    async def open_breaker(self, change: BreakerChange) -> int:
        """Open the breaker and pause the stage of every job waiting for its next retry there; how
        many were paused. Attempts under way finish: one that fails then pauses itself."""
        await self._set(change)
        ref = self._ref(change)
        await self._announce(change)
        services = self.deps.operations()
        breaker = _declared(services.registry, ref)
        async with self.deps.sessions() as session:
            # Not `running`: pausing a running attempt cancels it (the SDK learns of the pause from
            # its heartbeat); an attempt that fails pauses itself (the guard).
            rows = (await session.exec(retrying_at(ref.job_type, ref.stage))).all()
        jobs = [
            job_id
            for job_id, payload in rows
            if breaker is None or downstream(breaker, payload or {}) == ref.key
        ]
        reason = f"circuit breaker {ref} is open: {change.reason}"
        namespace = services.settings.temporal_namespace

        async def pause(job_id: str) -> bool:  # recorded first, as in `BreakerGuard.hold`
            async with self.deps.sessions() as session, session.begin():
                await BreakerStore(session).hold(ref, job_id, PAUSED, self.deps.now())
            if await pause_stage(self.deps.client(), namespace, job_id, ref.stage, reason):
                return True
            async with self.deps.sessions() as session, session.begin():  # its stage was not pending
                await BreakerStore(session).release(job_id)
            return False

        paused = sum(await _paced(pause, jobs, activity.heartbeat))
        log.warning("breaker %s opened (%s): %d waiting attempt(s) paused", ref, change.reason, paused)
        return paused

    @activity.defn(name=HALF_OPEN_BREAKER)
    async def half_open_breaker(self, change: BreakerChange) -> None:
        """Half-open the breaker: the next attempt (a held job the workflow releases, or the first to
        start) is its probe."""
        await self._set(change)
        log.info("breaker %s half-open: the next attempt is its probe", self._ref(change))

    @activity.defn(name=CLOSE_BREAKER)
    async def close_breaker(self, change: BreakerChange) -> None:
        """Close the breaker; its workflow then releases the jobs it holds, paced."""
        await self._set(change)
        await self._announce(change)
        log.warning("breaker %s closed (%s)", self._ref(change), change.reason)

    @activity.defn(name=RELEASE_HELD_JOBS)
    async def release_held_jobs(self, request: ReleaseHeld) -> Released:
        """Let up to `limit` held jobs go on, longest held first: a paused stage is unpaused, a
        waiting workflow signalled. With `probe`, the one released is named the breaker's probe."""
        ref = self._ref(request)
        client, namespace = self.deps.client(), self.deps.operations().settings.temporal_namespace
        async with self.deps.sessions() as session:
            held = await BreakerStore(session).waiters(ref, request.limit)

        async def release(job_id: str, how: str) -> bool:
            if request.probe:
                async with self.deps.sessions() as session, session.begin():
                    await BreakerStore(session).set_probe(ref, job_id)
            if how == PAUSED:
                went = await resume_stage(client, namespace, job_id, ref.stage)
            else:
                went = await release_waiting(client, job_id)
            async with self.deps.sessions() as session, session.begin():
                await BreakerStore(session).release(job_id)
            return went

        probe: str | None = None
        released = 0
        if request.probe:  # one at a time until one is still there to probe
            for waiter in held:
                if await release(waiter.job_id, waiter.how):
                    probe, released = waiter.job_id, 1
                    break
            if probe is None:
                async with self.deps.sessions() as session, session.begin():
                    await BreakerStore(session).set_probe(ref, None)
        else:
            pairs = [(waiter.job_id, waiter.how) for waiter in held]
            released = sum(await _paced(lambda pair: release(*pair), pairs, activity.heartbeat))
        async with self.deps.sessions() as session:
            left = await BreakerStore(session).waiting(ref)
        return Released(released=released, left=left, probe_job_id=probe)

    @activity.defn(name=HOLD_AT_BREAKER)
    async def hold_at_breaker(self, request: HoldInput) -> bool:
        """Hold a job whose stage's last attempt failed while its breaker was open (its workflow then
        waits for the release signal); False, and nothing held, once the breaker is closed."""
        ref = self._ref(request)
        async with self.deps.sessions() as session, session.begin():
            store = BreakerStore(session)
            await store.hold(ref, request.job_id, WAITING, self.deps.now())
            row = await store.state(ref)
            if row is None or row.state == CLOSED:
                await store.release(request.job_id)
                return False
        return True

    async def _announce(self, change: BreakerChange) -> None:
        alert = BreakerAlert(
            job_type=change.job_type,
            stage=change.stage,
            key=change.key,
            state=change.state,
            reason=change.reason,
            actor=change.actor,
            at=self.deps.now(),
        )
        try:
            await announce_breaker(self.deps.http, alert, self.deps.alerts)
        except Exception:  # an unreachable mail server must not keep the breaker from acting
            log.warning("breaker %s: alert not sent", self._ref(change), exc_info=True)


def _declared(registry: JobTypeRegistry, ref: BreakerRef) -> Breaker | None:
    """The breaker `ref`'s stage declares now (None once the declaration is gone)."""
    try:
        return declared(registry, ref.job_type, ref.stage)[1]
    except NotFound:
        return None


T = TypeVar("T")


async def _paced(
    act: Callable[[T], Awaitable[bool]], items: list[T], beat: Callable[..., None]
) -> list[bool]:
    """`act` on every item, `AT_ONCE` at a time, heartbeating between batches."""
    done: list[bool] = []
    for start in range(0, len(items), AT_ONCE):
        done += await asyncio.gather(*(act(item) for item in items[start : start + AT_ONCE]))
        beat(len(done))
    return done


__all__ = ["Admission", "BreakerActivities", "BreakerGuard"]
