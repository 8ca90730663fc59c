"""Shared helpers: a core with a synthetic book, signing wallets, signed request bodies."""

from __future__ import annotations

import itertools
import time

import pytest

from hlmm.market.events import BookLevel, BookSnapshot
from hlmm.market.instrument import default_registry
from hlmm.sim.server.core import ExchangeCore, ServerConfig
from hlmm.venue.hyperliquid.signing import approve_agent_request, signed_l1_request
from hlmm.venue.hyperliquid.wallet import Wallet

KEY_A = "0x" + "11" * 32
KEY_B = "0x" + "22" * 32
KEY_AGENT = "0x" + "33" * 32
NOW = 1_760_000_000.0


def book(coin: str, bid: float, ask: float, sz: float = 1.0, n: int = 5, tick: float = 1.0, t: float = NOW):
    bids = tuple(BookLevel(bid - i * tick, sz) for i in range(n))
    asks = tuple(BookLevel(ask + i * tick, sz) for i in range(n))
    return BookSnapshot(coin, t, t, bids, asks)


class Signer:
    """Builds signed /exchange bodies with strictly increasing nonces (testnet source, as the SDK uses locally)."""

    _ctr = itertools.count()

    def __init__(self, key: str, account: str | None = None, is_mainnet: bool = False) -> None:
        self.wallet = Wallet.from_key(key, account)
        self.is_mainnet = is_mainnet
        self.nonce = int(NOW * 1000)

    @property
    def address(self) -> str:
        return self.wallet.address

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def body(self, action: dict, nonce: int | None = None, vault: str | None = None,
             expires: int | None = None) -> dict:
        return signed_l1_request(self.wallet, action, self.next_nonce() if nonce is None else nonce, vault, expires,
                                 self.is_mainnet)

    def approve(self, agent: str, nonce: int | None = None) -> dict:
        return approve_agent_request(self.wallet, agent, None, self.next_nonce() if nonce is None else nonce,
                                     self.is_mainnet)


def order(a: int, is_buy: bool, px: str, sz: str, tif: str = "Alo", cloid: str | None = None,
          reduce_only: bool = False) -> dict:
    w = {"a": a, "b": is_buy, "p": px, "s": sz, "r": reduce_only, "t": {"limit": {"tif": tif}}}
    if cloid is not None:
        w["c"] = cloid
    return w


def order_action(*orders: dict) -> dict:
    return {"type": "order", "orders": list(orders), "grouping": "na"}


@pytest.fixture
def core() -> ExchangeCore:
    c = ExchangeCore(default_registry(), ServerConfig(starting_usdc=100_000.0))
    c.on_market(book("BTC", 70_000.0, 70_001.0), NOW)
    c.on_market(book("hyna:HYPE", 33.0, 33.01, sz=100.0, tick=0.01), NOW)
    return c


@pytest.fixture
def alice() -> Signer:
    return Signer(KEY_A)


@pytest.fixture
def bob() -> Signer:
    return Signer(KEY_B)


def wall_now() -> float:
    return time.time()
