"""Append-only JSON-lines journal of our fills, keyed by (tid, oid), so a restart neither loses nor
double counts fills. This is I/O: the runner owns it; EngineCore never touches files.

One line per fill: ``{"ts","coin","cloid","oid","tid","is_buy","px","sz","fee","is_maker","remaining"}``.
A torn last line (crash mid-write, no trailing newline) is tolerated and reported via ``torn_tail``;
a malformed line anywhere else raises JournalError (never silently drop accounting).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import orjson

from hlmm.engine.portfolio import Portfolio
from hlmm.venue.base import Fill

_FIELDS = ("ts", "coin", "cloid", "oid", "tid", "is_buy", "px", "sz", "fee", "is_maker", "remaining")


class JournalError(ValueError):
    """The journal file is corrupt (other than a torn final line)."""


def fill_to_dict(f: Fill) -> dict[str, object]:
    return {k: getattr(f, k) for k in _FIELDS}


def fill_from_dict(d: object) -> Fill:
    if not isinstance(d, dict):
        raise JournalError(f"journal line must be an object, got {type(d).__name__}")
    missing = [k for k in _FIELDS if k not in d]
    if missing:
        raise JournalError(f"journal line missing {missing}")
    try:
        return Fill(
            ts=float(d["ts"]), coin=str(d["coin"]), cloid=str(d["cloid"]), oid=int(d["oid"]), tid=int(d["tid"]),
            is_buy=bool(d["is_buy"]), px=float(d["px"]), sz=float(d["sz"]), fee=float(d["fee"]),
            is_maker=bool(d["is_maker"]), remaining=float(d["remaining"]),
        )
    except (TypeError, ValueError) as e:
        raise JournalError(f"bad journal line {d!r}: {e}") from e


class FillJournal:
    """Append-only fills journal at ``path``. Call ``load()`` once at start-up, then ``append`` each fill."""

    def __init__(self, path: Path | str, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.keys: set[tuple[int, int]] = set()
        self.torn_tail = False
        self._fh: BinaryIO | None = None

    def load(self) -> list[Fill]:
        """Read all fills (deduplicated by (tid, oid), file order). Missing file -> []."""
        fills: list[Fill] = []
        self.keys.clear()
        self.torn_tail = False
        if not self.path.exists():
            return fills
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: possibly torn by a crash
            try:
                f = fill_from_dict(orjson.loads(raw))
            except (orjson.JSONDecodeError, JournalError) as e:
                if last:
                    self.torn_tail = True
                    break
                raise JournalError(f"{self.path}: line {i + 1} is corrupt: {e}") from e
            key = (f.tid, f.oid)
            if key in self.keys:
                continue
            self.keys.add(key)
            fills.append(f)
        if self.torn_tail:
            # Cut the torn bytes so later appends start on a clean line.
            keep = data[: data.rfind(b"\n") + 1]
            self.path.write_bytes(keep)
        return fills

    def replay_into(self, portfolio: Portfolio, coin: str | None = None) -> int:
        """Load and apply the journal's fills to ``portfolio``; returns how many were new to it."""
        n = 0
        for f in self.load():
            if coin is not None and f.coin != coin:
                continue
            n += portfolio.on_fill(f)
        return n

    def append(self, f: Fill) -> bool:
        """Write one fill; False when (tid, oid) is already journaled."""
        key = (f.tid, f.oid)
        if key in self.keys:
            return False
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for appends, closed in close()
        self._fh.write(orjson.dumps(fill_to_dict(f)) + b"\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.keys.add(key)
        return True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> FillJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DailyFillJournal:
    """The live fill journal: one :class:`FillJournal` file per UTC day of the fill's ``ts``
    (``<dir>/fills_<tag>_<YYYY-MM-DD>.jsonl``), so a restart reads one day, not the account's whole history.
    ``seen`` answers for every fill loaded or appended in this process; ``same`` says whether a known key carries
    the same trade (a reset local exchange reuses tids: such a fill is new, not a duplicate).

    Memory: only the newest UTC day seen and the day before it are held (a replay just after midnight still finds
    yesterday's fills); older days are closed and forgotten. A fill of a forgotten day that turns up again is
    looked up in its day's file when it is appended (``append`` reloads that day, so it is still refused)."""

    def __init__(self, directory: Path | str, tag: str, fsync: bool = True) -> None:
        self.dir = Path(directory)
        self.tag = tag
        self.fsync = fsync
        self._days: dict[str, FillJournal] = {}
        self._fills: dict[tuple[int, int], Fill] = {}

    def path_for(self, day: str) -> Path:
        return self.dir / f"fills_{self.tag}_{day}.jsonl"

    def _journal(self, day: str) -> FillJournal:
        j = self._days.get(day)
        if j is None:
            j = self._days[day] = FillJournal(self.path_for(day), fsync=self.fsync)
            for f in j.load():
                self._fills.setdefault((f.tid, f.oid), f)
            self._forget_old(keep=day)
        return j

    def _forget_old(self, keep: str) -> None:
        """Close and forget every day older than the day before the newest one held (never ``keep``)."""
        from datetime import date, timedelta

        newest = max(self._days)
        try:
            cutoff = (date.fromisoformat(newest) - timedelta(days=1)).isoformat()
        except ValueError:
            return
        for d in [d for d in self._days if d < cutoff and d != keep]:
            j = self._days.pop(d)
            j.close()
            for k in j.keys:
                g = self._fills.get(k)
                # the same key may be held for a newer day too (a reset local exchange reusing tids): keep that
                if g is not None and not any(k in o.keys for o in self._days.values()):
                    del self._fills[k]

    def days_held(self) -> list[str]:
        """The UTC days whose fills are held in memory (diagnostics, tests)."""
        return sorted(self._days)

    def load_day(self, day: str) -> list[Fill]:
        """The fills journaled for ``day`` (file order; JournalError when the file is corrupt)."""
        j = self._journal(day)
        return [f for f in self._fills.values() if (f.tid, f.oid) in j.keys]

    def seen(self, f: Fill) -> bool:
        return (f.tid, f.oid) in self._fills

    def same(self, f: Fill) -> bool:
        """Journaled under this (tid, oid) with the same side, price and size."""
        g = self._fills.get((f.tid, f.oid))
        return g is not None and g.is_buy == f.is_buy and g.px == f.px and g.sz == f.sz

    def append(self, f: Fill) -> bool:
        """Journal ``f`` durably in its day's file; False when that day already holds (tid, oid)."""
        from hlmm.risk.kill_switch import utc_day

        j = self._journal(utc_day(f.ts))
        if not j.append(f):
            return False
        self._fills[(f.tid, f.oid)] = f
        return True

    def close(self) -> None:
        for j in self._days.values():
            j.close()
