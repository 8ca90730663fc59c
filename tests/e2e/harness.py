"""E2E harness: the local exchange in a background thread, the bot (``run_live``, live mode, network local) on the
test's loop, a monitor sampling the server's truth (position, resting orders) every 0.1 s, and the accounting
checks that compare the bot's order tracker with the server's records."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hlmm.config import load_config_dict
from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, LocalExchangeServer, ServerConfig, ServerThread
from hlmm.sim.server.market import synthetic_source
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x" + "5a" * 32
COIN = "BTC"
MAX_POS_USD = 2000.0


class RecLog:
    """Logger capturing (wall time, level, event, fields) for assertions (structlog-like interface)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, dict]] = []

    def _rec(self, level: str):
        def f(event: str, **kw: Any) -> None:
            self.events.append((time.time(), level, event, kw))
        return f

    def __getattr__(self, name: str):
        if name in ("debug", "info", "warning", "error", "critical", "exception"):
            return self._rec(name)
        raise AttributeError(name)

    def first(self, event: str) -> float | None:
        return next((t for t, _, e, _ in self.events if e == event), None)


def bot_config(url: str, state_dir: str, dead_man_s: float = 5.0, max_rejections: int = 30,
               stale_s: float = 60.0) -> Any:
    raw = {
        "run": {"network": "local", "local_url": url, "state_dir": state_dir, "log_dir": state_dir,
                "dead_man_s": dead_man_s},
        "coins": {COIN: {
            "risk": {"max_position_usd": MAX_POS_USD, "daily_loss_limit_usd": 500.0, "max_drawdown_usd": 300.0,
                     "max_rejections_per_min": max_rejections, "max_data_stale_s": stale_s},
            "estimators": {"warmup_timeout_s": 2.0},
            "reference": {"binance_symbol": "btcusdt"},
        }},
    }
    return load_config_dict(raw)


@dataclass
class Monitor:
    """Samples the server's truth for one account from the server thread's loop."""

    st: ServerThread
    addr: str
    samples: list[tuple[float, float, int, float]] = field(default_factory=list)  # (t, position, resting, mid)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> tuple[float, float, int, float]:
        core = self.st.server.core  # type: ignore[union-attr]
        acct = core.accounts.get(self.addr)
        pos = acct.ex.position(COIN).position if acct else 0.0
        mid = core.books[COIN].true_mid or 0.0
        return time.time(), pos, core.resting_count(self.addr), mid

    def start(self) -> Monitor:
        def run() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # server restarting: skip the sample
                    self.samples.append(self.st.sync(self._sample, 5))
                time.sleep(0.1)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def max_abs_position_usd(self) -> float:
        return max((abs(p) * m for _, p, _, m in self.samples), default=0.0)

    def first_time_resting_zero_after(self, t0: float) -> float | None:
        return next((t for t, _, r, _ in self.samples if t >= t0 and r == 0), None)


def make_server(speed: float = 2.0, seed: int = 11, state_path: str | None = None, **cfg: Any):
    reg = default_registry()

    def make() -> LocalExchangeServer:
        core = ExchangeCore(reg, ServerConfig(starting_usdc=20_000.0, seed=seed, **cfg))
        return LocalExchangeServer(core, [synthetic_source("btc", reg, seed=seed)], port=0, speed=speed,
                                   state_path=state_path, seed=seed)

    return ServerThread(make)


async def run_bot(st: ServerThread, cfg: Any, duration_s: float, log: RecLog, kill_store: Any = None,
                  stop: asyncio.Event | None = None) -> Any:
    from hlmm.engine.live_runner import run_live

    wallet = Wallet.from_key(KEY)
    # Bounded: a bot that fails to stop fails its test instead of hanging the suite (start-up + shutdown slack).
    return await asyncio.wait_for(
        run_live(cfg, COIN, mode="live", network="local", duration_s=duration_s, kill_store=kill_store, log=log,
                 wallet=wallet, out=lambda s: None, stop=stop,
                 binance_base_url=st.url.replace("http", "ws") + "/binance", timer_interval_s=0.25),
        duration_s + 60.0)


def server_records(st: ServerThread, addr: str) -> dict[str, Any]:
    """The server's view of one account: orders by cloid, fills, resting count, position."""

    def get() -> dict[str, Any]:
        core = st.server.core  # type: ignore[union-attr]
        acct = core.accounts.get(addr)
        if acct is None:
            return {"orders": [], "fills": [], "resting": 0, "position": 0.0, "stats": dict(core.stats)}
        orders = [(o.cloid, core._gid(addr, o.oid), o.status) for o in acct.ex.orders()
                  if o.cloid and not o.cloid.startswith("0xfeedfeed")]
        return {"orders": orders, "fills": list(acct.fills), "resting": core.resting_count(addr),
                "position": acct.ex.position(COIN).position, "stats": dict(core.stats)}

    return st.sync(get, 10)


def check_accounting(res: Any, rec: dict[str, Any]) -> dict[str, Any]:
    """Every order accounted for: no server order unknown to the bot, no acked oid unknown to the server, no
    duplicated open cloid, fills identical on both sides (keyed by (tid, oid)), same final position."""
    tracker = res.engine.tracker
    bot = {o.cloid: o for o in tracker.all_orders()}
    server_cloids = {c for c, _, _ in rec["orders"]}
    unknown_to_bot = server_cloids - set(bot)
    assert not unknown_to_bot, f"server has orders the bot never placed: {sorted(unknown_to_bot)[:5]}"
    server_oids = {g for _, g, _ in rec["orders"]}
    # oid None marks an order the adapter dropped before sending it (cancelled while still queued).
    assert all(o.oid != 0 for o in bot.values()), "oid 0 used as 'no oid'"
    acked_missing = [o.cloid for o in bot.values()
                     if o.oid is not None and not o.foreign and o.oid not in server_oids]
    assert not acked_missing, f"bot holds oids the server never issued: {acked_missing[:5]}"
    open_cloids = [c for c, _, s in rec["orders"] if s == "open"]
    assert len(open_cloids) == len(set(open_cloids)), "duplicated open cloid on the server"
    server_fill_keys = {(f["tid"], f["oid"]) for f in rec["fills"]}
    bot_fill_keys = set(tracker.fill_keys())
    assert bot_fill_keys == server_fill_keys, (f"fills differ: bot-only {len(bot_fill_keys - server_fill_keys)}, "
                                               f"server-only {len(server_fill_keys - bot_fill_keys)}")
    assert abs(res.engine.portfolio.position - rec["position"]) < 1e-9, "position differs"
    statuses: dict[str, int] = {}
    for _, _, s in rec["orders"]:
        statuses[s] = statuses.get(s, 0) + 1
    return {"sent": sum(o.oid is not None or o.state == "rejected" for o in bot.values()),
            "server_orders": len(rec["orders"]),
            "acked": sum(bool(o.oid) for o in bot.values()),
            "filled_orders": statuses.get("filled", 0), "fills": len(rec["fills"]),
            "cancelled": sum(v for k, v in statuses.items() if k.endswith("anceled") or k == "scheduledCancel"),
            "rejected": sum(v for k, v in statuses.items() if "ejected" in k), "resting_end": rec["resting"]}


class EngineCapture:
    """Keeps the ``EngineCore`` that ``run_live`` builds (the class is patched for the test's duration), so a test can
    read the bot's own order tracker while the bot runs. Only observes: the engine behaves exactly as unpatched."""

    def __init__(self, monkeypatch: Any) -> None:
        import hlmm.engine.core as core

        self.engines: list[Any] = []
        cap = self

        class Captured(core.EngineCore):  # type: ignore[misc, valid-type]
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                cap.engines.append(self)

        monkeypatch.setattr(core, "EngineCore", Captured)

    @property
    def engine(self) -> Any:
        return self.engines[-1] if self.engines else None


@dataclass
class GhostWatch:
    """Compares the server's resting orders with the bot's tracker every ``period_s``: a *ghost* is an order resting
    on the exchange that the bot does not hold as live (it believes it cancelled/gone, or never knew it). Transients
    (the exchange cancelled it, the reply is on its way) last a round trip; ``ghosts()`` reports only those that
    stayed ghosts for at least ``persist_s``."""

    st: ServerThread
    cap: EngineCapture
    addr: str
    period_s: float = 0.2
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)  # cloid -> (first, last) time seen as ghost
    rounds: int = 0
    _task: asyncio.Task | None = None

    def _server_resting(self) -> set[str]:
        core = self.st.server.core  # type: ignore[union-attr]
        acct = core.accounts.get(self.addr)
        if acct is None:
            return set()
        return {o.cloid or f"oid:{o.oid}" for c in core.registry.coins() for o in acct.ex.open_orders(c)}

    async def _run(self) -> None:
        while True:
            eng = self.cap.engine
            if eng is not None:
                with contextlib.suppress(Exception):  # server restarting: skip the round
                    resting = self.st.sync(self._server_resting, 5)
                    live = {o.cloid for o in eng.tracker.live()}
                    now = time.time()
                    self.rounds += 1
                    for c in resting - live:
                        first, _ = self.seen.get(c, (now, now))
                        self.seen[c] = (first, now)
            await asyncio.sleep(self.period_s)

    def start(self) -> GhostWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def ghosts(self, persist_s: float) -> dict[str, float]:
        """Ghosts that lasted at least ``persist_s``: cloid -> seconds seen as a ghost."""
        return {c: round(b - a, 2) for c, (a, b) in self.seen.items() if b - a >= persist_s}


def tune_venue(monkeypatch: Any, **kw: Any) -> None:
    """Constructor keywords for the ``HyperliquidVenue`` that ``run_live`` builds (patched for the test's duration):
    time compression, e.g. ``budget_refresh_s`` so a short run sees as many request-budget re-reads as a long one."""
    import hlmm.venue.hyperliquid.adapter as adapter

    base = adapter.HyperliquidVenue

    class Tuned(base):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **{**k, **kw})

    monkeypatch.setattr(adapter, "HyperliquidVenue", Tuned)
