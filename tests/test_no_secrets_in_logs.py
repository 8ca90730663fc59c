"""No secret reaches a log: a backtest and the wallet/signing paths run with a known key in the environment,
logging to a temp file; the file and all captured output are searched for the key and the signature values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hlmm.cli import main
from hlmm.logsetup import configure_logging, get_logger
from hlmm.market.instrument import default_registry
from hlmm.venue.base import PlaceOrder
from hlmm.venue.hyperliquid.signing import exchange_request, recover_l1_signer, sign_l1_action
from hlmm.venue.hyperliquid.wallet import Wallet, WalletError
from hlmm.venue.hyperliquid.wire import order_action, order_to_wire

KEY_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"  # test-only key
KEY = "0x" + KEY_HEX


def _forbidden(sigs: list[dict]) -> list[str]:
    bad = [KEY_HEX, KEY_HEX.upper(), KEY, "0X" + KEY_HEX.upper(), "0x" + KEY_HEX.upper()]
    for sig in sigs:
        for part in ("r", "s"):
            h = sig[part][2:]
            bad += [h, h.upper(), h.zfill(64), str(int(h, 16))]  # hex any case, zero-padded, decimal
    return bad


def _assert_clean(texts: dict[str, str], sigs: list[dict]) -> None:
    for where, text in texts.items():
        low = text.lower()
        for s in _forbidden(sigs):
            assert s.lower() not in low, f"secret material found in {where}"


def test_backtest_and_signing_paths_leak_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("HLMM_PRIVATE_KEY", KEY)
    log_dir = tmp_path / "logs"
    # 1. a short backtest, logging to the temp dir (the command configures logging itself)
    rc = main(["backtest", "--preset", "btc", "--duration", "60", "--seed", "3", "--no-progress",
               "--log-dir", str(log_dir), "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert rc == 0
    # 2. wallet + signing, with a logger that a careless caller might feed everything to
    configure_logging(log_dir, file_name="signing.jsonl", console="pretty", level="DEBUG")
    log = get_logger(mode="live", coin="BTC")
    wallet = Wallet.from_env()
    inst = default_registry().get("BTC")
    o = PlaceOrder("BTC", "0x" + "ab" * 16, True, 60000.0, 0.001, reason="test")
    sigs = []
    for nonce in (1_700_000_000_000, 1_700_000_000_001):
        action = order_action([order_to_wire(inst, o)])
        sig = sign_l1_action(wallet, action, nonce, None, None, False)
        assert recover_l1_signer(action, nonce, None, None, sig, False) == wallet.address
        sigs.append(sig)
        body = exchange_request(action, sig, nonce, None, None)
        log.info("exchange_post", body=body, wallet=wallet, signer=wallet.address)
        log.debug("signed", sig=sig, signature=sig, wallet_repr=repr(wallet), wallet_str=f"{wallet}")
        print(wallet, repr(wallet), body["action"])  # what a REPL user would see
    try:
        Wallet.from_key(KEY[:-2])  # a near-miss key must not be echoed in the error
    except WalletError as e:
        log.error("wallet_error", error=str(e))
        assert KEY_HEX[:-2] not in str(e)
    log.info("env_check", private_key=KEY, note=f"key is {KEY}", nested={"deep": [KEY]})
    log.info("env_check_forms", bare=KEY_HEX, upper="0X" + KEY_HEX.upper(), note=f"key={KEY_HEX} glued x{KEY_HEX}y",
             decimal=int(KEY_HEX, 16), nested={"deep": [KEY_HEX.upper()]})
    for h in logging.getLogger("hlmm").handlers:
        h.flush()
    out, err = capfd.readouterr()
    files = {str(p): p.read_text() for p in sorted(log_dir.glob("*.jsonl*"))}
    assert any("exchange_post" in t for t in files.values()), "the signing log must exist (test not vacuous)"
    assert any("[REDACTED]" in t for t in files.values())
    assert any("backtest" in name for name in files)
    _assert_clean({**files, "stdout": out, "stderr": err}, sigs)
    # the address is public and stays visible: redaction must not be "everything"
    assert wallet.address in files[str(log_dir / "signing.jsonl")]
