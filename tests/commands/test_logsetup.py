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
