"""`ReplayCampaignWorkflow`: a bulk replay of dead letters, paced by timers, steered by updates.

It counts the pending entries its filter matches, then takes them page by page (newest first, only
those that died before it was asked for) in steps, each one activity that replays the step's
entries, the next one starting while the last one finishes (`STEPS_IN_FLIGHT`); its rate is kept
by timers of a second or more, in each of which steps start until they hold that window's worth.
With a canary it replays the first few, waits until each of their jobs has completed or died
again, and stops by itself when more died again than the canary allows. `pause`, `resume` and
`cancel` take effect between steps (the ones under way finish); `progress` answers what it has
done. At the end it deletes the runs its resets replaced (one activity for all of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from redrive.contracts import (
        CAMPAIGN_FATES,
        COUNT_CAMPAIGN_ENTRIES,
        FORGET_CAMPAIGN_RUNS,
        REPLAY_CAMPAIGN_ENTRIES,
        REPLAY_CAMPAIGN_WORKFLOW,
        SELECT_CAMPAIGN_ENTRIES,
        CampaignFates,
        CampaignInput,
        CampaignRef,
        Canary,
        EntryRef,
        ReplayedEntries,
        ReplayEntries,
        SelectEntries,
    )

PAGE = 500
"""Entries selected at a time (their ids pass through the history)."""
MAX_STEP = 250
"""Entries replayed by one step at most, however high the rate."""
MAX_STEP_BEFORE = 100
"""The same, in histories from before `PIPELINED`."""
STEPS_IN_FLIGHT = 2
"""Steps under way at once past the canary: one replaying while the last one finishes."""
OVERLAPPING_STEPS = "overlapping-steps"
"""The patch under which steps overlap (see `_take`)."""
PIPELINED = "pipelined-steps"
"""The patch under which the rate is kept per window of a second or more, steps take up to
`MAX_STEP` entries, and the next page is selected while the last steps of a page replay."""
PACE_WINDOW = 1.0
"""Seconds, at least, a pacing timer waits: Temporal fires a shorter timer after a second all the
same (measured on the dev server: 0.05 s to 0.6 s timers all fired after 1.0 s)."""
PROBLEMS_KEPT = 100
FATES_EVERY = timedelta(seconds=2)
"""How often a waiting canary looks at what became of its jobs."""
HISTORY_LIMIT = 8_000
"""Continue as new before the history grows past this many events (10,000 replays at 20/s make
about 5,000)."""
# A step's entries are each replayed once whatever happens to the worker: retrying it is safe.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
T = TypeVar("T")


@workflow.defn(name=REPLAY_CAMPAIGN_WORKFLOW)
class ReplayCampaignWorkflow:
    """One replay campaign (see the module's description)."""

    @workflow.init
    def __init__(self, request: CampaignInput) -> None:
        self._request = request
        self._progress = request.progress
        self._paused = request.progress.state == "paused"
        self._cancelled_by: str | None = None
        self._in_canary = False
        self._under_way = 0
        """Steps started and not yet counted."""
        self._handed_out = 0
        """Entries in those steps."""
        self._selected_after = request.progress.after
        """The last entry of the last page selected."""
        self._last: asyncio.Future[None] | None = None
        """The last step started (it waits for the ones before it), while pages follow each other."""
        self._window: asyncio.Future[None] | None = None
        """The pacing timer of the current window."""
        self._room = 0
        """Entries steps may still take in the current window."""

    @workflow.query(name="progress")
    def progress(self) -> CampaignInput:
        """The order and where it stands."""
        return replace(self._request, progress=self._progress)

    @workflow.update(name="pause")
    def pause(self, who: str) -> CampaignInput:
        """Replay nothing more until resumed (the steps under way finish)."""
        self._paused = True
        return self._publish()

    @pause.validator
    def _may_pause(self, who: str) -> None:
        self._refuse_if_ended()
        if self._paused:
            raise ValueError("it is paused already")

    @workflow.update(name="resume")
    def resume(self, who: str) -> CampaignInput:
        """Go on from where it was paused."""
        self._paused = False
        return self._publish()

    @resume.validator
    def _may_resume(self, who: str) -> None:
        self._refuse_if_ended()
        if not self._paused:
            raise ValueError("it is not paused")

    @workflow.update(name="cancel")
    def cancel(self, who: str) -> CampaignInput:
        """Replay nothing more and end (what was replayed stays replayed)."""
        self._cancelled_by = who
        return self._publish()

    @cancel.validator
    def _may_cancel(self, who: str) -> None:
        self._refuse_if_ended()

    def _refuse_if_ended(self) -> None:
        if self._progress.state in ("finished", "cancelled", "stopped") or self._cancelled_by is not None:
            raise ValueError(f"it has ended ({self._progress.state})")

    @workflow.run
    async def run(self, request: CampaignInput) -> CampaignInput:
        if not self._progress.counted:
            await self._count()
        while not self._over() and self._progress.taken + self._handed_out < self._progress.taking:
            # Pipelined, a page's last steps are still replaying when the next page is selected
            # (from the last entry selected, not the last one counted); histories from before
            # waited for every step of a page, when the two are the same.
            pipelined = workflow.patched(PIPELINED)
            page: list[EntryRef] = await self._step(
                SELECT_CAMPAIGN_ENTRIES,
                SelectEntries(
                    tenant_id=request.tenant_id,
                    filter=request.filter,
                    cutoff=request.cutoff,
                    after=self._selected_after,
                    limit=PAGE,
                ),
                list[EntryRef],
            )
            if not page:
                break
            self._selected_after = page[-1]
            await self._take(page, pipelined)
            if self._over():
                break
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT:
                await self._counted()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.progress())
        await self._counted()
        return await self._finish()

    async def _counted(self) -> None:
        """Until every step started has been counted."""
        if self._last is not None:
            await self._last

    async def _count(self) -> None:
        request = self._request
        matched: int = await self._step(
            COUNT_CAMPAIGN_ENTRIES,
            SelectEntries(
                tenant_id=request.tenant_id, filter=request.filter, cutoff=request.cutoff, after=None, limit=0
            ),
            int,
        )
        taking = min(matched, request.max)
        canary = _canary_size(request.canary, taking)
        self._update(
            matched=matched, taking=taking, canary_size=canary, canary_passed=canary == 0, counted=True
        )

    async def _take(self, page: list[EntryRef], pipelined: bool) -> None:
        """Replay `page` step by step at the campaign's rate, stopping for pauses and the canary;
        pipelined, return once its last step has started."""
        request = self._request
        # Past the canary, the next step starts while the last one finishes (its slowest replays,
        # its records), so the replays never stall between steps; histories from before ran one
        # step at a time.
        overlap = workflow.patched(OVERLAPPING_STEPS)
        last = self._last
        while page:
            await workflow.wait_condition(
                lambda: (
                    (not self._paused or self._cancelled_by is not None) and self._under_way < STEPS_IN_FLIGHT
                )
            )
            size = self._step_size(pipelined)
            if self._over() or size == 0:
                break
            step = page[:size]
            # The rate. Timer and activity are commanded together whatever the clock says, so a
            # replay of this history decides alike (workflow.now() was seen to differ in a replay
            # after a worker died mid-task).
            paced: asyncio.Future[None] | None = None
            if not pipelined:  # a timer for each step, however short (see `PACE_WINDOW`)
                paced = asyncio.ensure_future(self._cancelled_within(len(step) / request.rate))
            elif self._room < len(step):  # a window of a second or more, steps start until it is full
                if self._window is not None and not self._window.done():
                    await self._window
                    continue  # a pause or a cancel may have come meanwhile
                seconds = max(PACE_WINDOW, len(step) / request.rate)
                self._window = asyncio.ensure_future(self._cancelled_within(seconds))
                self._room = max(len(step), math.floor(request.rate * seconds))
            self._room -= len(step)
            page = page[len(step) :]
            # Handed out now, not when the step's coroutine first runs: the next step's size and
            # the page loop read these before it does.
            self._under_way += 1
            self._handed_out += len(step)
            if overlap and self._progress.canary_passed:
                last = asyncio.ensure_future(self._replay(step, last))
            else:
                await self._replay(step, None)
            if paced is not None:
                await paced
            if not self._progress.canary_passed and self._progress.taken >= self._progress.canary_size:
                await self._canary()
        if pipelined:
            self._last = last
        elif last is not None:
            await last  # it waited for every step before it

    async def _replay(self, step: list[EntryRef], before: asyncio.Future[None] | None) -> None:
        """Run one step, handed out by the caller, and count it once the step `before` it has been
        counted (so progress and the cursor `after` only move forward)."""
        request = self._request
        done: ReplayedEntries = await self._step(
            REPLAY_CAMPAIGN_ENTRIES,
            ReplayEntries(
                campaign_id=request.campaign_id,
                tenant_id=request.tenant_id,
                actor=request.actor,
                reason=request.reason,
                force=request.force,
                entry_ids=tuple(entry.id for entry in step),
            ),
            ReplayedEntries,
            heartbeat=True,
        )
        if before is not None:
            await before
        self._under_way -= 1
        self._handed_out -= len(step)
        self._count_step(step, done)

    def _step_size(self, pipelined: bool) -> int:
        progress = self._progress
        left = progress.taking - progress.taken - self._handed_out
        size = min(MAX_STEP if pipelined else MAX_STEP_BEFORE, max(1, round(self._request.rate)), left)
        if not progress.canary_passed:
            size = min(size, progress.canary_size - progress.taken)
        elif pipelined and self._under_way == 0:
            # A step that starts alone takes half as many, so the one started beside it ends
            # halfway through the next: two steps ending together would leave none replaying
            # while the workflow starts the next two.
            size = min(size, max(1, MAX_STEP // 2))
        return max(0, size)

    def _count_step(self, step: list[EntryRef], done: ReplayedEntries) -> None:
        progress = self._progress
        self._update(
            taken=progress.taken + len(step),
            replayed=progress.replayed + done.replayed,
            resubmitted=progress.resubmitted + done.resubmitted,
            skipped=progress.skipped + done.skipped,
            failed=progress.failed + done.failed,
            problems=(progress.problems + done.problems)[-PROBLEMS_KEPT:],
            after=step[-1],
        )

    async def _canary(self) -> None:
        """Wait until every canary job has completed or died again (or the canary's time is up),
        then go on, or stop and say why."""
        canary = self._request.canary
        assert canary is not None  # a canary size above 0 comes from one
        self._in_canary = True
        self._publish()
        deadline = asyncio.ensure_future(workflow.sleep(canary.settle_timeout))  # a timer, not a clock
        while True:
            fates = await self._fates()
            settled = fates.completed + fates.died_again >= fates.replayed
            if settled or deadline.done() or self._cancelled_by is not None:
                break
            await self._cancelled_within(FATES_EVERY.total_seconds())
        deadline.cancel()
        self._in_canary = False
        if self._cancelled_by is not None:
            return
        if fates.replayed and fates.died_again * 100 > canary.max_died_again_percent * fates.replayed:
            self._update(
                state="stopped",
                stop_reason=(
                    f"canary: {fates.died_again} of {fates.replayed} replayed jobs died again (more than "
                    f"{canary.max_died_again_percent:g}% allowed); find the cause before replaying the rest"
                ),
            )
        elif not settled:
            unsettled = fates.replayed - fates.completed - fates.died_again
            self._update(
                state="stopped",
                stop_reason=(
                    f"canary: {unsettled} of {fates.replayed} replayed jobs had neither completed nor died "
                    f"again after {canary.settle_timeout}"
                ),
            )
        else:
            self._update(canary_passed=True)

    async def _fates(self) -> CampaignFates:
        fates: CampaignFates = await self._step(CAMPAIGN_FATES, self._ref(), CampaignFates)
        self._update(completed=fates.completed, died_again=fates.died_again)
        return fates

    async def _finish(self) -> CampaignInput:
        await self._fates()
        if self._progress.replayed:
            await self._step(FORGET_CAMPAIGN_RUNS, self._ref(), int, heartbeat=True)
        if self._cancelled_by is not None:
            self._update(state="cancelled", stop_reason=f"cancelled by {self._cancelled_by}")
        elif self._progress.state != "stopped":
            self._update(state="finished")
        return self.progress()

    async def _cancelled_within(self, seconds: float) -> None:
        """Wait `seconds` (a timer), or less if a cancel comes."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._cancelled_by is not None, timeout=seconds)

    def _ref(self) -> CampaignRef:
        return CampaignRef(campaign_id=self._request.campaign_id, tenant_id=self._request.tenant_id)

    def _over(self) -> bool:
        return self._cancelled_by is not None or self._progress.state == "stopped"

    def _update(self, **changes: object) -> None:
        self._progress = replace(self._progress, **changes)  # type: ignore[arg-type]
        self._publish()

    def _publish(self) -> CampaignInput:
        """Set the state the query and the UI show from the flags, and return the whole."""
        progress = self._progress
        if progress.state not in ("finished", "cancelled", "stopped"):
            state = "paused" if self._paused else "canary" if self._in_canary else "running"
            if state != progress.state:
                self._progress = progress = replace(progress, state=state)
        workflow.set_current_details(
            f"{progress.state}: {progress.taken} of {progress.taking} taken; {progress.replayed} replayed, "
            f"{progress.resubmitted} resubmitted, {progress.skipped} skipped, {progress.failed} failed; "
            f"{progress.completed} completed since, {progress.died_again} died again"
        )
        return self.progress()

    @staticmethod
    async def _step(activity: str, argument: object, result: type[T], *, heartbeat: bool = False) -> T:
        done: T = await workflow.execute_activity(
            activity,
            argument,
            result_type=result,
            start_to_close_timeout=timedelta(hours=1) if heartbeat else timedelta(minutes=1),
            heartbeat_timeout=timedelta(seconds=15) if heartbeat else None,
            retry_policy=STEP_RETRY,
        )
        return done


def _canary_size(canary: Canary | None, taking: int) -> int:
    if canary is None:
        return 0
    if canary.count is not None:
        return min(canary.count, taking)
    return min(taking, math.ceil(taking * (canary.percent or 0) / 100))
