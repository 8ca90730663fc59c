"""Supervision: health (websocket, REST, engine heartbeat, background tasks), the dead man's switch, the
watchdog that cancels everything when health is lost, and the supervised background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hlmm.venue.base import VenueStatus
from hlmm.venue.hyperliquid.errors import (
    ActionError,
    HyperliquidError,
)
from hlmm.venue.hyperliquid.state import (
    DEAD_MAN_MARGIN_S,
    DEGRADED_WINDOW_S,
    SCHEDULE_CANCEL_MIN_S,
    SCHEDULE_CANCEL_REFUSED,
    TASK_BACKOFF,
    AdapterState,
)
from hlmm.venue.supervise import TaskState, supervised


class Supervision(AdapterState):
    def heartbeat(self, ts: float) -> None:
        """Called by the runner's event loop: lets the watchdog detect a stalled engine."""
        self._heartbeat_ts = ts

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def dead_man_armed(self) -> bool:
        return self.dead_man_until_ms is not None and self.dead_man_until_ms > self._clock() * 1000

    def dead_man_target_ms(self, now: float) -> int:
        """The scheduleCancel time sent at ``now``: ``dead_man_s`` ahead, never under the exchange minimum + margin."""
        return int((now + max(self.dead_man_s, SCHEDULE_CANCEL_MIN_S + DEAD_MAN_MARGIN_S)) * 1000)

    async def refresh_dead_man(self) -> None:
        """Arm/extend scheduleCancel while healthy. Any refusal or lost reply leaves it *not armed* (the watchdog
        covers); the volume refusal is final for this session, others are retried at the next refresh."""
        if self.dead_man_supported is False or not self._healthy:
            return
        t_ms = self.dead_man_target_ms(self._clock())
        try:
            self.budget.spend(1)
            self._dead_man_sent = True
            await self.exchange.schedule_cancel(t_ms)
        except ActionError as e:
            self.dead_man_until_ms = None
            self.dead_man_detail = e.message
            if SCHEDULE_CANCEL_REFUSED in e.message.lower():
                self.dead_man_supported = False
                self.log.warning("dead_man_refused", detail=e.message, fallback="internal watchdog cancels all")
            else:
                self.log.warning("dead_man_not_armed", detail=e.message, fallback="internal watchdog cancels all")
            return
        except HyperliquidError as e:
            self.dead_man_until_ms = None  # unknown outcome: do not count on it
            self.dead_man_detail = f"no reply: {e}"
            self.log.warning("dead_man_not_armed", detail=str(e), fallback="internal watchdog cancels all")
            self._rest_failed("scheduleCancel", e)
            return
        self._rest_ok()
        self.dead_man_supported = True
        self.dead_man_until_ms = t_ms
        self.dead_man_detail = ""
        self.stats["dead_man_refreshes"] += 1

    async def _dead_man_loop(self) -> None:
        while True:
            await asyncio.sleep(self.dead_man_refresh_s)
            if self.dead_man_supported is not False:
                await self.refresh_dead_man()
            self._task_ok("dead_man")

    def on_ws_status(self, ts: float, connected: bool, detail: str) -> None:
        """WsClient status callback: a disconnect makes us unhealthy; a reconnect triggers a resync."""
        was = self._ws_up
        self._ws_up = connected
        if not self._started or self._closing:
            return  # before start the runner's own snapshot/sync follows; after close nothing is resting
        if connected and not was:
            self._request_resync(f"ws {detail}")
        else:
            self._update_health(detail)

    def _rest_ok(self) -> None:
        if self._rest_failures:
            self._rest_failures = 0
            self._update_health("rest recovered")

    def _rest_failed(self, what: str, e: Exception) -> None:
        self._rest_failures += 1
        self.log.warning("rest_failed", what=what, error=str(e), consecutive=self._rest_failures)
        self._update_health(f"{what}: {e}")

    def _compute_health(self) -> bool:
        if not self._ws_up or self._rest_failures >= 3 or self._stuck_tasks():
            return False
        hb = self._heartbeat_ts
        return not (hb is not None and self._clock() - hb > self.stall_s)

    def _stuck_tasks(self) -> list[str]:
        """Supervised tasks failing for longer than ``task_fail_bound_s``: while any is, the venue is unhealthy
        (the engine stops quoting; the watchdog / dead man's switch cancels everything) until it recovers."""
        now = self._clock()
        return [n for n, st in self.task_states.items() if st.failing and st.failing_for(now) > self.task_fail_bound_s]

    @property
    def health(self) -> str:
        """``unhealthy`` (no quoting), ``degraded`` (bad venue messages dropped or a background task failed in the
        last ``DEGRADED_WINDOW_S``, or a task is still failing) or ``ok``."""
        if not self._healthy:
            return "unhealthy"
        now = self._clock()
        if self.bad_input.recent(DEGRADED_WINDOW_S, now) or any(
                st.failing or (st.last_fail_ts is not None and now - st.last_fail_ts <= DEGRADED_WINDOW_S)
                for st in self.task_states.values()):
            return "degraded"
        return "ok"

    def _update_health(self, detail: str) -> None:
        h = self._compute_health()
        if h == self._healthy or self._resyncing:
            return
        ts = self._clock()
        if not h:
            self._healthy = False
            self._unhealthy_since = ts
            self._watchdog_fired = False
            self.log.warning("venue_unhealthy", detail=detail, dead_man_armed=self.dead_man_armed)
            self._emit(VenueStatus(ts, False, detail))
        else:
            self._request_resync(detail)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.watchdog_grace_s / 2))
            try:
                await self.watchdog_check()
            except Exception as e:  # the watchdog must outlive any single failure
                self._watchdog_fired = False
                self.log.error("watchdog_failed", error=repr(e))
            self._task_ok("watchdog")

    async def watchdog_check(self) -> None:
        """One watchdog step: cancel everything if health has been lost for the grace period with no armed
        dead man's switch (refused for low-volume accounts) to do it for us."""
        self._update_health("watchdog")
        if self._healthy or self._watchdog_fired or self._unhealthy_since is None:
            return
        if self._clock() - self._unhealthy_since < self.watchdog_grace_s or self.dead_man_armed:
            return
        self.log.error("watchdog_cancel_all", unhealthy_s=round(self._clock() - self._unhealthy_since, 2),
                       dead_man=self.dead_man_detail or "not armed")
        self.stats["watchdog_cancel_all"] += 1
        self._watchdog_fired = True  # set before awaiting: a concurrent check must not fire twice
        ok = True
        for c in self.coins:
            try:
                await self.cancel_all(c)
            except HyperliquidError as e:
                ok = False
                self.log.error("watchdog_cancel_all_failed", coin=c, error=str(e))
        self._watchdog_fired = ok

    def _task_state(self, name: str) -> TaskState:
        st = self.task_states.get(name)
        if st is None:
            st = self.task_states[name] = TaskState(name, self._clock, self._task_recovered)
        return st

    def _task_ok(self, name: str) -> None:
        st = self.task_states.get(name)
        if st is not None:
            st.ok()

    def _task_failed(self, st: TaskState, e: BaseException) -> None:
        self.stats["task_failures"] += 1
        self._update_health(f"task {st.name} failing: {st.last_error}")

    def _task_recovered(self, st: TaskState) -> None:
        self.log.info("task_recovered", task=st.name)
        self._update_health(f"task {st.name} recovered")

    def _supervise(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Coroutine[Any, Any, Any]:
        """``fn`` run under :func:`supervised`: failures logged, counted, health degraded (unhealthy once the task
        has been failing for ``task_fail_bound_s``), restarted with backoff."""
        return supervised(name, fn, self._task_failed, TASK_BACKOFF, state=self._task_state(name), log=self.log)

    def _spawn(self, fn: Callable[[], Awaitable[Any]], name: str = "task") -> None:
        """A background one-shot (resync, resolver), supervised: retried with backoff until it completes."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        t = loop.create_task(self._supervise(name, fn), name=f"hl {name}")
        self._tasks.append(t)
        t.add_done_callback(lambda x: self._tasks.remove(x) if x in self._tasks else None)
