"""``hlmm synth``: write a seeded synthetic market stream (raw WS capture format) for tests and backtests."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from hlmm.data.synth_files import write_synthetic
from hlmm.sim.synthetic import SynthParams, SynthParamsError, preset, preset_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic market stream (Hyperliquid WS messages) to a directory")
    p.add_argument("--preset", default="hype_quiet", choices=preset_names(), help="market preset")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds of market time (default 3600)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed = same stream)")
    p.add_argument("--start-ts", type=float, default=1_750_000_000.0, help="epoch seconds of the first book")
    p.add_argument("--out", required=True, help="output directory (must not already hold this coin's stream)")
    p.add_argument(
        "--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
        help="override a SynthParams field, e.g. --param sigma=2e-4 (repeatable)",
    )  # fmt: skip
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict[str, object]:
    types = {f.name: type(getattr(SynthParams(), f.name)) for f in fields(SynthParams)}
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in types:
            raise SynthParamsError(f"--param {item!r}: expected NAME=VALUE with NAME in {sorted(types)}")
        try:
            out[name] = types[name](value.strip())
        except ValueError:
            raise SynthParamsError(f"--param {item!r}: {value!r} is not a {types[name].__name__}") from None
    return out


def run(args: argparse.Namespace) -> int:
    try:
        params = preset(args.preset, seed=args.seed, **_overrides(args.params))
        path = write_synthetic(args.out, params, args.duration, start_ts=args.start_ts)
    except (SynthParamsError, FileExistsError, ValueError) as e:
        print(f"hlmm synth: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({params.coin}, preset {args.preset}, {args.duration:g} s, seed {args.seed})")
    return 0
