"""REST, WS and meta resolution against the loopback fake Hyperliquid."""

from __future__ import annotations

import asyncio

import pytest

from hlmm.venue.hyperliquid.errors import ClientError, RateLimitError, RequestTimeout, ServerError
from hlmm.venue.hyperliquid.meta import MetaError, build_registry, hip3_fee, resolve_registry
from hlmm.venue.hyperliquid.nonce import NonceManager
from hlmm.venue.hyperliquid.rest import ExchangeClient, InfoClient, ws_url_for
from hlmm.venue.hyperliquid.wallet import Wallet
from hlmm.venue.hyperliquid.ws import WsClient
from tests.venue.hyperliquid.fake_hl import META, META_HYNA, PERP_DEXS, FakeHL

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


@pytest.fixture
async def fake():
    w = Wallet.from_key(KEY)
    f = await FakeHL(w.address).start()
    yield f
    await f.stop()


async def _until(cond, timeout: float = 5.0) -> None:
    t0 = asyncio.get_running_loop().time()
    while not cond():
        if asyncio.get_running_loop().time() - t0 > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


# ---- meta ---------------------------------------------------------------------------------------------------
def test_meta_registry_hip3_ids_and_fees() -> None:
    reg = build_registry(["BTC", "hyna:HYPE"], PERP_DEXS, {"": META, "hyna": META_HYNA}, hip3_fee_scale=0.5)
    assert reg.get("BTC").asset == 0 and reg.get("ETH").asset == 1
    assert reg.get("hyna:HYPE").asset == 110000 and reg.get("hyna:BTC").asset == 110001
    assert reg.get("hyna:HYPE").sz_decimals == 2
    assert reg.get("hyna:HYPE").maker_fee == pytest.approx(0.00015 * 1.5)
    assert "OLD" not in reg  # delisted
    assert hip3_fee(0.0001, 2.0) == pytest.approx(0.0004) and hip3_fee(-0.00001, 3.0) == -0.00001
    with pytest.raises(MetaError, match="not in perpDexs"):
        build_registry(["xyz:TSLA"], PERP_DEXS, {"xyz": META})
    with pytest.raises(MetaError, match="not listed"):
        build_registry(["hyna:SOL"], PERP_DEXS, {"hyna": META_HYNA})
    # a second HIP-3 dex: index = list position
    reg2 = build_registry(["abc:X"], [None, {"name": "hyna"}, {"name": "abc"}], {"abc": {"universe": [
        {"name": "abc:Y", "szDecimals": 1}, {"name": "abc:X", "szDecimals": 3}]}})
    assert reg2.get("abc:X").asset == 100000 + 2 * 10000 + 1


async def test_resolve_registry_over_rest(fake: FakeHL) -> None:
    info = InfoClient(fake.url)
    reg = await resolve_registry(info, ["hyna:HYPE"])
    await info.close()
    assert reg.get("hyna:HYPE").asset == 110000
    assert {"type": "meta", "dex": "hyna"} in fake.info_requests and {"type": "perpDexs"} in fake.info_requests


# ---- REST ---------------------------------------------------------------------------------------------------
async def test_info_reads(fake: FakeHL) -> None:
    info = InfoClient(fake.url)
    try:
        rl = await info.user_rate_limit(fake.account)
        assert rl["nRequestsCap"] - rl["nRequestsUsed"] == 10_400
        assert (await info.l2_book("BTC"))["coin"] == "BTC"
        assert len(await info.candle_snapshot("BTC", "1m", 0, 10**13)) == 30
        assert await info.open_orders(fake.account) == []
        assert (await info.order_status(fake.account, "0x" + "ab" * 16))["status"] == "unknownOid"
    finally:
        await info.close()


async def test_exchange_http_errors_are_typed(fake: FakeHL) -> None:
    ex = ExchangeClient(fake.url, Wallet.from_key(KEY), NonceManager(), is_mainnet=False, timeout_s=0.3)
    try:
        await ex.noop()
        fake.http_status = 429
        with pytest.raises(RateLimitError):
            await ex.noop()
        fake.http_status = 502
        with pytest.raises(ServerError):
            await ex.noop()
        fake.http_status = 422
        with pytest.raises(ClientError):
            await ex.noop()
        fake.http_status = None
        fake.exchange_delay_s = 1.0
        with pytest.raises(RequestTimeout):
            await ex.noop()
    finally:
        await ex.close()


def test_ws_url_for() -> None:
    assert ws_url_for("https://api.hyperliquid.xyz") == "wss://api.hyperliquid.xyz/ws"
    assert ws_url_for("http://127.0.0.1:8765/") == "ws://127.0.0.1:8765/ws"


# ---- WS -----------------------------------------------------------------------------------------------------
async def test_ws_greeting_ignored_subscribe_reconnect_resubscribe(fake: FakeHL) -> None:
    got: list[tuple[str, object]] = []
    status: list[tuple[bool, str]] = []
    ws = WsClient(fake.ws_url, lambda ts, ch, d: got.append((ch, d)), lambda ts, up, d: status.append((up, d)),
                  backoff_base_s=0.05, backoff_max_s=0.1, seed=1)
    await ws.subscribe({"type": "l2Book", "coin": "BTC"})
    await ws.start()
    try:
        assert await ws.wait_connected(5)
        await _until(lambda: fake.ws_clients and fake.ws_clients[0][1])
        book = {"coin": "BTC", "time": 1, "levels": [[{"px": "1", "sz": "1", "n": 1}], []]}
        await fake.push("l2Book", book, {"coin": "BTC"})
        await _until(lambda: got)
        assert got == [("l2Book", book)]  # no greeting, no subscriptionResponse
        await fake.drop_ws()
        await _until(lambda: fake.n_ws_connects == 2 and fake.ws_clients and fake.ws_clients[0][1])
        assert fake.ws_clients[0][1] == [{"type": "l2Book", "coin": "BTC"}]  # resubscribed
        await _until(lambda: len(status) >= 3)
        assert [s[0] for s in status[:3]] == [True, False, True]
        assert status[2][1] == "reconnected"
    finally:
        await ws.close()


async def test_ws_ping_on_silence(fake: FakeHL) -> None:
    ws = WsClient(fake.ws_url, lambda *a: None, silence_s=0.2, dead_s=5.0, ping_interval_s=50.0)
    await ws.start()
    try:
        await _until(lambda: fake.pings >= 1, 5)
    finally:
        await ws.close()


async def test_ws_post_and_rest_fallback(fake: FakeHL) -> None:
    wallet = Wallet.from_key(KEY)
    ws = WsClient(fake.ws_url, lambda *a: None, backoff_base_s=0.05)
    await ws.start()
    ex = ExchangeClient(fake.url, wallet, NonceManager(), is_mainnet=False)
    ex.attach_ws(ws.post)
    try:
        assert await ws.wait_connected(5)
        data = await ws.post("info", {"type": "l2Book", "coin": "BTC"}, 2.0)
        assert data["coin"] == "BTC"
        await ex.noop()  # over WS post
        assert ws.n_fallbacks == 0 and len(fake.actions) == 1
        fake.ignore_posts = True  # WS post times out -> same signed body over REST
        await ex.send({"type": "noop"}, timeout_s=0.3)
        assert ws.n_fallbacks == 1 and len(fake.actions) == 2
        fake.ignore_posts = False
        await ws.close()  # disconnected -> REST directly
        await ex.noop()
        assert ws.n_fallbacks == 2 and len(fake.actions) == 3
    finally:
        await ws.close()
        await ex.close()
