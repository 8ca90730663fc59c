"""Recorder core with fake message streams: buffering, flush timer, rotation, crash safety, gaps, dedup, raw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from hlmm.data.parquet import read_gaps, read_parquet_dir, recover_spools
from hlmm.data.raw_ws import book_message, hl_num, trades_message
from hlmm.data.recorder import BINANCE, HL, Recorder, RecorderError, parse_book_ticker, resolve_ref_symbols
from hlmm.data.replay import open_source
from hlmm.market.events import AssetCtx, Bbo, BookSnapshot, RefQuote, Trade
from hlmm.sim.synthetic import SyntheticMarket, preset

T0 = 1_750_000_000.0
NS = 1_000_000_000


def ns(ts: float) -> int:
    return round(ts * 1e9)


def hl_stream(coin: str, seconds: float, seed: int = 1, start: float = T0) -> list[tuple[int, dict[str, Any]]]:
    """(local ns, HL message) pairs from the synthetic market, plus a bbo and an activeAssetCtx per book."""
    out: list[tuple[int, dict[str, Any]]] = []
    p = preset("btc", seed=seed, coin=coin) if coin in ("BTC", "hyna:BTC") else preset("hype_quiet", seed=seed)
    for ev in SyntheticMarket(p, start_ts=start).events(seconds):
        t = ns(ev.ts)
        if isinstance(ev, BookSnapshot):
            out.append((t, book_message(ev)))
            b, a = ev.bids[0], ev.asks[0]
            out.append((t + 1000, {"channel": "bbo", "data": {"coin": ev.coin, "time": round(ev.ts_exchange * 1000),
                        "bbo": [{"px": hl_num(b.px), "sz": hl_num(b.sz), "n": b.n},
                                {"px": hl_num(a.px), "sz": hl_num(a.sz), "n": a.n}]}}))  # fmt: skip
            out.append((t + 2000, {"channel": "activeAssetCtx", "data": {"coin": ev.coin, "ctx": {
                "markPx": hl_num(ev.mid), "oraclePx": hl_num(ev.mid), "funding": "0.0000125",
                "openInterest": "100.5"}}}))  # fmt: skip
        elif isinstance(ev, Trade):
            out.append((t, trades_message([ev])))
    return out


def feed(rec: Recorder, stream: list[tuple[int, dict[str, Any]]], as_bytes: bool = True) -> None:
    for t, msg in stream:
        rec.on_hl_message(t, orjson.dumps(msg) if as_bytes else msg)
        rec.tick(t)


def test_record_then_replay_counts_and_events_match(tmp_path: Path) -> None:
    stream = hl_stream("BTC", 30.0)
    rec = Recorder(tmp_path, ["BTC"], raw=True)
    rec.on_hl_message(stream[0][0], b"Websocket connection established.")
    rec.on_hl_message(stream[0][0], {"channel": "subscriptionResponse", "data": {}})
    feed(rec, stream)
    st = rec.close()
    assert st.ignored == 2 and st.parse_errors == 0 and st.gaps == 0
    evs = list(open_source(tmp_path, "BTC"))
    by_type = {k: sum(isinstance(e, k) for e in evs) for k in (BookSnapshot, Bbo, AssetCtx, Trade)}
    assert by_type[BookSnapshot] == st.rows["book"] > 40
    assert by_type[Bbo] == st.rows["bbo"] and by_type[AssetCtx] == st.rows["asset_ctx"]
    assert by_type[Trade] == st.rows["trades"] > 10
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    # The raw capture replays to exactly the same events (same parsers, same local times).
    raw_dir = tmp_path / "raw"
    assert list(open_source(raw_dir, "BTC")) == evs
    assert all(e.ts > e.ts_exchange for e in evs if isinstance(e, (BookSnapshot, Trade)))  # latency kept


def test_flush_timer_bounds_crash_loss(tmp_path: Path) -> None:
    stream = hl_stream("BTC", 20.0)
    rec = Recorder(tmp_path, ["BTC"], flush_s=2.0)
    feed(rec, stream)
    last_t = stream[-1][0] / NS
    # The process "crashes" here: no close(). What reached the disk is recovered from the spools.
    assert not list(tmp_path.rglob("*.parquet"))
    recover_spools(tmp_path)
    got = list(read_parquet_dir(tmp_path, "BTC"))
    assert got, "flushed rows must survive a crash"
    assert last_t - max(e.ts for e in got) <= 2.0 + 1e-6  # at most one flush interval lost
    assert len(got) < sum(rec.stats.rows.values())  # (the unflushed tail really was lost)


def test_rotation_by_time_and_size_and_midnight(tmp_path: Path) -> None:
    start = 1_750_031_970.0  # 23:59:30 UTC: the stream crosses midnight
    stream = hl_stream("BTC", 60.0, start=start)
    rec = Recorder(tmp_path / "t", ["BTC"], flush_s=1.0, rotate_s=10.0)
    feed(rec, stream)
    st = rec.close()
    books = sorted((tmp_path / "t").rglob("book-*.parquet"))
    assert 5 <= len(books) <= 8  # ~60 s / 10 s
    dates = {p.parent.name for p in books}
    assert dates == {"date=2025-06-15", "date=2025-06-16"}
    evs = list(open_source(tmp_path / "t", "BTC"))
    assert len(evs) == sum(st.rows.values())
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    rec2 = Recorder(tmp_path / "s", ["BTC"], flush_s=1.0, rotate_bytes=20_000)
    feed(rec2, stream)
    rec2.close()
    assert len(list((tmp_path / "s").rglob("book-*.parquet"))) > 3
    assert list(open_source(tmp_path / "s", "BTC")) == evs


def test_disconnect_and_silence_become_gap_rows(tmp_path: Path) -> None:
    stream = hl_stream("BTC", 40.0)
    rec = Recorder(tmp_path, ["BTC", "ETH"], silence_s=5.0)
    t_first = stream[0][0]
    rec.on_status(t_first, HL, True, "connected")
    cut_a, cut_b = t_first + 10 * NS, t_first + 18 * NS
    rec.on_status(cut_a, HL, False, "connection closed by peer")
    for t, msg in stream:
        if cut_a <= t < cut_b:
            continue  # nothing arrives while disconnected
        if t == cut_b or (t > cut_b and rec._down_since):
            rec.on_status(t, HL, True, "reconnected")
        rec.on_hl_message(t, msg)
        rec.tick(t)
    # Then the BTC book goes silent for 8 s while the connection stays up (a HIP-3 trap).
    t_last = stream[-1][0]
    later = t_last + 8 * NS
    b = book_message(BookSnapshot("BTC", later / NS, (round(later / 1e6) - 100) / 1000.0, (), ()))
    rec.on_hl_message(later, b)
    rec.close(later + NS)
    gaps = read_gaps(tmp_path, "BTC")
    disc = [g for g in gaps if g.reason.startswith("disconnect")]
    assert len(disc) == 1 and disc[0].channel == "*"
    assert disc[0].start_ts == cut_a / NS and disc[0].end_ts >= cut_b / NS
    sil = [g for g in gaps if g.reason == "silence"]
    assert any(g.channel == "l2Book" and g.end_ts - g.start_ts > 5.0 for g in sil)
    assert [g.reason for g in read_gaps(tmp_path, "ETH")] == ["disconnect: connection closed by peer"]


def test_resubscribe_batch_is_deduplicated_and_history_dropped(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, ["BTC"])
    t = ns(T0)
    rec.on_status(t, HL, True, "connected")
    old = [Trade("BTC", T0, T0 - 40.0 + i, 100.0, 1.0, "A", i) for i in range(5)]  # subscription history
    live = [Trade("BTC", T0 + 1, T0 + 0.9, 100.0, 1.0, "B", 100 + i) for i in range(3)]
    rec.on_hl_message(t, trades_message(old))
    rec.on_hl_message(t + NS, trades_message(live))
    rec.on_hl_message(t + 2 * NS, trades_message(live))  # re-sent after a resubscribe
    rec.on_hl_message(t + 2 * NS, book_message(BookSnapshot("BTC", T0 + 2, T0 + 1.9, (), ())))
    rec.on_hl_message(t + 3 * NS, book_message(BookSnapshot("BTC", T0 + 3, T0 + 1.9, (), ())))  # stale dup
    st = rec.close()
    assert st.history_trades == 5 and st.dup_trades == 3 and st.stale_books == 1
    assert st.rows == {"trades": 3, "book": 1}


def test_malformed_and_foreign_messages_are_counted_not_fatal(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, ["BTC"], raw=True)
    t = ns(T0)
    rec.on_hl_message(t, b"{not json")
    rec.on_hl_message(t, {"channel": "l2Book", "data": {"coin": "BTC", "levels": "x", "time": 1}})
    rec.on_hl_message(t, {"channel": "orderUpdates", "data": []})
    rec.on_hl_message(t, book_message(BookSnapshot("ETH", T0, T0, (), ())))  # not a recorded coin
    st = rec.close()
    assert st.parse_errors == 2 and st.ignored == 2 and st.rows == {}
    # the raw capture keeps everything, malformed included, for inspection
    raw = next((tmp_path / "raw").glob("hl-*.raw.gz"))
    assert raw.stat().st_size > 0


def test_binance_rows_under_each_coin_that_uses_the_symbol(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, ["BTC", "hyna:BTC", "hyna:HYPE"], ref_symbols={"BTC": "btcusdt", "hyna:BTC": "btcusdt"})
    t = ns(T0)
    msg = {"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": "100.1",
           "B": "2", "a": "100.2", "A": "3", "T": 1_749_999_999_950, "E": 1_749_999_999_960}}  # fmt: skip
    assert rec.on_binance_message(t, orjson.dumps(msg)) == 2
    assert rec.on_binance_message(t, b'{"result":null,"id":1}') == 0
    rec.on_ref_quote(t + NS, RefQuote("btcusdt", T0 + 1, T0 + 0.95, 100.0, 100.3))
    rec.close()
    for coin in ("BTC", "hyna:BTC"):
        evs = list(open_source(tmp_path, coin))
        assert [type(e) for e in evs] == [RefQuote, RefQuote]
        assert evs[0] == RefQuote("btcusdt", T0, 1_749_999_999.95, 100.1, 100.2, 2.0, 3.0)
    assert not list(tmp_path.glob("source=binance/coin=hyna_HYPE"))
    with pytest.raises(RecorderError, match="not recorded"):
        Recorder(tmp_path, ["BTC"], ref_symbols={"ETH": "ethusdt"})
    assert parse_book_ticker({"s": "ETHUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, 5.0).ts_exchange == 5.0


def test_binance_outage_gap(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, ["BTC"], ref_symbols={"BTC": "btcusdt"})
    rec.on_status(ns(T0), BINANCE, False, "binance btcusdt")
    rec.close(ns(T0 + 7))  # still down at the end: the gap runs to the close
    (g,) = read_gaps(tmp_path, "BTC")
    assert (g.source, g.end_ts - g.start_ts) == (BINANCE, 7.0)


def test_resolve_ref_symbols_never_defaults() -> None:
    refs, why = resolve_ref_symbols(["BTC", "hyna:HYPE"], "auto")
    assert refs == {"BTC": "btcusdt"} and len(why) == 2 and "hyna:HYPE" in why[1]
    assert resolve_ref_symbols(["BTC"], "off")[0] == {}
    assert resolve_ref_symbols(["hyna:HYPE"], "hypeusdt")[0] == {"hyna:HYPE": "hypeusdt"}
    assert resolve_ref_symbols(["BTC", "ETH"], "BTC=btcusdt,ETH=off")[0] == {"BTC": "btcusdt"}
    with pytest.raises(RecorderError, match="exactly one coin"):
        resolve_ref_symbols(["BTC", "hyna:HYPE"], "btcusdt")  # a symbol never lands on several coins
    with pytest.raises(RecorderError, match="COIN=SYMBOL"):
        resolve_ref_symbols(["BTC"], "SOL=solusdt")


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(RecorderError, match="no coins"):
        Recorder(tmp_path, [])
    with pytest.raises(RecorderError):
        Recorder(tmp_path, ["BTC"], flush_s=0)
    rec = Recorder(tmp_path, ["BTC"])
    with pytest.raises(RecorderError, match="ts_ns"):
        rec.on_hl_message(1.5, b"{}")  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="source"):
        rec.on_status(1, "okx", True)
    rec.close()
    with pytest.raises(RecorderError, match="closed"):
        rec.on_hl_message(1, b"{}")


def test_raw_and_parquet_copies_cut_subscription_history_identically(tmp_path: Path) -> None:
    """A trade just inside the recorder's history window, and one printed during an outage but older than the
    reconnection minus history_s: the raw capture's reader (connection markers) keeps and drops exactly what the
    recorder kept and dropped, so both copies replay to the same events (before: they differed by such trades)."""
    rec = Recorder(tmp_path, ["BTC"], raw=True, history_s=2.0)
    book = {"coin": "BTC", "levels": [[{"px": "99999", "sz": "1", "n": 1}], [{"px": "100001", "sz": "1", "n": 1}]]}

    def trade(tx: float, tid: int) -> bytes:
        return orjson.dumps({"channel": "trades", "data": [
            {"coin": "BTC", "side": "B", "px": "100000", "sz": "0.1", "time": round(tx * 1000), "tid": tid,
             "hash": "0x0", "users": ["0x1", "0x2"]}]})

    def l2(tx: float) -> bytes:
        return orjson.dumps({"channel": "l2Book", "data": {**book, "time": round(tx * 1000)}})

    rec.on_status(ns(T0), HL, True)
    rec.on_hl_message(ns(T0 + 0.1), trade(T0 - 1.5, 1))  # history window of the connection: kept
    rec.on_hl_message(ns(T0 + 0.2), trade(T0 - 3.0, 2))  # older: history, dropped
    rec.on_hl_message(ns(T0 + 1.0), l2(T0 + 1.0))  # first book 1 s after the connection
    rec.on_hl_message(ns(T0 + 2.0), l2(T0 + 2.0))
    rec.on_status(ns(T0 + 3.0), HL, False)
    rec.on_status(ns(T0 + 10.0), HL, True)  # reconnect 7 s later
    rec.on_hl_message(ns(T0 + 10.1), trade(T0 + 9.0, 3))  # during the outage, inside the window: kept
    rec.on_hl_message(ns(T0 + 10.2), trade(T0 + 5.0, 4))  # during the outage, older than the window: dropped
    rec.on_hl_message(ns(T0 + 10.5), l2(T0 + 10.5))
    rec.close()
    parquet = [e for e in open_source(tmp_path, "BTC") if not isinstance(e, RefQuote)]
    raw = list(open_source(tmp_path / "raw", "BTC"))
    assert [e.tid for e in parquet if isinstance(e, Trade)] == [1, 3]
    assert raw == parquet
