"""Wallet: key sources, agent wallets, and the key never leaking through printing/pickling/errors."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import eth_account
import pytest

from hlmm.venue.hyperliquid.signing import recover_l1_signer, sign_l1_action
from hlmm.venue.hyperliquid.wallet import Wallet, WalletError

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
KEY_HEX = KEY[2:]
ADDR = "0x14791697260e4c9a71f18484c9f997b308e59325"
MASTER = "0xAbCdEf0123456789abcdef0123456789ABCDEF01"


def _assert_no_key(text: str) -> None:
    assert KEY_HEX not in text.lower()
    assert KEY_HEX[:16] not in text.lower()


def test_from_key_with_and_without_prefix() -> None:
    for k in (KEY, KEY_HEX, KEY.upper().replace("0X", "0x"), f"  {KEY}\n"):
        w = Wallet.from_key(k)
        assert w.address == ADDR
        assert w.account_address == ADDR
        assert not w.is_agent


def test_address_matches_eth_account_for_random_keys() -> None:
    for i in range(1, 30):
        key = "0x" + (i * 7919).to_bytes(32, "big").hex()
        assert Wallet.from_key(key).address == eth_account.Account.from_key(key).address.lower()


def test_agent_wallet_account_address() -> None:
    w = Wallet.from_key(KEY, account_address=MASTER)
    assert w.address == ADDR
    assert w.account_address == MASTER.lower()
    assert w.is_agent
    assert MASTER.lower() in repr(w) and "agent" in repr(w)
    # Same key and same account as the signer is not an agent.
    assert not Wallet.from_key(KEY, account_address=ADDR.upper().replace("0X", "0x")).is_agent


@pytest.mark.parametrize("account", ["0x123", "abcdef0123456789abcdef0123456789abcdef01", "0x" + "g" * 40, 5])
def test_bad_account_address(account: object) -> None:
    with pytest.raises(WalletError, match="account_address"):
        Wallet.from_key(KEY, account_address=account)  # type: ignore[arg-type]


def test_repr_str_format_never_show_key() -> None:
    w = Wallet.from_key(KEY, account_address=MASTER)
    old_style = "%s %r" % (w, w)  # noqa: UP031 - logging still formats this way
    for text in (repr(w), str(w), f"{w}", f"{w!r}", f"{w:>80}", old_style, str([w]), str({"w": w})):
        _assert_no_key(text)
        assert ADDR in text


def test_cannot_pickle_or_copy() -> None:
    w = Wallet.from_key(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(w)
    with pytest.raises(TypeError):
        copy.deepcopy(w)
    assert not hasattr(w, "__dict__")  # nothing ad hoc can be attached and then dumped


@pytest.mark.parametrize(
    "bad",
    [KEY[:-1], KEY + "0", "0x" + "zz" * 32, "", "0x" + "00" * 32, "0x" + "ff" * 32],
)
def test_bad_key_errors_do_not_echo_it(bad: str) -> None:
    with pytest.raises(WalletError) as ei:
        Wallet.from_key(bad)
    if len(bad) > 8:
        assert bad.lower().removeprefix("0x")[:16] not in str(ei.value).lower()


def test_from_key_rejects_non_string() -> None:
    with pytest.raises(WalletError):
        Wallet.from_key(bytes.fromhex(KEY_HEX))  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLMM_PRIVATE_KEY", KEY)
    assert Wallet.from_env().address == ADDR
    monkeypatch.setenv("MY_KEY", KEY_HEX)
    w = Wallet.from_env("MY_KEY", account_address=MASTER)
    assert w.address == ADDR and w.is_agent


def test_from_env_missing_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HLMM_PRIVATE_KEY", raising=False)
    with pytest.raises(WalletError, match="HLMM_PRIVATE_KEY is not set"):
        Wallet.from_env()
    monkeypatch.setenv("HLMM_PRIVATE_KEY", "   ")
    with pytest.raises(WalletError, match="HLMM_PRIVATE_KEY"):
        Wallet.from_env()


def test_from_env_bad_value_names_var_not_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLMM_PRIVATE_KEY", KEY_HEX[:-2])
    with pytest.raises(WalletError, match="HLMM_PRIVATE_KEY") as ei:
        Wallet.from_env()
    _assert_no_key(str(ei.value))


def _keystore(tmp_path: Path, password: str) -> Path:
    blob = eth_account.Account.encrypt(KEY, password, kdf="pbkdf2", iterations=2)  # tiny KDF cost: a test
    p = tmp_path / "key.json"
    p.write_text(json.dumps(blob))
    return p


def test_keystore_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _keystore(tmp_path, "hunter2")
    assert Wallet.from_keystore(p, "hunter2").address == ADDR
    assert Wallet.from_keystore(str(p), "hunter2", account_address=MASTER).is_agent
    monkeypatch.setenv("HLMM_KEYSTORE_PASSWORD", "hunter2")
    w = Wallet.from_keystore(p)
    assert w.address == ADDR
    sig = sign_l1_action(w, {"type": "noop"}, 1, None, None, True)
    assert recover_l1_signer({"type": "noop"}, 1, None, None, sig, True) == ADDR


def test_keystore_scrypt_default(tmp_path: Path) -> None:
    blob = eth_account.Account.encrypt(KEY, "pw", kdf="scrypt", iterations=2)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(blob))
    assert Wallet.from_keystore(p, "pw").address == ADDR


def test_keystore_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _keystore(tmp_path, "right")
    with pytest.raises(WalletError, match="wrong password"):
        Wallet.from_keystore(p, "wrong")
    monkeypatch.delenv("HLMM_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(WalletError, match="HLMM_KEYSTORE_PASSWORD"):
        Wallet.from_keystore(p)
    with pytest.raises(WalletError, match="not found"):
        Wallet.from_keystore(tmp_path / "missing.json", "x")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WalletError, match="cannot read"):
        Wallet.from_keystore(bad, "x")
    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps({"version": 3}))
    with pytest.raises(WalletError):
        Wallet.from_keystore(junk, "x")


def test_sign_digest_requires_32_bytes() -> None:
    with pytest.raises(WalletError):
        Wallet.from_key(KEY).sign_digest(b"\x00" * 31)


def test_equality_by_addresses() -> None:
    assert Wallet.from_key(KEY) == Wallet.from_key(KEY_HEX)
    assert Wallet.from_key(KEY) != Wallet.from_key(KEY, account_address=MASTER)
    assert len({Wallet.from_key(KEY), Wallet.from_key(KEY_HEX)}) == 1


def test_load_prefers_configured_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _keystore(tmp_path, "pw")
    monkeypatch.setenv("HLMM_KEYSTORE_PASSWORD", "pw")
    monkeypatch.setenv("HLMM_PRIVATE_KEY", "0x" + "22" * 32)  # a different key: must not be used
    assert Wallet.load(p, MASTER).address == ADDR
    assert Wallet.load(p, MASTER).account_address == MASTER.lower()
    assert Wallet.load().address == Wallet.from_key("0x" + "22" * 32).address
    monkeypatch.delenv("HLMM_PRIVATE_KEY")
    with pytest.raises(WalletError, match="HLMM_PRIVATE_KEY"):
        Wallet.load()
