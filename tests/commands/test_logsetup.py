"""Logging: JSON lines in a file, secrets redacted everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from hlmm.logsetup import REDACTED, configure_logging, get_logger, null_logger, redact_secrets

KEY = "0x" + "ab" * 32


def test_redact_processor_masks_keys_and_signatures() -> None:
    ev = {
        "event": f"loaded key {KEY} ok",
        "signature": {"r": "0x1", "s": "0x2", "v": 27},
        "nested": {"private_key": "hunter2", "list": [KEY, "fine"]},
        "addr": "0x" + "1" * 40,  # an address is not a key
    }
    out = redact_secrets(None, "info", ev)
    assert KEY not in json.dumps(out)
    assert out["signature"] == REDACTED
    assert out["nested"]["private_key"] == REDACTED
    assert out["nested"]["list"] == [REDACTED, "fine"]
    assert out["addr"] == "0x" + "1" * 40


def test_json_file_sink(tmp_path: Path) -> None:
    path = configure_logging(tmp_path, console="quiet")
    assert path is not None
    log = get_logger(coin="BTC")
    log.info("quote", bid=1.0, key=KEY, signature="0xdead")
    log.warning("kill", reason="test")
    import logging

    for h in logging.getLogger("hlmm").handlers:
        h.flush()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["quote", "kill"]
    assert lines[0]["coin"] == "BTC" and lines[0]["bid"] == 1.0
    assert lines[0]["key"] == REDACTED and lines[0]["signature"] == REDACTED
    assert KEY not in path.read_text()
    configure_logging(None, console="quiet")  # detach the file handler


def test_null_logger_accepts_everything() -> None:
    log = null_logger().bind(a=1)
    log.info("x", y=2)
    log.warning("z")


_CHILD = r"""
import os, signal, sys
from hlmm.logsetup import configure_logging, get_logger
configure_logging(sys.argv[1], console="quiet", flush_interval_s=30.0)  # only exit/kill can flush in time
log = get_logger(coin="BTC")
for i in range(3000):
    log.info("line", i=i, key=sys.argv[2], nested={"private_key": "hunter2"})
if sys.argv[3] == "kill":
    os.kill(os.getpid(), signal.SIGTERM)  # default SIGTERM: no atexit; the log must flush anyway
"""


def _run_child(tmp_path: Path, how: str) -> tuple[int, list[dict]]:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), KEY, how], timeout=60, capture_output=True)
    lines = [json.loads(x) for x in (tmp_path / "hlmm.jsonl").read_text().splitlines()]
    return r.returncode, lines


def test_every_line_flushed_and_redacted_at_clean_exit(tmp_path: Path) -> None:
    rc, lines = _run_child(tmp_path, "exit")
    assert rc == 0
    assert [x["i"] for x in lines] == list(range(3000))
    assert all(x["key"] == REDACTED and x["nested"]["private_key"] == REDACTED for x in lines)
    assert KEY not in (tmp_path / "hlmm.jsonl").read_text()


def test_every_line_flushed_when_killed_by_sigterm(tmp_path: Path) -> None:
    import signal

    rc, lines = _run_child(tmp_path, "kill")
    assert rc == -signal.SIGTERM  # still dies by the signal
    assert [x["i"] for x in lines] == list(range(3000))


def test_timer_flushes_without_an_explicit_flush(tmp_path: Path) -> None:
    import time

    path = configure_logging(tmp_path, console="quiet", flush_interval_s=0.05)
    assert path is not None
    try:
        get_logger().info("tick", n=1)
        for _ in range(200):  # bounded wait for the writer thread's timer
            if path.read_text():
                break
            time.sleep(0.025)
        assert json.loads(path.read_text().splitlines()[0])["event"] == "tick"
    finally:
        configure_logging(None, console="quiet")


def test_rotation_keeps_json_lines(tmp_path: Path) -> None:
    from hlmm.logsetup import flush_logs

    path = configure_logging(tmp_path, console="quiet", max_bytes=4_000, backups=3)
    assert path is not None
    try:
        log = get_logger()
        for i in range(200):
            log.info("row", i=i, pad="x" * 40)
        flush_logs()
        files = sorted(tmp_path.glob("hlmm.jsonl*"))
        assert len(files) == 4  # current + 3 backups
        for f in files:
            assert f.stat().st_size <= 4_000
            for line in f.read_text().splitlines():
                assert json.loads(line)["event"] == "row"
    finally:
        configure_logging(None, console="quiet")
