"""Supervision of long-lived asyncio tasks: a task that raises is logged, reported and restarted with backoff.

A background loop that dies silently is worse than a crash: the process keeps running, looks healthy, and the
thing the loop did (reconcile orders, refresh the dead man's switch, watch health) silently stops. So every
long-lived task runs under :func:`supervised`:

- an exception (anything but cancellation) is logged with the task's name, passed to ``on_fail`` (the owner
  degrades its health), and the task is restarted after an exponential backoff;
- a task that made progress again is *recovered*: it either calls :meth:`TaskState.ok` itself (periodic loops,
  after each successful step) or has run ``stable_s`` seconds since its last restart without failing;
  ``on_recover`` is then called;
- :meth:`TaskState.failing_for` says how long a task has been failing, so the owner can go to no-quote/cancel-all
  when a task does not recover within its bound (see ``HyperliquidVenue``);
- a coroutine that returns normally is finished (one-shot tasks: retried until they succeed).

Cancellation always passes through: closing the owner cancels its supervised tasks.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``base_s * factor**(n-1)`` after the n-th consecutive failure, capped at ``max_s``."""

    base_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.max_s, self.base_s * self.factor ** min(failures - 1, 60))


class _NullLog:
    def _noop(self, event: str, **kw: Any) -> None:
        return None

    debug = info = warning = error = _noop


class TaskState:
    """What the owner knows about one supervised task (read-only for the owner, except :meth:`ok`)."""

    __slots__ = ("_clock", "_on_recover", "failing_since", "failures", "last_error", "last_fail_ts", "name",
                 "restarts", "total_failures")

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic,
                 on_recover: Callable[[TaskState], None] | None = None) -> None:
        self.name = name
        self.failures = 0  # consecutive failures (0: working)
        self.total_failures = 0
        self.restarts = 0
        self.failing_since: float | None = None  # clock() of the first failure of the current run of failures
        self.last_error = ""
        self.last_fail_ts: float | None = None
        self._clock = clock
        self._on_recover = on_recover

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failing_for(self, now: float | None = None) -> float:
        """Seconds since the task started failing (0 when it is working)."""
        if self.failing_since is None:
            return 0.0
        return max(0.0, (self._clock() if now is None else now) - self.failing_since)

    def fail(self, e: BaseException) -> None:
        self.failures += 1
        self.total_failures += 1
        self.last_error = f"{type(e).__name__}: {e}"[:300]
        self.last_fail_ts = self._clock()
        if self.failing_since is None:
            self.failing_since = self.last_fail_ts

    def ok(self) -> None:
        """The task made progress: a run of failures (if any) is over."""
        if self.failures == 0:
            return
        self.failures = 0
        self.failing_since = None
        if self._on_recover is not None:
            self._on_recover(self)


OnFail = Callable[[TaskState, BaseException], None]


async def supervised(
    name: str,
    coro_fn: Callable[[], Awaitable[Any]],
    on_fail: OnFail | None = None,
    backoff: Backoff = Backoff(),  # frozen: one shared immutable default is fine
    *,
    state: TaskState | None = None,
    stable_s: float | None = 5.0,
    log: Any = None,
    max_restarts: int | None = None,
) -> Any:
    """Run ``coro_fn()``; whenever it raises, log, call ``on_fail(state, error)``, wait ``backoff`` and run it again.
    Returns what ``coro_fn`` returns once it returns normally. ``stable_s``: a restarted run that has not failed for
    this long counts as recovered (None: only :meth:`TaskState.ok` recovers). ``max_restarts``: give up (re-raise the
    last error) after that many consecutive failures; None (default) never gives up. A callback that raises is
    logged and ignored: supervision must never itself be the thing that dies."""
    log = log if log is not None else _NullLog()
    st = state if state is not None else TaskState(name)
    loop = asyncio.get_running_loop()
    while True:
        timer: asyncio.TimerHandle | None = None
        if st.failing and stable_s is not None:
            failures_at_start = st.total_failures

            def stable(n: int = failures_at_start) -> None:
                if st.total_failures == n:  # no new failure since this restart
                    _guard(log, name, "on_recover", st.ok)

            timer = loop.call_later(stable_s, stable)
        try:
            return await coro_fn()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            st.fail(e)
            delay = backoff.delay(st.failures)
            log.error("task_failed", task=name, error=st.last_error, failures=st.failures,
                      total_failures=st.total_failures, retry_in_s=round(delay, 3))
            if on_fail is not None:
                _guard(log, name, "on_fail", functools.partial(on_fail, st, e))
            if max_restarts is not None and st.failures > max_restarts:
                raise
        finally:
            if timer is not None:
                timer.cancel()
        await asyncio.sleep(delay)
        st.restarts += 1


def _guard(log: Any, name: str, what: str, fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as e:
        log.error("supervisor_callback_failed", task=name, callback=what, error=repr(e))
