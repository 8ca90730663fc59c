"""Crash-safe state of the local exchange: a snapshot plus an append-only journal of every state-changing input.

A real exchange keeps its orders when its process dies, so the local one must too (``kill -9`` included). Files, for
a state path ``P``:

- ``P``: snapshot — ``STATE_MAGIC_V2`` then a pickle of ``(seq, ExchangeCore)``; ``seq`` is the last journal
  record it contains. Written atomically (tmp, fsync, rename). ``STATE_MAGIC`` (v1, a bare core) is still read.
- ``P.journal``: one line per input applied to the core after the snapshot, ``<seq> <crc32 hex> <json>\\n`` with
  json ``[kind, now, payload]``. Each line is one ``write(2)`` on an O_APPEND descriptor made *before* the input is
  applied (write-ahead), so a killed process loses nothing it answered; ``fsync`` runs at most every
  ``fsync_every_s`` (a power cut may lose that much, a process kill nothing).

Recovery = load the snapshot, re-apply the journal records with a higher ``seq`` through the same ``apply``
function the live server uses (the core is deterministic given its inputs: seeded random streams are in the
pickle). A torn last line (the process died mid-write) is dropped with a warning and cut off the file; a bad line
anywhere else is corruption and refuses to start. Compaction writes a new snapshot and empties the journal;
it runs at stop, on the ``restart`` fault, and when the journal grows past ``compact_bytes`` or
``compact_every_s``. Snapshots are pickles: only load files this tool wrote.

Inputs journaled (``kind``): ``x`` an /exchange body, ``m`` a market event, ``t`` a tick that changes state
(scheduled cancel due, first prev-day price), ``c`` an asset-context round (funding), ``h`` seeded history,
``f`` a fault switch (reject fraction, forced rate limit, frozen book), ``u`` a user first seen via /info.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, RefQuote, Timer, Trade
from hlmm.sim.server.core import ExchangeCore, RequestError, ms

log = logging.getLogger(__name__)

STATE_MAGIC = b"hlmm-local-exchange-state-v1\n"
STATE_MAGIC_V2 = b"hlmm-local-exchange-state-v2\n"
JOURNAL_SUFFIX = ".journal"


class StateError(RuntimeError):
    """A state file or journal that cannot be loaded."""


# ------------------------------------------------------------------------------------------------ event codec
_EVENTS: dict[str, type] = {c.__name__: c for c in (BookSnapshot, Bbo, Trade, AssetCtx, RefQuote, Timer)}


def encode_event(ev: MarketEvent) -> dict:
    d = asdict(ev)
    if isinstance(ev, BookSnapshot):
        d["bids"] = [[lv.px, lv.sz, lv.n] for lv in ev.bids]
        d["asks"] = [[lv.px, lv.sz, lv.n] for lv in ev.asks]
    d["e"] = type(ev).__name__
    return d


def decode_event(d: dict) -> MarketEvent:
    d = dict(d)
    cls = _EVENTS[d.pop("e")]
    if cls is BookSnapshot:
        d["bids"] = tuple(BookLevel(*lv) for lv in d["bids"])
        d["asks"] = tuple(BookLevel(*lv) for lv in d["asks"])
    return cls(**d)


def _encode(kind: str, payload: Any) -> Any:
    if kind == "m":
        return encode_event(payload)
    if kind == "h":
        coin, mids, trades = payload
        return [coin, [list(m) for m in mids], [encode_event(t) for t in trades]]
    return payload


def _decode(kind: str, payload: Any) -> Any:
    if kind == "m":
        return decode_event(payload)
    if kind == "h":
        coin, mids, trades = payload
        return coin, [tuple(m) for m in mids], [decode_event(t) for t in trades]
    return payload


# ------------------------------------------------------------------------------------------------ apply
def _fault(core: ExchangeCore, now: float, p: dict) -> None:
    if "reject_fraction" in p:
        core.reject_fraction = float(p["reject_fraction"])
    if "forced_rate_limit" in p:
        core.forced_rate_limit = bool(p["forced_rate_limit"])
    if "freeze" in p:
        coin, until = p["freeze"]
        core.freeze(coin, until)


_APPLY: dict[str, Callable[[ExchangeCore, float, Any], Any]] = {
    "x": lambda core, now, body: core.handle_exchange(body, now),
    "m": lambda core, now, ev: core.on_market(ev, now),
    "t": lambda core, now, _: core.tick(now),
    "c": lambda core, now, _: core.publish_ctx(now),
    "h": lambda core, now, p: core.seed_history(*p),
    "f": _fault,
    "u": lambda core, now, addr: core.seen_users.add(addr),
}


def apply(core: ExchangeCore, kind: str, now: float, payload: Any = None) -> Any:
    """Apply one input to the core (the live server and recovery both go through here)."""
    return _APPLY[kind](core, now, payload)


def tick_changes_state(core: ExchangeCore, now: float) -> bool:
    """Whether ``core.tick(now)`` would change more than publication state (so the tick must be journaled)."""
    now_ms = ms(now)
    if any(a.schedule_cancel_ms is not None and now_ms >= a.schedule_cancel_ms for a in core.accounts.values()):
        return True
    return any(b.prev_day_px is None and b.true_mid is not None for b in core.books.values())


# ------------------------------------------------------------------------------------------------ snapshot
def write_snapshot(core: ExchangeCore, path: str | Path, seq: int = 0) -> None:
    """Atomically write ``(seq, core)`` to ``path`` (the live outbox is kept, not pickled)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    outbox, core.outbox = core.outbox, []
    try:
        with open(tmp, "wb") as f:
            f.write(STATE_MAGIC_V2)
            pickle.dump((seq, core), f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
    finally:
        core.outbox = outbox
    os.replace(tmp, p)
    _fsync_dir(p.parent)


def read_snapshot(path: str | Path) -> tuple[int, ExchangeCore]:
    """(seq, core) from a v2 snapshot, or (0, core) from a v1 state file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(len(STATE_MAGIC_V2))
            if head == STATE_MAGIC_V2:
                seq, core = pickle.load(f)
            elif head[: len(STATE_MAGIC)] == STATE_MAGIC:
                f.seek(len(STATE_MAGIC))
                seq, core = 0, pickle.load(f)
            else:
                raise StateError(f"{p} is not a local-exchange state file")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise StateError(f"cannot load exchange state {p}: {e}") from None
    if not isinstance(core, ExchangeCore) or isinstance(seq, bool) or not isinstance(seq, int):
        raise StateError(f"{p} does not hold an ExchangeCore")
    return seq, core


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ journal
def _line(seq: int, kind: str, now: float, payload: Any) -> bytes:
    body = orjson.dumps([kind, now, _encode(kind, payload)])
    return b"%d %08x " % (seq, zlib.crc32(body)) + body + b"\n"


def _parse(line: bytes) -> tuple[int, str, float, Any]:
    """(seq, kind, now, decoded payload); ValueError when the line is not a whole, intact record."""
    seq_s, crc_s, body = line.split(b" ", 2)
    if zlib.crc32(body) != int(crc_s, 16):
        raise ValueError("checksum mismatch")
    kind, now, payload = orjson.loads(body)
    if kind not in _APPLY or not isinstance(now, (int, float)):
        raise ValueError(f"unknown record {kind!r}")
    return int(seq_s), kind, float(now), _decode(kind, payload)


def read_journal(path: str | Path) -> tuple[list[tuple[int, str, float, Any]], int, str | None]:
    """(records, byte length of the intact prefix, problem with the tail or None). A bad line that is not the last
    one raises StateError (corruption, not a torn write)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return [], 0, None
    except OSError as e:
        raise StateError(f"cannot read journal {p}: {e}") from None
    records: list[tuple[int, str, float, Any]] = []
    pos = 0
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    for i in range(n_lines):
        end = data.find(b"\n", pos)
        last = i == n_lines - 1
        if end < 0:  # no newline: the write was cut short
            return records, pos, f"torn last line ({len(data) - pos} bytes without a newline)"
        try:
            records.append(_parse(data[pos:end]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
            if last:
                return records, pos, f"damaged last line ({e})"
            raise StateError(f"journal {p} is corrupt at line {i + 1}: {e}") from None
        pos = end + 1
    return records, pos, None


class StateStore:
    """Snapshot + journal at one state path. ``load`` (or a fresh core), then ``start``; ``record`` before each
    state-changing input; ``maybe_compact`` from a periodic loop; ``close`` at stop."""

    def __init__(self, path: str | Path, compact_bytes: int = 32 * 1024 * 1024, compact_every_s: float = 300.0,
                 fsync_every_s: float = 1.0) -> None:
        if compact_bytes < 1 or not (math.isfinite(compact_every_s) and compact_every_s > 0):
            raise ValueError("compact_bytes must be >= 1 and compact_every_s finite and > 0")
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + JOURNAL_SUFFIX)
        self.compact_bytes = compact_bytes
        self.compact_every_s = compact_every_s
        self.fsync_every_s = fsync_every_s
        self.seq = 0
        self.replayed = 0
        self.torn: str | None = None
        self._fd: int | None = None
        self._bytes = 0
        self._unsynced = False
        self._last_sync = 0.0
        self._last_compact = 0.0

    def exists(self) -> bool:
        """Whether there is state to load (a journal never exists without its snapshot)."""
        return self.path.exists() or self.journal_path.exists()

    def load(self) -> ExchangeCore:
        """The core as of the last journaled input: snapshot + replay. Cuts a torn tail off the journal."""
        if not self.path.exists():
            raise StateError(f"journal {self.journal_path} has no snapshot {self.path}")
        self.seq, core = read_snapshot(self.path)
        records, good, problem = read_journal(self.journal_path)
        if problem is not None:
            self.torn = problem
            log.warning("local exchange journal %s: %s; ignored (state as of the record before it)",
                        self.journal_path, problem)
            core.count("journal_torn_tail")
            with open(self.journal_path, "r+b") as f:
                f.truncate(good)
        failed = 0
        for seq, kind, now, payload in records:
            if seq <= self.seq:
                continue  # already in the snapshot (a crash between snapshot and journal truncation)
            try:
                apply(core, kind, now, payload)
            except RequestError:
                pass  # the live request got the same 4xx
            except Exception:  # the live request failed the same way; keep recovering the rest
                failed += 1
            self.seq = seq
            self.replayed += 1
        if failed:
            log.warning("local exchange journal %s: %d records raised while replaying", self.journal_path, failed)
        core.outbox.clear()  # messages of the past are not re-sent
        core.count("journal_replayed", self.replayed)
        return core

    def start(self, core: ExchangeCore, now_mono: float = 0.0, fresh: bool = False) -> None:
        """Begin journaling against ``core``: ``fresh`` (a core not loaded from this store) or no snapshot yet
        writes a first snapshot and empties the journal."""
        if fresh or not self.path.exists():
            write_snapshot(core, self.path, self.seq)
            self._truncate_journal()
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._bytes = os.fstat(self._fd).st_size
        self._last_compact = self._last_sync = now_mono

    def record(self, kind: str, now: float, payload: Any = None) -> None:
        """Append one input (one write, before it is applied)."""
        if self._fd is None:
            return
        self.seq += 1
        line = _line(self.seq, kind, now, payload)
        os.write(self._fd, line)
        self._bytes += len(line)
        self._unsynced = True

    def maybe_compact(self, core: ExchangeCore, now_mono: float) -> bool:
        """Periodic housekeeping: fsync the journal, snapshot when it is big or old. True if compacted."""
        if self._fd is None:
            return False
        due = self._bytes >= self.compact_bytes or now_mono - self._last_compact >= self.compact_every_s
        if self._bytes > 0 and due:
            self.compact(core, now_mono)
            return True
        if self._unsynced and now_mono - self._last_sync >= self.fsync_every_s:
            os.fsync(self._fd)
            self._unsynced, self._last_sync = False, now_mono
        return False

    def compact(self, core: ExchangeCore, now_mono: float = 0.0) -> None:
        """Snapshot the core (with the current seq) and empty the journal."""
        write_snapshot(core, self.path, self.seq)
        self._truncate_journal()
        self._bytes = 0
        self._unsynced = False
        self._last_compact = self._last_sync = now_mono
        core.count("journal_compactions")

    def _truncate_journal(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        elif self.journal_path.exists():
            with open(self.journal_path, "r+b") as f:
                f.truncate(0)
                f.flush()
                os.fsync(f.fileno())

    def close(self, core: ExchangeCore | None = None) -> None:
        """Final snapshot (when ``core`` is given) and close the journal."""
        if core is not None and self._fd is not None:
            self.compact(core)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
