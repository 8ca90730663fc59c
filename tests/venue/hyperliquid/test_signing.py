"""Signing: published vectors (reference §4), recovery, user-signed actions, request body."""

from __future__ import annotations

import copy

import eth_account
import msgpack
import pytest
from hyperliquid.utils import signing as sdk

from hlmm.venue.hyperliquid.signing import (
    AGENT_TYPEHASH,
    L1_DOMAIN_SEPARATOR,
    SigningError,
    action_hash,
    approve_agent_action,
    approve_agent_request,
    exchange_request,
    keccak256,
    recover_l1_signer,
    recover_user_signed,
    sign_l1_action,
    sign_user_signed_action,
    signed_l1_request,
)
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
ADDR = "0x14791697260e4c9a71f18484c9f997b308e59325"
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"


@pytest.fixture(scope="module")
def wallet() -> Wallet:
    return Wallet.from_key(KEY)


def _order(tif: str = "Gtc", **extra: object) -> dict:
    o = {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": tif}}}
    o.update(extra)
    return {"type": "order", "orders": [o], "grouping": "na"}


DUMMY = {"type": "dummy", "num": 100000000000}
TRIGGER = {
    "type": "order",
    "orders": [
        {"a": 1, "b": True, "p": "100", "s": "100", "r": False,
         "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}}}
    ],
    "grouping": "na",
}  # fmt: skip

# (action, nonce, vault, expiresAfter, cid, mainnet (r, s, v) | None, testnet (r, s, v) | None)
VECTORS = [
    (DUMMY, 0, None, None, "f528daee6a0bd11407b483cfcd9a48c56884180b70ee86f124053e5fc1bf4d57",
     ("0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
      "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
     ("0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
      "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28)),
    (DUMMY, 0, VAULT, None, "de9e09a7a3da45cc694096d4bfdcd89bc1b892d05497c5ecc1f56c335945184c",
     ("0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
      "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
     ("0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
      "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27)),
    (_order(), 0, None, None, "884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1",
     ("0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
      "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
     ("0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
      "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27)),
    (_order(c="0x00000000000000000000000000000001"), 0, None, None,
     "0ba500cedd8f4ba6ded620a0b1cd04f124d9ba745e2e2893fcc763bcc1444af5",
     ("0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
      "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
     ("0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
      "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28)),
    (TRIGGER, 0, None, None, "430a86fb9876e901920d931f5bb20c9d011f6389bd179f39a73c09e6219adcad",
     ("0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
      "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405", 27), None),
    ({"type": "scheduleCancel"}, 0, None, None, "a2887a3147b6542306b61d311a056fd1753913d63cc904f30cba61712a98f4ae",
     ("0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
      "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27), None),
    ({"type": "scheduleCancel", "time": 123456789}, 0, None, None,
     "4be18e445114437c5d1d9dd35a09f5601a3cc34ed4ac94a0281251b9bd8f6832",
     ("0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
      "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b", 28), None),
    (_order("Ioc") | {"orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False,
                                  "t": {"limit": {"tif": "Ioc"}}}]},
     1677777606040, None, None, "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908", None, None),
    ({"type": "cancel", "cancels": [{"a": 0, "o": 123456}]}, 1700000000000, None, 1700000060000,
     "40ccd502760393338d2998438af15788fb9b39f455531d208a31c0aa038a0734",
     ("0x60f5ea5d75a1438c423091f8ec3934e383527d662de844151a6010d195bc4ede",
      "0x43d705b901600c501d701746d3ee9ed02bb3c9712dbe7626d13e757046ba9c86", 27), None),
    ({"type": "order", "orders": [
        {"a": 0, "b": True, "p": "64000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Alo"}}},
        {"a": 0, "b": False, "p": "64010", "s": "0.00123", "r": False, "t": {"limit": {"tif": "Alo"}}}],
      "grouping": "na"}, 1700000000000, None, None,
     "682acc7f1850660c4155993b8f9629e7bbf1854707a1f278aeecf5e1cbf07e08",
     ("0xd607695f85d0c60b8bd976a6a94af86fb942ddd1a8be8174c05c338fb77787b1",
      "0x459a25d5dc8f70eda4ba5f743d19cdc3cc81114cd902e36da74df1acf7b590e3", 27), None),
]  # fmt: skip


def test_wallet_address_matches_vector(wallet: Wallet) -> None:
    assert wallet.address == ADDR


def test_precomputed_constants() -> None:
    assert L1_DOMAIN_SEPARATOR.hex() == "d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"
    assert keccak256(b"Agent(string source,bytes32 connectionId)") == AGENT_TYPEHASH


def test_msgpack_vectors() -> None:
    assert msgpack.packb(DUMMY).hex() == "82a474797065a564756d6d79a36e756dcf000000174876e800"
    assert msgpack.packb(_order()).hex() == (
        "83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2a17481a56c696d69"
        "7481a3746966a3477463a867726f7570696e67a26e61"
    )
    assert msgpack.packb({"type": "scheduleCancel"}).hex() == "81a474797065ae7363686564756c6543616e63656c"


@pytest.mark.parametrize("vec", VECTORS, ids=range(len(VECTORS)))
def test_vectors(wallet: Wallet, vec: tuple) -> None:
    action, nonce, vault, expires, cid, main, test = vec
    assert action_hash(action, nonce, vault, expires).hex() == cid
    for is_mainnet, expected in ((True, main), (False, test)):
        if expected is None:
            continue
        sig = sign_l1_action(wallet, action, nonce, vault, expires, is_mainnet)
        assert sig == {"r": expected[0], "s": expected[1], "v": expected[2]}
        assert recover_l1_signer(action, nonce, vault, expires, sig, is_mainnet) == ADDR


def test_expires_after_bytes_layout() -> None:
    # The derived vector spells out the tail of the hashed bytes; check the layout against the SDK's.
    action = {"type": "cancel", "cancels": [{"a": 0, "o": 123456}]}
    ours = action_hash(action, 1700000000000, None, 1700000060000)
    assert ours == sdk.action_hash(action, None, 1700000000000, 1700000060000)
    tail = bytes.fromhex("0000018bcfe56800" + "00" + "00" + "0000018bcfe65260")
    assert ours == keccak256(msgpack.packb(action) + tail)


def test_short_r_formatted_like_sdk(wallet: Wallet) -> None:
    # Vector 1's r has 63 hex digits: the SDK drops leading zeros, so must we.
    sig = sign_l1_action(wallet, DUMMY, 0, None, None, True)
    assert len(sig["r"]) == 2 + 63
    assert sig == sdk.sign_l1_action(eth_account.Account.from_key(KEY), DUMMY, None, 0, None, True)


def test_tampered_action_recovers_other_address(wallet: Wallet) -> None:
    action = _order("Alo")
    sig = sign_l1_action(wallet, action, 5, None, None, True)
    assert recover_l1_signer(action, 5, None, None, sig, True) == ADDR
    tampered = copy.deepcopy(action)
    tampered["orders"][0]["p"] = "100.0"  # a trailing zero is a different order to the exchange
    assert recover_l1_signer(tampered, 5, None, None, sig, True) != ADDR
    assert recover_l1_signer(action, 6, None, None, sig, True) != ADDR
    assert recover_l1_signer(action, 5, VAULT, None, sig, True) != ADDR
    assert recover_l1_signer(action, 5, None, 7, sig, True) != ADDR
    assert recover_l1_signer(action, 5, None, None, sig, False) != ADDR
    flipped = dict(sig, v=55 - sig["v"])
    assert recover_l1_signer(action, 5, None, None, flipped, True) != ADDR


def test_recover_accepts_int_and_zero_one_v(wallet: Wallet) -> None:
    sig = sign_l1_action(wallet, DUMMY, 9, None, None, True)
    as_ints = {"r": int(sig["r"], 16), "s": int(sig["s"], 16), "v": sig["v"] - 27}
    assert recover_l1_signer(DUMMY, 9, None, None, as_ints, True) == ADDR


@pytest.mark.parametrize(
    "sig",
    [{}, {"r": "0x1", "s": "0x1"}, {"r": "zz", "s": "0x1", "v": 27}, {"r": "0x0", "s": "0x1", "v": 27},
     {"r": "0x1", "s": "0x1", "v": 29}, {"r": "0x1", "s": hex(2**256), "v": 27}],
)  # fmt: skip
def test_recover_rejects_malformed_signature(sig: dict) -> None:
    with pytest.raises(SigningError):
        recover_l1_signer(DUMMY, 0, None, None, sig, True)


@pytest.mark.parametrize(
    ("nonce", "vault", "expires"),
    [(-1, None, None), (2**64, None, None), (True, None, None), (1.0, None, None), (0, "0x1234", None),
     (0, VAULT + "00", None), (0, None, -5), (0, None, 1.5)],
)  # fmt: skip
def test_action_hash_rejects_bad_input(nonce: object, vault: object, expires: object) -> None:
    with pytest.raises(SigningError):
        action_hash(DUMMY, nonce, vault, expires)  # type: ignore[arg-type]


def test_action_hash_rejects_unpackable_action() -> None:
    with pytest.raises(SigningError):
        action_hash({"type": "order", "x": object()}, 0, None, None)


@pytest.mark.parametrize(
    "action",
    [{"type": "order", "orders": [{"a": 0, "b": True, "p": 100.5, "s": "1"}]}, {"type": "x", "n": [1, (2, 3.0)]}],
)
def test_action_hash_rejects_floats(action: dict) -> None:
    with pytest.raises(SigningError, match="float"):
        action_hash(action, 0, None, None)


def test_vault_case_does_not_change_hash() -> None:
    assert action_hash(DUMMY, 1, VAULT.upper().replace("0X", "0x"), None) == action_hash(DUMMY, 1, VAULT, None)


# ---- user-signed ------------------------------------------------------------------
USD_SEND_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "destination", "type": "string"},
    {"name": "amount", "type": "string"},
    {"name": "time", "type": "uint64"},
]


def test_usd_send_vector(wallet: Wallet) -> None:
    action = {"destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a", "amount": "1", "time": 1687816341423}
    sig = sign_user_signed_action(wallet, action, USD_SEND_TYPES, "HyperliquidTransaction:UsdSend", False)
    assert sig == {
        "r": "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
        "s": "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7",
        "v": 27,
    }
    assert action["signatureChainId"] == "0x66eee" and action["hyperliquidChain"] == "Testnet"
    assert recover_user_signed(action, USD_SEND_TYPES, "HyperliquidTransaction:UsdSend", sig) == ADDR


@pytest.mark.parametrize("is_mainnet", [True, False])
@pytest.mark.parametrize("name", [None, "", "mm-bot", "ü名"])
def test_approve_agent_matches_sdk(wallet: Wallet, is_mainnet: bool, name: str | None) -> None:
    agent = eth_account.Account.from_key("0x" + "11" * 32)
    nonce = 1_700_000_123_456
    action, types, primary = approve_agent_action(agent.address, name, nonce, is_mainnet)
    ours = sign_user_signed_action(wallet, action, types, primary, is_mainnet)
    sdk_action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": name or "", "nonce": nonce}
    theirs = sdk.sign_agent(eth_account.Account.from_key(KEY), sdk_action, is_mainnet)
    assert ours == theirs
    assert int(ours["r"], 16) == int(theirs["r"], 16) and int(ours["s"], 16) == int(theirs["s"], 16)
    assert recover_user_signed(action, types, primary, ours) == ADDR
    tampered = dict(action, nonce=nonce + 1)
    assert recover_user_signed(tampered, types, primary, ours) != ADDR


def test_approve_agent_request_drops_empty_name_like_sdk(wallet: Wallet) -> None:
    agent = "0x" + "ab" * 20
    body = approve_agent_request(wallet, agent, None, 42, True)
    assert "agentName" not in body["action"]
    assert list(body) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    signed = dict(body["action"], agentName="")
    assert recover_user_signed(signed, *approve_agent_action(agent, None, 42, True)[1:], body["signature"]) == ADDR
    named = approve_agent_request(wallet, agent, "bot", 42, True)
    assert named["action"]["agentName"] == "bot"


def test_user_signed_rejects_chain_mismatch_and_missing_field(wallet: Wallet) -> None:
    with pytest.raises(SigningError, match="Mainnet"):
        sign_user_signed_action(
            wallet, {"hyperliquidChain": "Mainnet", "destination": "x", "amount": "1", "time": 1},
            USD_SEND_TYPES, "HyperliquidTransaction:UsdSend", False,
        )  # fmt: skip
    with pytest.raises(SigningError, match="amount"):
        sign_user_signed_action(wallet, {"destination": "x", "time": 1}, USD_SEND_TYPES, "X:UsdSend", True)
    with pytest.raises(SigningError):
        sign_user_signed_action(
            wallet, {"destination": "x", "amount": "1", "time": -1}, USD_SEND_TYPES, "X:UsdSend", True
        )
    with pytest.raises(SigningError):
        approve_agent_action("0xnot-an-address", None, 1, True)


def test_user_signed_field_types_match_eth_account(wallet: Wallet) -> None:
    # A synthetic struct exercising every atomic type our encoder supports, checked against eth_account.
    types = [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "user", "type": "address"},
        {"name": "enabled", "type": "bool"},
        {"name": "h", "type": "bytes32"},
        {"name": "blob", "type": "bytes"},
        {"name": "delta", "type": "int64"},
        {"name": "big", "type": "uint256"},
    ]
    action = {
        "user": "0x" + "cd" * 20, "enabled": True, "h": bytes(range(32)), "blob": b"\x01\x02\x03",
        "delta": -12345, "big": 2**200 + 7,
    }  # fmt: skip
    ours = sign_user_signed_action(wallet, dict(action), types, "HyperliquidTransaction:Test", True)
    theirs = sdk.sign_user_signed_action(
        eth_account.Account.from_key(KEY), dict(action), types, "HyperliquidTransaction:Test", True
    )
    assert ours == theirs


# ---- request body -------------------------------------------------------------------
def test_exchange_request_shape(wallet: Wallet) -> None:
    action = {"type": "noop"}
    sig = sign_l1_action(wallet, action, 77, VAULT, 99, True)
    body = exchange_request(action, sig, 77, VAULT.upper().replace("0X", "0x"), 99)
    assert body == {"action": action, "nonce": 77, "signature": sig, "vaultAddress": VAULT, "expiresAfter": 99}
    assert list(body) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert signed_l1_request(wallet, action, 77, VAULT, 99, True) == body
    plain = exchange_request(action, sig, 77, None, None)
    assert plain["vaultAddress"] is None and plain["expiresAfter"] is None
    assert exchange_request({"type": "usdClassTransfer"}, sig, 1, VAULT, None)["vaultAddress"] is None
    with pytest.raises(SigningError):
        exchange_request(action, sig, -1, None, None)
    with pytest.raises(SigningError):
        exchange_request(action, sig, 1, "0xabc", None)
