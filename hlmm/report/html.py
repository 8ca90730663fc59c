"""Backtest report: a result directory (summary + time series) and one self-contained HTML file with inline SVG.

Result directory layout (``format`` ``hlmm-result``, ``format_version`` 1)::

    <dir>/summary.json   the results summary (docs/results.md)
    <dir>/series.json    {"format", "format_version", "coin", "start_ts", "series": {...}} - the EngineRecorder's
                         lists (quotes, resting, fills, mids, pnl, position) plus, when a ReportSampler ran, the
                         estimator values and the rejection timeline sampled on the 1 s timer
    <dir>/report.html    written by ``hlmm report DIR`` (no network needed to view: no CDN, no scripts)

The runner hook (``hlmm backtest --report DIR``)::

    sampler = ReportSampler()
    res = run_backtest(..., on_timer=sampler.on_timer)
    write_result_dir(res.engine, res.summary, DIR, sampler=sampler); write_report(DIR)
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hlmm.engine.summary import sharpe_text

RESULT_FORMAT = "hlmm-result"
RESULT_FORMAT_VERSION = 1
MARKOUT_HORIZONS_S = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)
_SERIES_KEYS = ("quotes", "resting", "fills", "mids", "pnl", "position")


class ResultDirError(ValueError):
    """A result directory that is missing files or has an unsupported format version."""


# ---- collecting -------------------------------------------------------------------------------


@dataclass(slots=True)
class ReportSampler:
    """Samples what the EngineRecorder does not keep as time series: estimator values, quoted spread and
    rejections (cumulative counts turned into a timeline). Pass ``on_timer`` to ``run_backtest(on_timer=...)``."""

    estimators: list[tuple[float, float, float, float, float, bool]] = field(default_factory=list)
    rejections: list[tuple[float, str, int]] = field(default_factory=list)  # (ts, reason, new since last sample)
    _seen: dict[str, int] = field(default_factory=dict)

    def on_timer(self, ts: float, engine: Any, _exchange: Any = None) -> None:
        est = engine.estimator_state
        if est is not None:
            self.estimators.append((ts, est.sigma, est.intensity_a, est.kappa, est.warmup, bool(est.ready)))
        for reason, n in engine.recorder.rejections.items():
            new = n - self._seen.get(reason, 0)
            if new > 0:
                self.rejections.append((ts, reason, new))
                self._seen[reason] = n

    def as_dict(self) -> dict[str, Any]:
        return {"estimators": self.estimators, "rejection_events": self.rejections}


def _recorder_of(engine_or_recorder: Any) -> Any:
    rec = getattr(engine_or_recorder, "recorder", engine_or_recorder)
    if not hasattr(rec, "quotes") or not hasattr(rec, "fills"):
        raise TypeError(f"expected an EngineCore or an EngineRecorder, got {type(engine_or_recorder).__name__}")
    return rec


def result_series(engine_or_recorder: Any, sampler: ReportSampler | None = None) -> dict[str, Any]:
    """The series document written to ``series.json`` (plain lists: JSON-safe; NaN becomes null)."""
    rec = _recorder_of(engine_or_recorder)
    series: dict[str, Any] = {k: [list(t) for t in getattr(rec, k)] for k in _SERIES_KEYS}
    series["rejections"] = dict(rec.rejections)
    series["cancels"] = dict(rec.cancels)
    series["actions"] = dict(rec.actions)
    if sampler is not None:
        series.update(sampler.as_dict())
    return {
        "format": RESULT_FORMAT,
        "format_version": RESULT_FORMAT_VERSION,
        "coin": getattr(engine_or_recorder, "coin", None),
        "start_ts": rec.start_ts,
        "first_quote_ts": rec.first_quote_ts,
        "kill_reason": rec.kill_reason,
        "kill_ts": rec.kill_ts,
        "series": series,
    }


def _json(obj: Any) -> bytes:
    # NaN is not JSON: the recorder uses it for "no quote on this side"; write null instead.
    def fix(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: fix(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [fix(v) for v in x]
        return x

    return orjson.dumps(fix(obj), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def write_result_dir(engine_or_recorder: Any, summary: dict[str, Any], out_dir: str | Path,
                     sampler: ReportSampler | None = None) -> Path:  # fmt: skip
    """Write ``summary.json`` and ``series.json`` into ``out_dir`` (created); returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_bytes(_json(summary) + b"\n")
    (out / "series.json").write_bytes(_json(result_series(engine_or_recorder, sampler)) + b"\n")
    return out


def load_result_dir(result_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, series document) of a result directory; clear errors for missing or newer files."""
    d = Path(result_dir)
    docs = []
    for name in ("summary.json", "series.json"):
        p = d / name
        if not p.is_file():
            raise ResultDirError(f"{d}: missing {name} (write it with write_result_dir)")
        try:
            docs.append(orjson.loads(p.read_bytes()))
        except orjson.JSONDecodeError as e:
            raise ResultDirError(f"{p}: invalid JSON: {e}") from None
    summary, series = docs
    if series.get("format") != RESULT_FORMAT:
        raise ResultDirError(f"{d / 'series.json'}: format must be {RESULT_FORMAT!r}")
    v = series.get("format_version")
    if not isinstance(v, int) or not 1 <= v <= RESULT_FORMAT_VERSION:
        raise ResultDirError(f"{d / 'series.json'}: format_version {v!r} not supported (<= {RESULT_FORMAT_VERSION})")
    return summary, series


# ---- analysis (pure) --------------------------------------------------------------------------


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def markout_curve(fills: Sequence[Sequence[Any]], mids: Sequence[Sequence[Any]],
                  horizons: Sequence[float] = MARKOUT_HORIZONS_S, *,
                  net: bool = False) -> list[tuple[float, float, int]]:  # fmt: skip
    """(horizon s, mean signed markout in bps, n fills) - buy at p: (mid(t+h) - p) / p; sell: (p - mid(t+h)) / p.
    mid(t) is the last sampled mid at or before t; fills with no mid at t+h (end of data) are left out.
    ``net``: after fees, each fill's fee in bps of its notional (fee / (p * sz), a rebate is negative) subtracted,
    as the summary's ``markout_<h>s_net``."""
    mts = [_f(m[0]) for m in mids]
    mpx = [_f(m[1]) for m in mids]
    out = []
    end = mts[-1] if mts else -math.inf
    for h in horizons:
        acc, n = 0.0, 0
        for f in fills:
            t, is_buy, px = _f(f[0]), bool(f[1]), _f(f[2])
            if t + h > end:
                continue
            i = bisect.bisect_right(mts, t + h) - 1
            if i < 0:
                continue
            m = mpx[i]
            acc += ((m - px) if is_buy else (px - m)) / px * 1e4
            if net:
                notional = px * _f(f[3])
                acc -= _f(f[4]) / notional * 1e4 if notional > 0 else 0.0
            n += 1
        out.append((h, acc / n if n else math.nan, n))
    return out


def drawdown(pnl: Sequence[float]) -> list[float]:
    """Running peak minus PnL (>= 0)."""
    peak = -math.inf
    out = []
    for v in pnl:
        peak = max(peak, v)
        out.append(peak - v)
    return out


# ---- SVG charts -------------------------------------------------------------------------------

W, H = 1000, 230
ML, MR, MT, MB = 70, 150, 28, 34  # margins: the legend sits on the right
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@dataclass(slots=True)
class Line:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    step: bool = False
    width: float = 1.4
    dash: str | None = None


@dataclass(slots=True)
class Marks:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    shape: str = "circle"  # circle | up | down
    tips: Sequence[str] | None = None


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks


def _fmt(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e5:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if a >= 1:
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def time_unit(span_s: float) -> tuple[float, str]:
    """One time unit per axis, from its span: seconds up to 15 min, minutes up to 5 h, then hours."""
    if span_s > 5 * 3600:
        return 3600.0, "h"
    if span_s > 900:
        return 60.0, "m"
    return 1.0, "s"


def decimate(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~4 points per bucket (first, min, max, last): the drawn shape of a long series is kept."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) <= 4 * buckets or len(x) < 2:
        return x, y
    edges = np.linspace(x[0], x[-1], buckets + 1)
    idx = np.searchsorted(x, edges[1:-1])
    keep: list[int] = []
    for seg in np.split(np.arange(len(x)), idx):
        if len(seg) == 0:
            continue
        ys_ = y[seg]
        cand = {int(seg[0]), int(seg[-1])}
        if np.isfinite(ys_).any():
            cand.add(int(seg[np.nanargmin(ys_)]))
            cand.add(int(seg[np.nanargmax(ys_)]))
        keep.extend(sorted(cand))
    k = np.asarray(keep)
    return x[k], y[k]


class Chart:
    """One SVG chart with shared conventions: x = seconds since the run start, NaN breaks a line."""

    def __init__(self, title: str, y_label: str = "", *, height: int = H, x_range: tuple[float, float] | None = None,
                 zero_line: bool = False, categories: Sequence[str] | None = None) -> None:  # fmt: skip
        self.title, self.y_label, self.h = title, y_label, height
        self.x_range, self.zero_line, self.categories = x_range, zero_line, categories
        self.lines: list[Line] = []
        self.marks: list[Marks] = []

    def add(self, item: Line | Marks) -> Chart:
        if isinstance(item, Line):
            self.lines.append(item)
        else:
            self.marks.append(item)
        return self

    def _items(self) -> list[Line | Marks]:
        return [*self.lines, *self.marks]

    def _bounds(self) -> tuple[float, float, float, float]:
        xs: list[float] = []
        ys: list[float] = []
        for it in self._items():
            x = np.asarray(it.xs, dtype=float)
            y = np.asarray(it.ys, dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any():
                xs += [float(x[ok].min()), float(x[ok].max())]
                ys += [float(y[ok].min()), float(y[ok].max())]
        if self.x_range is not None:
            x0, x1 = self.x_range
        else:
            x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if self.zero_line:
            y0, y1 = min(y0, 0.0), max(y1, 0.0)
        if self.categories is not None:
            y0, y1 = -0.5, len(self.categories) - 0.5
        if y1 - y0 < 1e-12:
            pad = abs(y0) * 0.01 or 1.0
            y0, y1 = y0 - pad, y1 + pad
        else:
            pad = (y1 - y0) * 0.05 if self.categories is None else 0.0
            y0, y1 = y0 - pad, y1 + pad
        if x1 <= x0:
            x1 = x0 + 1.0
        return x0, x1, y0, y1

    def svg(self) -> str:
        x0, x1, y0, y1 = self._bounds()
        ml = ML if self.categories is None else max(ML, 12 + 6 * max(len(c) for c in self.categories))
        pw, ph = W - ml - MR, self.h - MT - MB

        def sx(x: float) -> float:
            return ml + (x - x0) / (x1 - x0) * pw

        def sy(y: float) -> float:
            return MT + (1 - (y - y0) / (y1 - y0)) * ph

        o = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {self.h}" class="chart" role="img" '
             f'aria-label="{html.escape(self.title)}">',
             f'<text x="{ml}" y="17" class="ct">{html.escape(self.title)}</text>',
             f'<rect x="{ml}" y="{MT}" width="{pw}" height="{ph}" class="plot"/>']  # fmt: skip
        unit, uname = time_unit(x1 - x0)
        for tu in nice_ticks(x0 / unit, x1 / unit, 8):
            X = sx(tu * unit)
            o.append(f'<line x1="{X:.1f}" y1="{MT}" x2="{X:.1f}" y2="{MT + ph}" class="grid"/>'
                     f'<text x="{X:.1f}" y="{MT + ph + 14}" class="tk" text-anchor="middle">{tu:g}{uname}</text>')
        if self.categories is not None:
            yticks: list[tuple[float, str]] = [(float(i), c) for i, c in enumerate(self.categories)]
        else:
            yticks = [(t, _fmt(t)) for t in nice_ticks(y0, y1, 5)]
        for t, lab in yticks:
            Y = sy(t)
            o.append(f'<line x1="{ml}" y1="{Y:.1f}" x2="{ml + pw}" y2="{Y:.1f}" class="grid"/>'
                     f'<text x="{ml - 5}" y="{Y + 4:.1f}" class="tk" text-anchor="end">{html.escape(lab)}</text>')
        if self.zero_line and y0 < 0 < y1:
            o.append(f'<line x1="{ml}" y1="{sy(0):.1f}" x2="{ml + pw}" y2="{sy(0):.1f}" class="zero"/>')
        if self.y_label:
            o.append(f'<text transform="translate(14,{MT + ph / 2}) rotate(-90)" class="tk" text-anchor="middle">'
                     f"{html.escape(self.y_label)}</text>")
        o.append(f'<clipPath id="c{id(self)}"><rect x="{ml}" y="{MT}" width="{pw}" height="{ph}"/></clipPath>'
                 f'<g clip-path="url(#c{id(self)})">')
        for ln in self.lines:
            xs, ys = decimate(ln.xs, ln.ys, pw)
            d: list[str] = []
            pen = False
            prev_y = math.nan
            for x, y in zip(xs, ys, strict=True):
                if not (math.isfinite(x) and math.isfinite(y)):
                    pen = False
                    continue
                X, Y = sx(x), sy(y)
                if not pen:
                    d.append(f"M{X:.1f},{Y:.1f}")
                    pen = True
                elif ln.step:
                    d.append(f"H{X:.1f}V{Y:.1f}")
                else:
                    d.append(f"L{X:.1f},{Y:.1f}")
                prev_y = y
            if ln.step and pen and math.isfinite(prev_y) and len(xs):
                d.append(f"H{sx(float(np.nanmax(xs)) if len(xs) else x1):.1f}")
            dash = f' stroke-dasharray="{ln.dash}"' if ln.dash else ""
            o.append(f'<path d="{"".join(d)}" fill="none" stroke="{ln.color}" stroke-width="{ln.width}"{dash}/>')
        for mk in self.marks:
            tips = mk.tips or [""] * len(mk.xs)
            for x, y, tip in zip(mk.xs, mk.ys, tips, strict=True):
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                X, Y = sx(x), sy(y)
                if mk.shape == "up":
                    shape = f'<path d="M{X:.1f},{Y - 5:.1f}L{X - 4:.1f},{Y + 3:.1f}L{X + 4:.1f},{Y + 3:.1f}Z"'
                elif mk.shape == "down":
                    shape = f'<path d="M{X:.1f},{Y + 5:.1f}L{X - 4:.1f},{Y - 3:.1f}L{X + 4:.1f},{Y - 3:.1f}Z"'
                else:
                    shape = f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="3"'
                title = f"<title>{html.escape(tip)}</title>" if tip else ""
                tag = "circle" if mk.shape == "circle" else "path"
                o.append(f'{shape} fill="{mk.color}" fill-opacity="0.8">{title}</{tag}>')
        o.append("</g>")
        ly = MT + 6
        for it in self._items():
            lx = W - MR + 12
            if isinstance(it, Line):
                dash = f' stroke-dasharray="{it.dash}"' if it.dash else ""
                o.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{it.color}" '
                         f'stroke-width="2"{dash}/>')
            else:
                o.append(f'<circle cx="{lx + 9}" cy="{ly}" r="3.5" fill="{it.color}"/>')
            o.append(f'<text x="{lx + 24}" y="{ly + 4}" class="lg">{html.escape(it.name)}</text>')
            ly += 16
        o.append("</svg>")
        return "".join(o)


# ---- the report -------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1040px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:26px 0 6px;border-bottom:1px solid #ddd}
.sub{color:#666;margin-bottom:14px}.chart{width:100%;height:auto;display:block;margin:4px 0 10px}
.plot{fill:#fcfcfc;stroke:#ccc}.grid{stroke:#eee}.zero{stroke:#999;stroke-dasharray:3 3}
.ct{font-weight:600;font-size:13px}.tk{font-size:10px;fill:#555}.lg{font-size:11px;fill:#333}
table.kv{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.kv td{padding:3px 12px 3px 0;border-bottom:1px solid #f0f0f0}table.kv td:first-child{color:#555}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}.bad{color:#c00}.good{color:#080}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px;max-height:520px}
"""

_CARDS = (
    ("pnl_total", "PnL total (USD)"), ("fees", "fees (USD)"), ("max_drawdown", "max drawdown (USD)"),
    ("n_fills", "fills"), ("max_abs_position", "max |position|"), ("time_to_first_quote_s", "first quote (s)"),
    ("quote_uptime_both_sides", "two-sided uptime"), ("markout_10s", "markout 10 s gross (bps)"),
    ("markout_10s_net", "markout 10 s net of fees (bps)"), ("fee_bps_per_fill", "fee per fill (bps)"),
    ("sharpe", "Sharpe (annualised) ± SE"), ("kill", "kill"),
)  # fmt: skip


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return _fmt(v) if math.isfinite(v) else "—"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_num(x)}" for k, x in v.items()) or "none"
    return html.escape(str(v))


def _col(rows: Sequence[Sequence[Any]], i: int) -> list[float]:
    return [_f(r[i]) for r in rows]


def build_charts(series_doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(section title, SVG) for every plot, from a series document (pure)."""
    s = series_doc["series"]
    t0 = float(series_doc.get("start_ts") or 0.0)

    def rel(ts: Sequence[float]) -> list[float]:
        return [t - t0 for t in ts]

    mids, quotes, fills = s.get("mids", []), s.get("quotes", []), s.get("fills", [])
    pnl, pos = s.get("pnl", []), s.get("position", [])
    ends = [r[-1][0] for r in (mids, quotes, fills, pnl, pos) if r]
    xr = (0.0, max(ends) - t0) if ends else None
    out: list[tuple[str, str]] = []

    c = Chart("Mid, our best bid/ask and fills", "price", x_range=xr)
    c.add(Line("mid", rel(_col(mids, 0)), _col(mids, 1), "#444", width=1.2))
    c.add(Line("our best bid", rel(_col(quotes, 0)), _col(quotes, 1), PALETTE[2], step=True, width=1.0))
    c.add(Line("our best ask", rel(_col(quotes, 0)), _col(quotes, 2), PALETTE[1], step=True, width=1.0))
    for is_buy, name, color, shape in ((True, "buy fill", "#0a0", "up"), (False, "sell fill", "#c00", "down")):
        fs = [f for f in fills if bool(f[1]) == is_buy]
        tips = [f"{name} {_fmt(_f(f[3]))} @ {_fmt(_f(f[2]))} fee {_fmt(_f(f[4]))} {'maker' if f[5] else 'taker'}"
                for f in fs]  # fmt: skip
        c.add(Marks(name, rel(_col(fs, 0)), _col(fs, 2), color, shape, tips))
    out.append(("Prices", c.svg()))

    c = Chart("Inventory (position, base units)", "position", x_range=xr, zero_line=True)
    c.add(Line("position", rel([t0, *_col(pos, 0)]), [0.0, *_col(pos, 1)], PALETTE[0], step=True))
    out.append(("Inventory", c.svg()))

    pt = _col(pnl, 0)
    pv = _col(pnl, 1)
    fee_ts = _col(fills, 0)
    cum_fee = np.cumsum([_f(f[4]) for f in fills]) if fills else np.zeros(0)
    fees_at = [float(cum_fee[i - 1]) if (i := bisect.bisect_right(fee_ts, t)) > 0 else 0.0 for t in pt]
    c = Chart("PnL (USD, at mid): total, before fees, fees paid", "USD", x_range=xr, zero_line=True)
    c.add(Line("total", rel(pt), pv, PALETTE[0], width=1.8))
    c.add(Line("before fees", rel(pt), [v + f for v, f in zip(pv, fees_at, strict=True)], PALETTE[2], dash="4 3"))
    c.add(Line("fees (cum, neg.)", rel(pt), [-f for f in fees_at], PALETTE[3], dash="2 2"))
    out.append(("PnL", c.svg()))
    c = Chart("Drawdown from running peak (USD)", "USD", x_range=xr, zero_line=True, height=170)
    c.add(Line("drawdown", rel(pt), [-d for d in drawdown(pv)], PALETTE[1]))
    out.append(("Drawdown", c.svg()))

    curve = markout_curve(fills, mids)
    curve_net = markout_curve(fills, mids, net=True)
    c = Chart("Markout curve: mean signed markout per fill vs horizon, before and after fees (bps; > 0 = good)",
              "bps", zero_line=True, height=200)  # fmt: skip
    c.add(Line("gross", [h for h, _, _ in curve], [m for _, m, _ in curve], PALETTE[4], width=2))
    c.add(Marks("horizon", [h for h, _, _ in curve], [m for _, m, _ in curve], PALETTE[4],
                tips=[f"{h:g} s: {_fmt(m)} bps gross over {n} fills" for h, m, n in curve]))  # fmt: skip
    c.add(Line("net of fees", [h for h, _, _ in curve_net], [m for _, m, _ in curve_net], PALETTE[1], width=2,
               dash="4 3"))  # fmt: skip
    c.add(Marks("horizon, net", [h for h, _, _ in curve_net], [m for _, m, _ in curve_net], PALETTE[1],
                tips=[f"{h:g} s: {_fmt(m)} bps net of fees over {n} fills" for h, m, n in curve_net]))  # fmt: skip
    out.append(("Markouts (x axis: horizon)", c.svg()))

    qt = _col(quotes, 0)
    spread = [(a - b) / (0.5 * (a + b)) * 1e4 if math.isfinite(a) and math.isfinite(b) else math.nan
              for b, a in zip(_col(quotes, 1), _col(quotes, 2), strict=True)]  # fmt: skip
    c = Chart("Quoted spread, best ask - best bid (bps of mid)", "bps", x_range=xr, height=180)
    c.add(Line("quoted spread", rel(qt), spread, PALETTE[0], step=True))
    out.append(("Spread", c.svg()))

    est = s.get("estimators") or []
    if est:
        et = rel(_col(est, 0))
        for i, (name, label) in enumerate((("sigma", "sigma (per sqrt s)"), ("A", "intensity A (per s)"),
                                           ("kappa", "kappa"), ("warmup", "warm-up confidence (0..1)")), start=1):
            c = Chart(f"Estimator: {label}", name, x_range=xr, height=150)
            c.add(Line(name, et, _col(est, i), PALETTE[(i + 3) % len(PALETTE)], step=True))
            if name == "warmup":
                c.add(Line("ready", et, [1.0 if r[5] else 0.0 for r in est], "#999", step=True, dash="3 3"))
            out.append(("Estimators" if i == 1 else "", c.svg()))
    else:
        out.append(("Estimators", "<p>No estimator samples (run with a ReportSampler).</p>"))

    rej = s.get("rejection_events") or []
    reasons = sorted({r[1] for r in rej} | set(s.get("rejections", {})))
    if reasons:
        c = Chart("Rejection timeline (marker = rejections in that second)", "", x_range=xr, categories=reasons,
                  height=max(120, 60 + 22 * len(reasons)))  # fmt: skip
        c.add(Marks("rejections", rel(_col(rej, 0)), [float(reasons.index(r[1])) for r in rej], PALETTE[1],
                    tips=[f"{r[2]} x {r[1]}" for r in rej]))  # fmt: skip
        out.append(("Rejections", c.svg()))
    else:
        out.append(("Rejections", "<p>No rejections.</p>"))
    return out


def render_html(summary: dict[str, Any], series_doc: dict[str, Any], title: str | None = None) -> str:
    """The whole report as one HTML string: inline CSS and SVG, no scripts, no external resources."""
    coin = summary.get("coin") or series_doc.get("coin") or "?"
    title = title or f"hlmm {summary.get('mode', 'backtest')} report: {coin}"
    cards = []
    for key, label in _CARDS:
        v = summary.get(key)
        cls = ""
        if key == "pnl_total" and isinstance(v, (int, float)):
            cls = "good" if v >= 0 else "bad"
        if key == "kill" and v:
            cls = "bad"
        shown = html.escape(sharpe_text(summary)) if key == "sharpe" else _num(v)
        cards.append(f'<div class="card"><b class="{cls}">{shown}</b><span>{html.escape(label)}</span></div>')
    sub = " · ".join(f"{label}{_num(summary[k])}" for k, label in (("source", ""), ("duration_s", "simulated s: "),
                     ("n_events", "events: ")) if k in summary)  # fmt: skip
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><div class='sub'>{sub}</div><div class='cards'>{''.join(cards)}</div>",
    ]
    for section, svg in build_charts(series_doc):
        if section:
            parts.append(f"<h2>{html.escape(section)}</h2>")
        parts.append(svg)
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td>"
                   f"<td>{html.escape(sharpe_text(summary)) if k == 'sharpe' else _num(v)}</td></tr>"
                   for k, v in summary.items() if not isinstance(v, (dict, list)))  # fmt: skip
    parts.append(f"<h2>Summary</h2><table class='kv'>{rows}</table>")
    parts.append("<h2>Summary JSON</h2><pre>" + html.escape(_json(summary).decode()) + "</pre>")
    parts.append("<p class='sub'>Fields: docs/results.md. Times on the x axes are seconds from the run start.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(result_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render ``result_dir`` to ``out`` (default ``<result_dir>/report.html``); returns the path."""
    summary, series_doc = load_result_dir(result_dir)
    p = Path(out) if out is not None else Path(result_dir) / "report.html"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(summary, series_doc), encoding="utf-8")
    return p
