"""Parity with the official SDK on >= 1,000 generated actions: action dicts, signatures and /exchange bodies.

The SDK's own ``Exchange`` builds each action (with HTTP ``post`` replaced by a capture and the nonce pinned),
so this checks the SDK's key order and value types end to end, not a re-typed copy of them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import eth_account
import msgpack
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.utils import constants
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid

from hlmm.market.instrument import Instrument, asset_id
from hlmm.venue.base import PlaceOrder, Tif
from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.signing import exchange_request, recover_l1_signer, sign_l1_action
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x" + "5a" * 31 + "01"
N_CASES = 1200
SEED = 20240611


def _instruments(rng: random.Random) -> list[Instrument]:
    out = []
    for i in range(24):  # first dex: any perp index
        idx = rng.randrange(0, 300) if i else 0
        out.append(Instrument(f"C{idx}X{i}", idx, rng.randrange(0, 6)))
    for i in range(24):  # HIP-3 dexes: 110000+
        dex, idx = rng.randrange(1, 12), rng.randrange(0, 60)
        out.append(Instrument(f"dx{dex}:H{idx}X{i}", asset_id(idx, dex), rng.randrange(0, 6)))
    return out


class SdkHarness:
    """SDK Exchange objects (mainnet/testnet) that return the request body instead of posting it."""

    def __init__(self, instruments: list[Instrument], monkeypatch: pytest.MonkeyPatch) -> None:
        self.nonce = 0
        monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: self.nonce)
        acct = eth_account.Account.from_key(KEY)
        self.ex: dict[bool, Exchange] = {}
        for is_mainnet, url in ((True, constants.MAINNET_API_URL), (False, constants.TESTNET_API_URL)):
            ex = Exchange(acct, url, meta={"universe": []}, spot_meta={"universe": [], "tokens": []})
            for inst in instruments:  # HIP-3 ids would need a network lookup of perpDexs; set them directly
                ex.info.coin_to_asset[inst.coin] = inst.asset
                ex.info.name_to_coin[inst.coin] = inst.coin
            ex.post = lambda path, payload: payload  # type: ignore[method-assign]
            self.ex[is_mainnet] = ex

    def run(self, is_mainnet: bool, nonce: int, vault: str | None, expires: int | None,
            call: Callable[[Exchange], Any]) -> dict:  # fmt: skip
        ex = self.ex[is_mainnet]
        ex.vault_address = vault
        ex.set_expires_after(expires)
        self.nonce = nonce
        return call(ex)


def _sdk_order(inst: Instrument, o: PlaceOrder) -> dict:
    return {
        "coin": inst.coin,
        "is_buy": o.is_buy,
        "sz": o.sz,
        "limit_px": o.px,
        "order_type": {"limit": {"tif": o.tif.value}},
        "reduce_only": o.reduce_only,
        "cloid": Cloid(o.cloid) if o.cloid else None,
    }


def _random_order(rng: random.Random, inst: Instrument) -> PlaceOrder:
    is_buy = rng.random() < 0.5
    # Rounded by the Instrument, as the engine does; at least 10 ticks so nothing rounds to zero.
    px = inst.round_px(10 ** rng.uniform(1 - inst.price_decimals, 5.6), is_buy)
    sz = inst.floor_size(10 ** rng.uniform(-inst.sz_decimals, 4)) or inst.lot
    cloid = rng.choice([wire.new_cloid(), wire.cloid_from_int(rng.randrange(0, 2**128)), ""])
    tif = rng.choice(list(Tif))
    return PlaceOrder(inst.coin, cloid, is_buy, px, sz, tif=tif, reduce_only=rng.random() < 0.2)


def _case(rng: random.Random, insts: list[Instrument], nonce: int) -> tuple[str, dict, Callable[[Exchange], Any]]:
    """(kind, our action, SDK call producing the same action)."""
    kind = rng.choices(
        ["order", "cancel", "cancelByCloid", "batchModify", "scheduleCancel", "updateLeverage", "noop"],
        weights=[40, 12, 12, 14, 8, 8, 6],
    )[0]
    if kind == "order":
        pairs = [(inst, _random_order(rng, inst)) for inst in rng.choices(insts, k=rng.randint(1, 12))]
        grouping = rng.choice(["na", "na", "normalTpsl", "positionTpsl"])
        builder = {"b": "0x" + rng.randbytes(20).hex(), "f": rng.randrange(0, 100)} if rng.random() < 0.2 else None
        ours = wire.order_action([wire.order_to_wire(i, o) for i, o in pairs], grouping, builder)
        reqs = [_sdk_order(i, o) for i, o in pairs]
        return kind, ours, lambda ex: ex.bulk_orders(reqs, dict(builder) if builder else None, grouping)
    if kind == "cancel":
        picks = [(rng.choice(insts), rng.randrange(0, 2**48)) for _ in range(rng.randint(1, 10))]
        ours = wire.cancel_action([(i.asset, oid) for i, oid in picks])
        return kind, ours, lambda ex: ex.bulk_cancel([{"coin": i.coin, "oid": oid} for i, oid in picks])
    if kind == "cancelByCloid":
        picks = [(rng.choice(insts), wire.new_cloid()) for _ in range(rng.randint(1, 10))]
        ours = wire.cancel_by_cloid_action([(i.asset, c) for i, c in picks])
        return kind, ours, lambda ex: ex.bulk_cancel_by_cloid([{"coin": i.coin, "cloid": Cloid(c)} for i, c in picks])
    if kind == "batchModify":
        mods = []
        for inst in rng.choices(insts, k=rng.randint(1, 8)):
            o = _random_order(rng, inst)
            ref: int | str = rng.randrange(0, 2**48) if rng.random() < 0.5 else wire.new_cloid()
            mods.append((inst, o, ref))
        ours = wire.batch_modify_action([(ref, wire.order_to_wire(i, o)) for i, o, ref in mods])
        reqs = [{"oid": Cloid(ref) if isinstance(ref, str) else ref, "order": _sdk_order(i, o)} for i, o, ref in mods]
        return kind, ours, lambda ex: ex.bulk_modify_orders_new(reqs)
    if kind == "scheduleCancel":
        t = rng.choice([None, rng.randrange(1_600_000_000_000, 1_900_000_000_000)])
        return kind, wire.schedule_cancel_action(t), lambda ex: ex.schedule_cancel(t)
    if kind == "updateLeverage":
        inst, cross, lev = rng.choice(insts), rng.random() < 0.5, rng.randint(1, 50)
        ours = wire.update_leverage_action(inst.asset, cross, lev)
        return kind, ours, lambda ex: ex.update_leverage(lev, inst.coin, cross)
    return kind, wire.noop_action(), lambda ex: ex.noop(nonce)  # the SDK's noop takes its nonce explicitly


def test_parity_with_sdk_on_generated_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    insts = _instruments(rng)
    harness = SdkHarness(insts, monkeypatch)
    wallet = Wallet.from_key(KEY)
    kinds: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    for _ in range(N_CASES):
        nonce = rng.randrange(1_600_000_000_000, 1_900_000_000_000)
        kind, ours, call = _case(rng, insts, nonce)
        vault = "0x" + rng.randbytes(20).hex() if rng.random() < 0.3 else None
        expires = nonce + rng.randrange(1_000, 120_000) if rng.random() < 0.3 else None
        is_mainnet = rng.random() < 0.5
        body = harness.run(is_mainnet, nonce, vault, expires, call)

        assert body["action"] == ours, kind
        assert msgpack.packb(body["action"]) == msgpack.packb(ours), kind  # same key order and value types
        sig = sign_l1_action(wallet, ours, nonce, vault, expires, is_mainnet)
        theirs = body["signature"]
        assert sig == theirs  # r, s as the same strings; v equal
        assert (int(sig["r"], 16), int(sig["s"], 16), sig["v"]) == (
            int(theirs["r"], 16), int(theirs["s"], 16), theirs["v"]
        )  # fmt: skip
        assert sig == sdk.sign_l1_action(eth_account.Account.from_key(KEY), ours, vault, nonce, expires, is_mainnet)
        assert exchange_request(ours, sig, nonce, vault, expires) == body
        kinds[kind] += 1
        flags.update(f for f, on in (("vault", vault), ("expires", expires), ("mainnet", is_mainnet),
                                     ("testnet", not is_mainnet)) if on)  # fmt: skip
    assert sum(kinds.values()) >= 1000
    assert all(kinds[k] >= 40 for k in ("order", "cancel", "cancelByCloid", "batchModify", "scheduleCancel",
                                        "updateLeverage", "noop")), kinds  # fmt: skip
    assert all(flags[f] >= 200 for f in ("vault", "expires", "mainnet", "testnet")), flags


def test_recover_on_generated_actions() -> None:
    rng = random.Random(SEED + 1)
    insts = _instruments(rng)
    wallet = Wallet.from_key(KEY)
    for _ in range(100):
        inst = rng.choice(insts)
        action = wire.order_action([wire.order_to_wire(inst, _random_order(rng, inst))])
        nonce = rng.randrange(1, 2**63)
        sig = sign_l1_action(wallet, action, nonce, None, None, True)
        assert recover_l1_signer(action, nonce, None, None, sig, True) == wallet.address
        action["orders"][0]["b"] = not action["orders"][0]["b"]
        assert recover_l1_signer(action, nonce, None, None, sig, True) != wallet.address
