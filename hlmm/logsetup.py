"""Logging: structlog to JSON lines in a rotating file, readable lines (or nothing) on the console.

The file sink is cheap for the caller: the event dict is built and redacted in the calling thread, then handed to a
writer thread through a queue; the writer renders JSON into a 64 KiB buffered file and flushes every
``flush_interval_s``, at once for ERROR and above, on ``handler.flush()``, at ``configure_logging`` again, at
interpreter exit and on SIGTERM (when nobody else handles it): a clean exit or a kill loses no line.

Secrets never reach a sink: :func:`redact_secrets` runs before any renderer and masks fields named like
secrets (``signature``, ``private_key``, ``key``, ``password``, ...), ``name=value`` pairs with such a name inside
strings, any string that looks like a raw private key (64 hex digits, with or without ``0x``/``0X``, any case),
and - wherever it appears, in any case, prefix or as its decimal integer - the value of every key loaded by
:class:`~hlmm.venue.hyperliquid.wallet.Wallet` (registered with :func:`register_secret`). The rendered line is
masked once more (tracebacks, reprs of objects). Transaction hashes have the key's shape and are masked too: a
false positive costs a hash in the log, a false negative would leak a key.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

REDACTED = "[REDACTED]"
SECRET_KEYS = frozenset(
    {"signature", "sig", "private_key", "privatekey", "secret", "secret_key", "api_secret", "mnemonic", "password",
     "keystore_password", "key", "key_hex", "api_key", "apikey", "passphrase", "passwd", "seed_phrase",
     "hlmm_private_key", "hlmm_keystore_password"}
)
# 64 hex digits not inside a longer hex run, optional 0x/0X prefix, any case (a raw key or a hash)
_KEY_RE = re.compile(r"(?<![0-9a-fA-F])(?:0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
# name=value / name: value / "name": "value" inside a string, for a secret-like name
_NAMED_RE = re.compile(
    r"""(?i)(\b(?:private_?key|secret(?:_key)?|api_?secret|api_?key|password|passwd|passphrase|mnemonic|"""
    r"""keystore_password|hlmm_private_key|key)["']?\s*[=:]\s*["']?)(?!\[REDACTED\])([^\s"',;}\]]+)"""
)
_secret_re: re.Pattern[str] | None = None  # the loaded keys' own values (hex any case, decimal)
_secret_forms: set[str] = set()
_secret_lock = threading.Lock()


def register_secret(value: str | bytes) -> None:
    """Mask this secret (a private key: hex with or without 0x, or its 32 raw bytes) wherever it appears in a log
    line from now on: as hex in any case and with any prefix, and as its decimal integer."""
    global _secret_re
    if isinstance(value, bytes):
        raw = value.hex()
    else:
        raw = value.strip()
        if raw[:2] in ("0x", "0X"):
            raw = raw[2:]
    raw = raw.lower()
    if len(raw) < 16:
        return  # not a key: masking a short string would blank ordinary text
    forms = {raw}
    with contextlib.suppress(ValueError):
        forms.add(str(int(raw, 16)))
        stripped = raw.lstrip("0")
        if len(stripped) >= 16:
            forms.add(stripped)  # printed as a number in hex (no leading zeros)
    with _secret_lock:
        _secret_forms.update(forms)
        alts = sorted(_secret_forms, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(f) for f in alts), re.IGNORECASE)


def _redact_str(v: str) -> str:
    sr = _secret_re
    if sr is not None:
        v = sr.sub(REDACTED, v)
    if len(v) >= 64:
        v = _KEY_RE.sub(REDACTED, v)
    if "=" in v or ":" in v:
        v = _NAMED_RE.sub(lambda m: m.group(1) + REDACTED, v)
    return v
_LOGGER_NAME = "hlmm"

ConsoleMode = Literal["pretty", "quiet"]


_PLAIN = frozenset({float, bool, type(None)})  # values that cannot hold a key: skip them fast (hot path)


def _redact_value(v: Any, depth: int = 0) -> Any:
    if depth > 6:  # pathological nesting: don't recurse forever, but don't print it either
        return REDACTED
    if isinstance(v, str):
        return _redact_str(v)
    if isinstance(v, bytes | bytearray):
        if len(v) == 32:
            return REDACTED  # a raw 32-byte value may be a key
        return _redact_str(repr(v)) if _secret_re is not None and _secret_re.search(v.hex()) else v
    if isinstance(v, dict):
        return {_redact_str(k) if isinstance(k, str) else k:
                (REDACTED if str(k).lower() in SECRET_KEYS else _redact_value(x, depth + 1)) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_redact_value(x, depth + 1) for x in v] if isinstance(v, set | frozenset) else \
            type(v)(_redact_value(x, depth + 1) for x in v)
    if type(v) in _PLAIN:
        return v
    text = str(v)  # any other object is rendered through str/repr later: judge it by that text
    red = _redact_str(text)
    return red if red != text else v




def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named fields and key-shaped strings anywhere in the event."""
    for k, v in list(event_dict.items()):
        if str(k).lower() in SECRET_KEYS:
            event_dict[k] = REDACTED
        elif type(v) not in _PLAIN:
            event_dict[k] = _redact_value(v)
    return event_dict


def redact_rendered(_logger: Any, _method: str, line: Any) -> Any:
    """Last processor after a renderer: mask the finished line once more (tracebacks, reprs of objects)."""
    return _redact_str(line) if isinstance(line, str) else line


def _no_caller(*_a: Any, **_kw: Any) -> tuple[str, int, str, None]:
    return "(unknown file)", 0, "(unknown function)", None


class _BufferedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler without a flush (syscall) per record and without formatting each record twice to decide
    on rollover (the stdlib does both). Only the writer thread calls it."""

    BUFFER = 1 << 16

    def __init__(self, filename: Path, max_bytes: int, backups: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = self.stream.tell() if self.stream is not None else 0

    def _open(self) -> Any:
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    buffering=self.BUFFER)

    def doRollover(self) -> None:
        super().doRollover()
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            n = len(line.encode("utf-8")) if not line.isascii() else len(line)
            if self.maxBytes > 0 and self._size > 0 and self._size + n > self.maxBytes:
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(line)
            self._size += n
        except Exception:
            self.handleError(record)


_FLUSH = object()  # marker: flush the file, then set the Event that follows it
_STOP = object()


class _QueueFileSink(logging.Handler):
    """The caller-side handler: enqueue the record (already redacted) for the writer thread. ``flush()`` waits until
    everything enqueued before it is on disk; ``close()`` drains, flushes and stops the thread."""

    def __init__(self, target: logging.Handler, flush_interval_s: float) -> None:
        super().__init__()
        self.target = target
        self.flush_interval_s = flush_interval_s
        # SimpleQueue.put is reentrant: safe from a signal handler that interrupts a put.
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hlmm-log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if self._closed:
            return
        self._q.put(record)
        if record.levelno >= logging.ERROR:
            self._q.put(_FLUSH)
            self._q.put(None)

    def flush(self) -> None:
        if self._closed or not self._thread.is_alive():
            return
        done = threading.Event()
        self._q.put(_FLUSH)
        self._q.put(done)
        done.wait(5.0)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(_STOP)
            self._thread.join(5.0)
        super().close()

    def _run(self) -> None:
        tgt = self.target
        dirty = False
        while True:
            try:
                item = self._q.get(timeout=self.flush_interval_s)
            except queue.Empty:
                if dirty:
                    tgt.flush()
                    dirty = False
                continue
            if item is _STOP:
                tgt.flush()
                tgt.close()
                return
            if item is _FLUSH:
                done = self._q.get()
                tgt.flush()
                dirty = False
                if isinstance(done, threading.Event):
                    done.set()
                continue
            tgt.handle(item)
            dirty = True


_SINKS: list[_QueueFileSink] = []


def flush_logs() -> None:
    """Write every buffered log line to disk now."""
    for h in list(_SINKS):
        h.flush()


def close_logs() -> None:
    """Flush and stop the file writers (idempotent; registered at exit)."""
    while _SINKS:
        h = _SINKS.pop()
        with contextlib.suppress(Exception):
            logging.getLogger(_LOGGER_NAME).removeHandler(h)
        h.close()


atexit.register(close_logs)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Default SIGTERM kills without running atexit: flush the log first, then die by the same signal."""
    close_logs()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_flush() -> None:
    # Only where nobody else handles SIGTERM (runners replace it with their own clean shutdown while they run).
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def configure_logging(
    log_dir: Path | str | None = None,
    *,
    file_name: str = "hlmm.jsonl",
    console: ConsoleMode = "pretty",
    level: str = "INFO",
    max_bytes: int = 20_000_000,
    backups: int = 5,
    flush_interval_s: float = 0.5,
) -> Path | None:
    """Configure structlog once per process. Returns the JSON log path (None when no file sink).

    ``console="quiet"`` keeps the terminal free for a live UI (only warnings and above are printed). File lines are
    written by a background thread and reach the disk within ``flush_interval_s`` (see the module docstring).
    """
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    if not flush_interval_s > 0:
        raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s!r}")
    root = logging.getLogger(_LOGGER_NAME)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
        if h in _SINKS:
            _SINKS.remove(h)
    root.setLevel(lvl)
    root.propagate = False
    # Our renderers never print the caller's file/line; the stdlib would walk the stack for it on every record.
    root.findCaller = _no_caller  # type: ignore[method-assign]

    pre_chain = _shared_processors()
    path: Path | None = None
    if log_dir is not None:
        d = Path(log_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / file_name
        fh = _BufferedRotatingFileHandler(path, max_bytes, backups)
        fh.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer(sort_keys=False),
                    redact_rendered,
                ],
                foreign_pre_chain=pre_chain,
            )
        )
        fh.setLevel(lvl)
        sink = _QueueFileSink(fh, flush_interval_s)
        sink.setLevel(lvl)
        _SINKS.append(sink)
        root.addHandler(sink)
        _install_sigterm_flush()

    ch = logging.StreamHandler(sys.stderr)
    ch.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
                redact_rendered,
            ],
            foreign_pre_chain=pre_chain,
        )
    )
    ch.setLevel(logging.WARNING if console == "quiet" else lvl)
    root.addHandler(ch)

    structlog.configure(
        processors=[*pre_chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=False,
    )
    return path


def get_logger(**bind: Any) -> Any:
    """A bound structlog logger under the ``hlmm`` stdlib logger (configure first)."""
    return structlog.get_logger(_LOGGER_NAME).bind(**bind)


class EventLog(Protocol):
    """What the engine, runners and venues need of a logger: one structured event with key/value fields per call
    (a bound structlog logger, :class:`NullLogger`, or a test's recorder)."""

    def debug(self, event: str, /, **kw: Any) -> Any: ...

    def info(self, event: str, /, **kw: Any) -> Any: ...

    def warning(self, event: str, /, **kw: Any) -> Any: ...

    def error(self, event: str, /, **kw: Any) -> Any: ...


class NullLogger:
    """Drops everything at the cost of one method call (backtests and benchmarks without a log sink)."""

    def bind(self, **_kw: Any) -> NullLogger:
        return self

    def _drop(self, *_a: Any, **_kw: Any) -> None:
        return None

    debug = info = warning = warn = error = exception = critical = msg = _drop


def null_logger() -> NullLogger:
    return NullLogger()
