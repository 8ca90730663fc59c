"""Suite-wide: no test, and no process a test starts, may reach a non-loopback host (tests/netguard.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import netguard

_GUARD_DIR = str(Path(__file__).parent / "_netguard")


@pytest.fixture(scope="session", autouse=True)
def _loopback_only() -> Iterator[None]:
    fd, log = tempfile.mkstemp(prefix="hlmm-netguard-", suffix=".log")
    os.close(fd)
    old_log, old_pp = os.environ.get(netguard.ENV_LOG), os.environ.get("PYTHONPATH")
    os.environ[netguard.ENV_LOG] = log
    os.environ["PYTHONPATH"] = _GUARD_DIR + (os.pathsep + old_pp if old_pp else "")
    netguard.install()
    try:
        yield
        seen = netguard.violations(log)
        assert not seen, "tests tried to reach non-loopback hosts:\n" + "\n".join(seen[:20])
    finally:
        os.unlink(log)
        for k, v in ((netguard.ENV_LOG, old_log), ("PYTHONPATH", old_pp)):
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
