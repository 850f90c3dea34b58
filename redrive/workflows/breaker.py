"""`CircuitBreaker`: the one actor of one breaker (`BreakerRef.workflow_id`).

    closed ──trip/open──▶ open ──cool-down──▶ half_open ──probe ok──▶ closed (release held jobs, paced)
                            ▲                    │
                            └──probe failed──────┘  (cool-down doubled, up to max_cool_down)

Orders come by signal (`operate`): `trip` from a stage whose window crossed the threshold, `open`
and `close` from an operator. An operator's `open` holds the breaker open, without probes, until an
operator closes it. The run ends once the breaker is closed and every held job is released; the next
trip starts a new run, so a history covers one outage."""

import dataclasses
import math
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from redrive.contracts import (
        BREAKER_WORKFLOW,
        CLOSE_BREAKER,
        HALF_OPEN_BREAKER,
        OPEN_BREAKER,
        OPERATE_BREAKER,
        PROBE_OUTCOME,
        RELEASE_HELD_JOBS,
        BreakerCarried,
        BreakerChange,
        BreakerInput,
        BreakerOrder,
        ProbeOutcome,
        Released,
        ReleaseHeld,
    )
    from redrive.retry_policy import BOOKKEEPING_RETRY, BOOKKEEPING_TIMEOUT

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STEP_TIMEOUT = timedelta(minutes=10)
STEP_HEARTBEAT = timedelta(minutes=1)
MAX_HISTORY = 2000
"""Events after which the workflow continues as new (an open breaker cycles every cool-down)."""


@workflow.defn(name=BREAKER_WORKFLOW)
class BreakerWorkflow:
    """Opens, probes and closes one breaker, and pauses and releases the jobs it holds."""

    def __init__(self) -> None:
        self._orders: list[BreakerOrder] = []
        self._probe: ProbeOutcome | None = None
        self._state = CLOSED
        self._manual = False

    @workflow.signal(name=OPERATE_BREAKER)
    def operate(self, order: BreakerOrder) -> None:
        """A trip, or an operator's open or close."""
        self._orders.append(order)

    @workflow.signal(name=PROBE_OUTCOME)
    def probe_outcome(self, outcome: ProbeOutcome) -> None:
        """How the half-open breaker's probe ended."""
        self._probe = outcome

    @workflow.query
    def state(self) -> str:
        """closed, open or half_open, as this workflow last set it."""
        return self._state

    @workflow.run
    async def run(self, start: BreakerInput) -> str:
        self._start = start
        cool_down = start.breaker.cool_down
        if start.carried is not None:
            self._state, cool_down = start.carried.state, start.carried.cool_down
            self._manual, self._orders = start.carried.manual, list(start.carried.orders)
        while True:
            if workflow.info().is_continue_as_new_suggested() or (
                workflow.info().get_current_history_length() > MAX_HISTORY
            ):  # a long outage: go on in a fresh history, state and pending orders carried over
                carried = BreakerCarried(
                    state=self._state, cool_down=cool_down, manual=self._manual, orders=tuple(self._orders)
                )
                workflow.continue_as_new(dataclasses.replace(start, carried=carried))
            if self._state == CLOSED:
                if not self._orders:
                    if await self._release_all() and not self._orders:
                        return "closed; every held job released"
                    continue
                first = self._orders.pop(0)
                if first.action == "close":  # closed already: release whatever it still holds
                    await self._change(CLOSED, first)
                    continue
                cool_down = start.breaker.cool_down
                await self._open(first, cool_down)
            elif self._state == OPEN:
                order = await self._next_order(None if self._manual else cool_down)
                if order is None:
                    self._probe = None  # before the probe is released: its outcome may come at once
                    await self._change(HALF_OPEN, BreakerOrder(action="probe", reason="cool-down over"))
                    await self._start_probe()
                else:
                    cool_down = await self._obey(order, cool_down)
            else:
                got = await self._wait(self._probe_or_order, start.probe_timeout)
                if self._orders:
                    cool_down = await self._obey(self._orders.pop(0), cool_down)
                elif got and self._probe is not None and self._probe.ok:
                    await self._change(CLOSED, BreakerOrder(action="close", reason="probe succeeded"))
                else:
                    said = self._probe.message if self._probe is not None else "no outcome in time"
                    cool_down = start.breaker.next_cool_down(cool_down)
                    await self._open(BreakerOrder(action="trip", reason=f"probe failed: {said}"), cool_down)

    def _probe_or_order(self) -> bool:
        return self._probe is not None or bool(self._orders)

    async def _obey(self, order: BreakerOrder, cool_down: timedelta) -> timedelta:
        """An order while open or half-open: close, or (an operator's) open; a trip changes nothing."""
        if order.action == "close":
            await self._change(CLOSED, order)
        elif order.action == "open":
            await self._open(order, cool_down)
        return cool_down

    async def _next_order(self, within: timedelta | None) -> BreakerOrder | None:
        """The next close or open order (trips are dropped), or None once `within` passed."""
        while True:
            if not await self._wait(lambda: bool(self._orders), within):
                return None
            order = self._orders.pop(0)
            if order.action != "trip":
                return order

    async def _wait(self, ready: Callable[[], bool], within: timedelta | None) -> bool:
        try:
            await workflow.wait_condition(ready, timeout=within)
        except TimeoutError:
            return False
        return True

    async def _open(self, order: BreakerOrder, cool_down: timedelta) -> None:
        self._manual = order.action == "open"
        self._state = OPEN
        await workflow.execute_activity(
            OPEN_BREAKER,
            self._changed(OPEN, order, cool_down),
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=STEP_HEARTBEAT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _change(self, state: str, order: BreakerOrder) -> None:
        self._state = state
        if state == CLOSED:
            self._manual = False
        await workflow.execute_activity(
            CLOSE_BREAKER if state == CLOSED else HALF_OPEN_BREAKER,
            self._changed(state, order, timedelta(0)),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    def _changed(self, state: str, order: BreakerOrder, cool_down: timedelta) -> BreakerChange:
        workflow.set_current_details(f"{state}: {order.reason}")
        return BreakerChange(
            job_type=self._start.job_type,
            stage=self._start.stage,
            key=self._start.key,
            state=state,
            reason=order.reason,
            actor=order.actor,
            manual=self._manual,
            cool_down=cool_down,
        )

    async def _release(self, limit: int, probe: bool = False) -> Released:
        released: Released = await workflow.execute_activity(
            RELEASE_HELD_JOBS,
            ReleaseHeld(
                job_type=self._start.job_type,
                stage=self._start.stage,
                key=self._start.key,
                limit=limit,
                probe=probe,
            ),
            result_type=Released,
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=STEP_HEARTBEAT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        return released

    async def _start_probe(self) -> None:
        """Release the longest-held job as the probe (with none held, the next attempt to start
        takes the probe by itself)."""
        await self._release(limit=100, probe=True)

    async def _release_all(self) -> bool:
        """Release the held jobs at the declared pace; False when an order came in between."""
        rate = self._start.breaker.resume_rate
        per_tick = max(1, math.floor(rate))
        tick = timedelta(seconds=per_tick / rate)
        while True:
            released = await self._release(limit=per_tick)
            if released.left == 0:
                return True
            if await self._wait(lambda: bool(self._orders), tick):
                return False
