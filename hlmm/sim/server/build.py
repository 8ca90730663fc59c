"""Build a ``LocalExchangeServer`` from command-line style options (shared by ``hlmm exchange`` and the e2e tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hlmm.market.instrument import InstrumentRegistry, default_registry
from hlmm.sim.server.app import DEFAULT_PORT, WARM_HISTORY_S, LocalExchangeServer, ServerError
from hlmm.sim.server.core import ExchangeCore, ServerConfig
from hlmm.sim.server.faults import FaultStep
from hlmm.sim.server.journal import StateError, StateStore
from hlmm.sim.server.limits import OPEN_ORDER_BASE, WsLimits
from hlmm.sim.server.market import MarketSource, replay_source, synthetic_source


@dataclass
class ServerOptions:
    """Everything ``hlmm exchange`` can set."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    preset: str = "hype_quiet"
    data: str | None = None  # replay file/directory instead of the synthetic preset
    coin: str | None = None  # replay coin (default: the preset's coin)
    speed: float = 1.0
    seed: int = 0
    faults: list[FaultStep] = field(default_factory=list)
    usdc: float = 10_000.0
    state: str | None = None  # load at start if present, save at stop and on restart faults
    chain: str = "testnet"  # mainnet | testnet: the one network whose signatures this server accepts
    auto_accounts: bool = True
    accounts: dict[str, float] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    budget_base: int = 10_000
    open_order_base: int = OPEN_ORDER_BASE  # open orders per account before the volume bonus (reference §6)
    ws_limits: WsLimits = field(default_factory=WsLimits)  # per-IP websocket limits (reference §6)
    schedule_cancel_min_volume: float = 0.0
    ip_weight_per_min: int = 1200
    ws_idle_timeout_s: float = 60.0
    binance_map: dict[str, str] = field(default_factory=dict)
    warm_history_s: float = WARM_HISTORY_S  # market history (candles, recent trades) served from before the start


def build_server(opts: ServerOptions, registry: InstrumentRegistry | None = None) -> LocalExchangeServer:
    """Registry (embedded defaults: BTC/ETH/HYPE on the first dex, hyna:HYPE/hyna:BTC on dex 1), market source,
    exchange state (fresh or loaded from ``opts.state``) and the server."""
    reg = registry or default_registry()
    if opts.chain not in ("mainnet", "testnet"):
        raise ValueError(f"chain must be mainnet or testnet, got {opts.chain!r}")
    if isinstance(opts.open_order_base, bool) or not isinstance(opts.open_order_base, int) or opts.open_order_base < 1:
        raise ValueError(f"open_order_base must be an int >= 1, got {opts.open_order_base!r}")
    if opts.data:
        src: MarketSource = replay_source(opts.data, opts.coin or "BTC", reg)
    else:
        src = synthetic_source(opts.preset, reg, seed=opts.seed, coin=opts.coin)
    cfg = ServerConfig(
        starting_usdc=opts.usdc,
        is_mainnet=opts.chain == "mainnet",
        auto_accounts=opts.auto_accounts,
        accounts=dict(opts.accounts),
        agents=dict(opts.agents),
        address_budget_base=opts.budget_base,
        open_order_base=opts.open_order_base,
        schedule_cancel_min_volume=opts.schedule_cancel_min_volume,
        seed=opts.seed,
    )
    store = StateStore(opts.state) if opts.state else None
    if store is not None and store.exists():
        try:
            core = store.load()  # snapshot + journal: what the server had when it stopped or was killed
        except StateError as e:
            raise ServerError(str(e)) from None
        core.config.is_mainnet = cfg.is_mainnet  # the network and the open-order cap are start options, not state
        core.config.open_order_base = cfg.open_order_base
    else:
        core = ExchangeCore(reg, cfg)
    return LocalExchangeServer(
        core, [src], host=opts.host, port=opts.port, speed=opts.speed, faults=opts.faults, store=store,
        ip_weight_per_min=opts.ip_weight_per_min, ws_idle_timeout_s=opts.ws_idle_timeout_s,
        binance_map=opts.binance_map, seed=opts.seed, warm_history_s=opts.warm_history_s, ws_limits=opts.ws_limits,
    )
