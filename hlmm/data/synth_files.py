"""Write a synthetic market stream to disk in the raw WS capture format, with a manifest."""

from __future__ import annotations

from pathlib import Path

import orjson

from hlmm.data.raw_ws import FORMAT_NAME, FORMAT_VERSION, RawWsWriter, write_events
from hlmm.data.replay import MANIFEST
from hlmm.market.instrument import InstrumentRegistry
from hlmm.sim.synthetic import SyntheticMarket, SynthParams, params_dict


def capture_name(coin: str) -> str:
    """File name of a coin's capture: 'hyna:HYPE' -> 'hyna_HYPE.raw.gz' (':' is not portable in names)."""
    return f"{coin.replace(':', '_')}.raw.gz"


def write_synthetic(
    out_dir: str | Path,
    params: SynthParams,
    duration_s: float,
    start_ts: float = 1_750_000_000.0,
    registry: InstrumentRegistry | None = None,
) -> Path:
    """Generate ``duration_s`` of market data into ``out_dir``; returns the capture path. Refuses to
    overwrite an existing capture (appending would interleave two streams)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / capture_name(params.coin)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose an empty --out directory")
    market = SyntheticMarket(params, registry, start_ts)
    with RawWsWriter(path) as w:
        lines = write_events(w, market.events(duration_s))
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "source": "synthetic",
        "coin": params.coin,
        "start_ts": market.start_ts,
        "duration_s": duration_s,
        "lines": lines,
        "files": [path.name],
        "params": params_dict(params),
    }
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return path
