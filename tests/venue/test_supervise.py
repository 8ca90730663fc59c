"""hlmm.venue.supervise: failures logged and reported, restarts with backoff, recovery, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from hlmm.venue.supervise import Backoff, TaskState, supervised

FAST = Backoff(base_s=0.001, max_s=0.004)


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def error(self, event: str, **kw: object) -> None:
        self.events.append((event, kw))

    debug = info = warning = error


def test_backoff_grows_exponentially_and_is_capped() -> None:
    b = Backoff(base_s=0.5, max_s=4.0)
    assert [b.delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert b.delay(10_000) == 4.0


async def test_a_failing_task_is_restarted_and_its_result_returned() -> None:
    runs: list[int] = []
    fails: list[tuple[str, int, str]] = []

    async def flaky() -> str:
        runs.append(1)
        if len(runs) < 3:
            raise ValueError(f"boom {len(runs)}")
        return "done"

    log = Log()
    st = TaskState("flaky")
    out = await supervised("flaky", flaky, lambda s, e: fails.append((s.name, s.failures, str(e))), FAST,
                           state=st, log=log)
    assert out == "done" and len(runs) == 3
    assert fails == [("flaky", 1, "boom 1"), ("flaky", 2, "boom 2")]
    assert st.total_failures == 2 and st.restarts == 2
    assert [e for e, _ in log.events] == ["task_failed", "task_failed"]
    assert log.events[0][1]["task"] == "flaky"


async def test_ok_ends_a_run_of_failures_and_calls_on_recover() -> None:
    recovered: list[str] = []
    st = TaskState("loop", on_recover=lambda s: recovered.append(s.name))
    n = [0]

    async def loop() -> None:
        while True:
            n[0] += 1
            if n[0] <= 2:
                raise RuntimeError("step failed")
            st.ok()  # a successful step
            if n[0] >= 4:
                return
            await asyncio.sleep(0)

    await supervised("loop", loop, None, FAST, state=st, stable_s=None)
    assert recovered == ["loop"] and not st.failing and st.failing_since is None and st.total_failures == 2


async def test_a_restarted_task_running_stable_s_counts_as_recovered() -> None:
    recovered: list[str] = []
    st = TaskState("long", on_recover=lambda s: recovered.append(s.name))
    n = [0]
    release = asyncio.Event()

    async def long() -> None:
        n[0] += 1
        if n[0] == 1:
            raise RuntimeError("first run fails")
        await release.wait()

    task = asyncio.create_task(supervised("long", long, None, FAST, state=st, stable_s=0.02))
    for _ in range(500):
        if recovered:
            break
        await asyncio.sleep(0.01)
    assert recovered == ["long"] and not st.failing
    release.set()
    await asyncio.wait_for(task, 5)


async def test_failing_for_measures_how_long_a_task_has_been_failing() -> None:
    now = [100.0]
    st = TaskState("t", clock=lambda: now[0])
    assert st.failing_for() == 0.0
    st.fail(ValueError("x"))
    now[0] = 112.5
    st.fail(ValueError("y"))
    assert st.failing and st.failures == 2 and st.failing_for() == 12.5 and "ValueError: y" in st.last_error
    st.ok()
    assert st.failing_for() == 0.0 and st.last_fail_ts == 112.5


async def test_cancellation_passes_through() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervised("forever", forever, None, FAST))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancel_during_backoff_stops_restarts() -> None:
    runs: list[int] = []

    async def bad() -> None:
        runs.append(1)
        raise RuntimeError("x")

    task = asyncio.create_task(supervised("bad", bad, None, Backoff(base_s=3600.0, max_s=3600.0)))
    for _ in range(200):
        if runs:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs == [1]


async def test_a_raising_callback_never_kills_supervision() -> None:
    n = [0]

    async def twice() -> int:
        n[0] += 1
        if n[0] == 1:
            raise RuntimeError("x")
        return n[0]

    def bad_cb(st: TaskState, e: BaseException) -> None:
        raise KeyError("callback bug")

    log = Log()
    assert await supervised("t", twice, bad_cb, FAST, log=log) == 2
    assert ("supervisor_callback_failed", {"task": "t", "callback": "on_fail", "error": "KeyError('callback bug')"}) \
        in log.events


async def test_max_restarts_gives_up_with_the_last_error() -> None:
    async def bad() -> None:
        raise RuntimeError("always")

    with pytest.raises(RuntimeError, match="always"):
        await supervised("bad", bad, None, FAST, max_restarts=2)
