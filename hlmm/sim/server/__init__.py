"""Local exchange server speaking Hyperliquid's protocol (HTTP /info, /exchange, WS /ws) with fault injection.

See docs/local-exchange.md. Entry points: ``LocalExchangeServer`` (asyncio), ``ServerThread`` (background thread for
synchronous clients), ``ExchangeCore`` (the state machine), ``build_server`` (from CLI-style options).
"""

from __future__ import annotations

from hlmm.sim.server.app import LocalExchangeServer, ServerThread, load_state, save_state
from hlmm.sim.server.core import ExchangeCore, ServerConfig
from hlmm.sim.server.faults import FaultStep, load_scenario, parse_flag, parse_scenario

__all__ = [
    "ExchangeCore",
    "FaultStep",
    "LocalExchangeServer",
    "ServerConfig",
    "ServerThread",
    "load_scenario",
    "load_state",
    "parse_flag",
    "parse_scenario",
    "save_state",
]
