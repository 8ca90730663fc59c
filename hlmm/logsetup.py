"""Logging: structlog to JSON lines in a rotating file, readable lines (or nothing) on the console.

Secrets never reach a sink: :func:`redact_secrets` runs before any renderer and masks fields named like
secrets (``signature``, ``private_key``, ...) and any string that looks like a raw private key
(``0x`` + 64 hex digits). Transaction hashes have the same shape and are masked too: a false positive
costs a hash in the log, a false negative would leak a key.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Literal

import structlog

REDACTED = "[REDACTED]"
SECRET_KEYS = frozenset(
    {"signature", "sig", "private_key", "privatekey", "secret", "secret_key", "api_secret", "mnemonic", "password",
     "keystore_password"}
)
_KEY_RE = re.compile(r"0x[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_LOGGER_NAME = "hlmm"

ConsoleMode = Literal["pretty", "quiet"]


def _redact_value(v: Any, depth: int = 0) -> Any:
    if depth > 6:  # pathological nesting: don't recurse forever, but don't print it either
        return REDACTED
    if isinstance(v, str):
        return _KEY_RE.sub(REDACTED, v) if "0x" in v or "0X" in v else v
    if isinstance(v, bytes) and len(v) == 32:
        return REDACTED  # a raw 32-byte value may be a key
    if isinstance(v, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_KEYS else _redact_value(x, depth + 1)) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_redact_value(x, depth + 1) for x in v)
    return v


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named fields and key-shaped strings anywhere in the event."""
    for k in list(event_dict.keys()):
        if str(k).lower() in SECRET_KEYS:
            event_dict[k] = REDACTED
        else:
            event_dict[k] = _redact_value(event_dict[k])
    return event_dict


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
) -> Path | None:
    """Configure structlog once per process. Returns the JSON log path (None when no file sink).

    ``console="quiet"`` keeps the terminal free for a live UI (only warnings and above are printed).
    """
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger(_LOGGER_NAME)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(lvl)
    root.propagate = False

    pre_chain = _shared_processors()
    path: Path | None = None
    if log_dir is not None:
        d = Path(log_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / file_name
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        fh.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer(sort_keys=False),
                ],
                foreign_pre_chain=pre_chain,
            )
        )
        fh.setLevel(lvl)
        root.addHandler(fh)

    ch = logging.StreamHandler(sys.stderr)
    ch.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
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


class NullLogger:
    """Drops everything at the cost of one method call (backtests and benchmarks without a log sink)."""

    def bind(self, **_kw: Any) -> NullLogger:
        return self

    def _drop(self, *_a: Any, **_kw: Any) -> None:
        return None

    debug = info = warning = warn = error = exception = critical = msg = _drop


def null_logger() -> NullLogger:
    return NullLogger()
