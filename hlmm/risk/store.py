"""Durable kill state: a kill must survive a restart, and a damaged file must never silently un-kill."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from hlmm.risk.kill_switch import KillState, KillStateError

FORMAT_VERSION = 1


class KillStateCorruptError(RuntimeError):
    """The kill state file exists but cannot be read as a kill state. Inspect it; never delete it blindly."""


class KillStateStore:
    """JSON file store. ``save`` is atomic: temp file in the same directory, fsync, ``os.replace``, fsync dir."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> KillState | None:
        """The saved state, or None if no file exists. Raises KillStateCorruptError for anything unreadable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise KillStateCorruptError(f"cannot read kill state {self.path}: {e}") from e
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise KillStateCorruptError(f"kill state {self.path} is not valid JSON: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION or "state" not in doc:
            raise KillStateCorruptError(
                f"kill state {self.path} has an unknown layout (expected format {FORMAT_VERSION})"
            )
        try:
            return KillState.from_dict(doc["state"])
        except KillStateError as e:
            raise KillStateCorruptError(f"kill state {self.path} is malformed: {e}") from e

    def save(self, state: KillState) -> None:
        """Write atomically; readers see the old file or the new one, never a torn write."""
        data = json.dumps({"format": FORMAT_VERSION, "state": state.to_dict()}, indent=2, sort_keys=True)
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(parent)


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is flushed (POSIX); not available on Windows.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
