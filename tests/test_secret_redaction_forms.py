"""Issue 9 item 11: the log redactor masks the loaded key in every form (no 0x, 0X, upper case, key=<hex>,
decimal, inside longer text, nested) and secret-named fields, in the JSON file and on the console."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hlmm.logsetup import configure_logging, get_logger, redact_secrets
from hlmm.venue.hyperliquid.wallet import Wallet

KEY_HEX = "8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63"  # test-only key


class Boom(Exception):
    pass


FORMS = {
    "bare": KEY_HEX,
    "upper_0X": "0X" + KEY_HEX.upper(),
    "mixed": "0x" + KEY_HEX[:32].upper() + KEY_HEX[32:],
    "key_eq": f"key={KEY_HEX}",
    "glued": f"abc{KEY_HEX}def",  # inside a longer word: only the loaded-key rule catches it
    "decimal": str(int(KEY_HEX, 16)),
}


def test_processor_masks_every_form() -> None:
    Wallet.from_key(KEY_HEX)  # loading registers the key with the redactor
    for name, text in FORMS.items():
        ev = redact_secrets(None, "info", {"event": "x", "msg": f"value {text} end", "nested": {"a": [text]},
                                            "num": int(KEY_HEX, 16)})
        flat = repr(ev).lower()
        assert KEY_HEX not in flat and str(int(KEY_HEX, 16)) not in flat, name
    ev = redact_secrets(None, "info", {"event": "x", "password": "hunter2", "Key": "abc", "api_key": "k1",
                                        "note": "password=hunter2 secret: s3cr3t"})
    assert ev["password"] == ev["Key"] == ev["api_key"] == "[REDACTED]"
    assert "hunter2" not in ev["note"] and "s3cr3t" not in ev["note"]


def test_file_and_console_never_show_the_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    Wallet.from_key("0x" + KEY_HEX)
    configure_logging(tmp_path, file_name="r.jsonl", console="pretty", level="DEBUG")
    log = get_logger(mode="live")
    for name, text in FORMS.items():
        log.info(f"event {text}", form=name, text=text, nested={"deep": [text, (text,)]}, obj=Boom(text))
    try:
        raise Boom(f"failed with key {KEY_HEX.upper()}")
    except Boom:
        log.exception("crash")
    log.info("ok", address="0x" + "12" * 20, cloid="0x" + "ab" * 16)
    for h in logging.getLogger("hlmm").handlers:
        h.flush()
    out, err = capfd.readouterr()
    text = (tmp_path / "r.jsonl").read_text()
    for where, t in (("file", text), ("stdout", out), ("stderr", err)):
        low = t.lower()
        assert KEY_HEX not in low and str(int(KEY_HEX, 16)) not in low, where
    assert "bare" in text and "crash" in text  # not vacuous
    assert "0x" + "12" * 20 in text and "0x" + "ab" * 16 in text  # addresses and cloids stay readable
