"""``hlmm demo``: the main job of the README - a paper session on an embedded, simulated quiet HYPE-like
market (``hyna:HYPE``) with a live terminal view. No keys, no network.

The real quiet preset prints a trade every 5-20 s, too sparse to show anything in a minute, so the demo
uses a livelier variant of it (more trades near the touch) and says so on screen. ``--speed`` runs the
simulated clock faster than real time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hlmm.commands.common import add_config_args, add_metrics_arg

DEMO_COIN = "hyna:HYPE"
DEMO_PRESET = "hype_quiet"
# Livelier than the real quiet market so fills show up within ~30 s (documented on screen).
DEMO_SYNTH_OVERRIDES: dict[str, Any] = {"trade_rate_at_touch": 0.5, "stale_rate": 1 / 300}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="paper session on a simulated quiet HYPE-like market with a live view")
    p.add_argument("--duration", type=float, default=60.0, metavar="S", help="simulated seconds (default 60)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic market and simulator")
    p.add_argument("--no-ui", action="store_true", help="no live view; print the summary only")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the results summary as JSON")
    p.add_argument("--log-dir", help="JSON-lines log directory (default: run.log_dir from the config)")
    add_metrics_arg(p)
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hlmm.commands.backtest import check_inputs
    from hlmm.commands.paper import run_session
    from hlmm.logsetup import configure_logging, get_logger

    if not args.speed > 0:
        print(f"error: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    if not args.duration > 0:
        print(f"error: --duration must be > 0, got {args.duration}", file=sys.stderr)
        return 2
    args.preset, args.data, args.coin = DEMO_PRESET, None, DEMO_COIN
    args.start_ts = time.time()
    args.synth_overrides = DEMO_SYNTH_OVERRIDES
    cfg, src = check_inputs(args)
    log_dir = Path(args.log_dir) if args.log_dir else cfg.run.log_dir
    path = configure_logging(log_dir, file_name="demo.jsonl", console="quiet")
    log = get_logger(mode="demo", coin=src.coin)
    speed = f", time x{args.speed:g}" if args.speed != 1 else ""
    note = f"demo: simulated {DEMO_COIN}, livelier than the real quiet market{speed}; log {path}"
    if args.no_ui:
        print(note, file=sys.stderr)
    # The demo starts fresh every time: no kill state is loaded or kept.
    return run_session(args, cfg, src, store=None, load_kill=False, log=log, note=note)
