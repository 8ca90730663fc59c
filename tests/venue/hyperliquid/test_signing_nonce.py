"""NonceManager: unique, strictly increasing, never below the clock, safe under asyncio concurrency."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.venue.hyperliquid.nonce import NonceError, NonceManager, wall_clock_ms


def test_burst_of_10k_strictly_increasing_with_real_clock() -> None:
    nm = NonceManager()
    start = wall_clock_ms()
    ns = [nm.next() for _ in range(10_000)]
    assert all(b > a for a, b in itertools.pairwise(ns))
    assert ns[0] >= start


def test_burst_with_frozen_clock_runs_ahead_by_one() -> None:
    nm = NonceManager(clock_ms=lambda: 1_700_000_000_000)
    ns = [nm.next() for _ in range(10_000)]
    assert ns == list(range(1_700_000_000_000, 1_700_000_000_000 + 10_000))
    assert nm.last == ns[-1]


def test_never_below_clock_and_jumps_forward() -> None:
    t = [1000]
    nm = NonceManager(clock_ms=lambda: t[0])
    assert nm.next() == 1000
    assert nm.next() == 1001
    t[0] = 5000
    assert nm.next() == 5000
    t[0] = 4000  # clock steps back: stay unique and increasing
    assert nm.next() == 5001


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=300))
def test_property_increasing_and_not_below_clock(clock_values: list[int]) -> None:
    it = iter(clock_values)
    current = [0]

    def clock() -> int:
        current[0] = next(it)
        return current[0]

    nm = NonceManager(clock_ms=clock, max_ahead_ms=10**9)
    prev = 0
    for _ in clock_values:
        n = nm.next()
        assert n > prev
        assert n >= current[0]
        prev = n


async def test_concurrent_asyncio_tasks_get_unique_nonces() -> None:
    nm = NonceManager(clock_ms=lambda: 1_000_000)

    async def worker(k: int) -> list[int]:
        out = []
        for _ in range(200):
            out.append(nm.next())
            await asyncio.sleep(0)  # interleave with the other tasks
        return out

    results = await asyncio.gather(*(worker(k) for k in range(20)))
    flat = [n for r in results for n in r]
    assert len(set(flat)) == len(flat) == 4000
    for r in results:
        assert all(b > a for a, b in itertools.pairwise(r))


def test_threads_get_unique_nonces() -> None:
    nm = NonceManager()
    out: list[list[int]] = [[] for _ in range(4)]

    def run(i: int) -> None:
        out[i].extend(nm.next() for _ in range(2000))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [n for r in out for n in r]
    assert len(set(flat)) == len(flat)


def test_runaway_burst_is_an_error() -> None:
    nm = NonceManager(clock_ms=lambda: 10_000, max_ahead_ms=5)
    assert [nm.next() for _ in range(6)] == [10_000, 10_001, 10_002, 10_003, 10_004, 10_005]
    with pytest.raises(NonceError, match="ahead of the clock"):
        nm.next()


@pytest.mark.parametrize("bad", [0, -1, 1.5, None, True])
def test_bad_clock_value(bad: object) -> None:
    nm = NonceManager(clock_ms=lambda: bad)  # type: ignore[arg-type, return-value]
    with pytest.raises(NonceError):
        nm.next()


def test_observe_restored_nonce() -> None:
    nm = NonceManager(clock_ms=lambda: 100)
    nm.observe(500)
    assert nm.next() == 501
    nm.observe(10)  # an older nonce changes nothing
    assert nm.next() == 502


def test_bad_max_ahead() -> None:
    with pytest.raises(ValueError):
        NonceManager(max_ahead_ms=0)
