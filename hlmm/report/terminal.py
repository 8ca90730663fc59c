"""Live terminal view (rich): book top levels with our quotes marked, position vs limits, PnL, fills,
estimator state and warm-up, kill state.

Rendering works on a plain :class:`View` snapshot so it can be tested without an engine;
:func:`view_from_engine` builds that snapshot from an EngineCore and the runner's RunStats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

BOOK_LEVELS = 6
RECENT_FILLS = 6


@dataclass(slots=True)
class View:
    coin: str
    elapsed_s: float
    duration_s: float | None = None
    note: str = ""
    mid: float | None = None
    book_bids: list[tuple[float, float]] = field(default_factory=list)  # (px, sz) best first
    book_asks: list[tuple[float, float]] = field(default_factory=list)
    book_age_s: float | None = None
    our_bids: dict[float, float] = field(default_factory=dict)  # px -> our size resting/pending there
    our_asks: dict[float, float] = field(default_factory=dict)
    position: float = 0.0
    max_position: float | None = None  # contracts, at the current mid
    max_position_usd: float = 0.0
    pnl_total: float = 0.0
    realized: float = 0.0
    unrealized: float = 0.0
    fees: float = 0.0
    n_fills: int = 0
    recent_fills: list[tuple[float, bool, float, float, bool]] = field(default_factory=list)  # (t, buy, px, sz, maker)
    est: dict[str, Any] | None = None
    kill: str | None = None
    rejections: dict[str, int] = field(default_factory=dict)
    n_events: int = 0
    first_quote_s: float | None = None


def view_from_engine(
    engine: Any, stats: Any, ts: float, *, duration_s: float | None = None, note: str = ""
) -> View:
    """Snapshot the engine (read-only) for rendering."""
    m = engine.market
    book = m.book
    bids = [(lv.px, lv.sz) for lv in book.bids[:BOOK_LEVELS]] if book is not None else []
    asks = [(lv.px, lv.sz) for lv in book.asks[:BOOK_LEVELS]] if book is not None else []
    our_b: dict[float, float] = {}
    our_a: dict[float, float] = {}
    for o in engine.tracker.live():
        d = our_b if o.is_buy else our_a
        d[o.px] = d.get(o.px, 0.0) + float(getattr(o, "remaining", o.sz))
    mid = m.mid
    pf = engine.portfolio
    max_usd = float(engine.cfg.risk.max_position_usd) if hasattr(engine, "cfg") else 0.0
    es = engine.estimator_state
    est = None
    if es is not None:
        est = {"sigma": es.sigma, "A": es.intensity_a, "kappa": es.kappa, "warmup": es.warmup,
               "ready": es.ready, "reason": es.reason}
    ks = engine.kill_switch
    fills = [
        (f.ts - stats.start_ts, f.is_buy, f.px, f.sz, f.is_maker) for f in stats.fills[-RECENT_FILLS:]
    ]
    return View(
        coin=engine.coin if hasattr(engine, "coin") else stats.coin,
        elapsed_s=ts - stats.start_ts,
        duration_s=duration_s,
        note=note,
        mid=mid,
        book_bids=bids,
        book_asks=asks,
        book_age_s=m.book_age(ts) if m.book_ts_exchange is not None else None,
        our_bids=our_b,
        our_asks=our_a,
        position=pf.position,
        max_position=(max_usd / mid) if mid else None,
        max_position_usd=max_usd,
        pnl_total=pf.pnl_total(mid) if mid else 0.0,
        realized=pf.realized,
        unrealized=pf.unrealized(mid) if mid else 0.0,
        fees=pf.fees,
        n_fills=stats.n_fills if stats.max_points is not None else len(stats.fills),
        recent_fills=fills,
        est=est,
        kill=ks.state.reason if ks.killed else None,
        rejections=dict(stats.rejections),
        n_events=stats.n_events,
        first_quote_s=(stats.first_quote_ts - stats.start_ts) if stats.first_quote_ts is not None else None,
    )


def _book_table(v: View) -> Table:
    t = Table(title=f"{v.coin} book (ours marked)", expand=True, show_edge=False, pad_edge=False)
    t.add_column("ours", justify="right", style="bold cyan")
    t.add_column("bid sz", justify="right")
    t.add_column("bid", justify="right", style="green")
    t.add_column("ask", justify="left", style="red")
    t.add_column("ask sz", justify="left")
    t.add_column("ours", justify="left", style="bold cyan")
    # Merge market levels with our prices so a quote outside the shown depth is still visible.
    bid_px = sorted({p for p, _ in v.book_bids} | set(v.our_bids), reverse=True)[: BOOK_LEVELS + 2]
    ask_px = sorted({p for p, _ in v.book_asks} | set(v.our_asks))[: BOOK_LEVELS + 2]
    bsz = dict(v.book_bids)
    asz = dict(v.book_asks)
    for i in range(max(len(bid_px), len(ask_px))):
        bp = bid_px[i] if i < len(bid_px) else None
        ap = ask_px[i] if i < len(ask_px) else None
        t.add_row(
            f"► {v.our_bids[bp]:g}" if bp in v.our_bids else "",
            f"{bsz[bp]:g}" if bp in bsz else "",
            f"{bp:g}" if bp is not None else "",
            f"{ap:g}" if ap is not None else "",
            f"{asz[ap]:g}" if ap in asz else "",
            f"{v.our_asks[ap]:g} ◄" if ap in v.our_asks else "",
        )
    return t


def _status_table(v: View) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    head = f"{v.elapsed_s:,.0f} s" + (f" / {v.duration_s:,.0f} s" if v.duration_s else "")
    t.add_row("time", head)
    t.add_row("mid", f"{v.mid:g}" if v.mid else "-")
    t.add_row("book age", f"{v.book_age_s:.1f} s" if v.book_age_s is not None else "-")
    lim = f"{v.max_position:.4g}" if v.max_position else "-"
    pos_usd = abs(v.position) * v.mid if v.mid else 0.0
    t.add_row("position", f"{v.position:+g}  (|{pos_usd:,.2f}| USD of max {v.max_position_usd:,.0f} USD ≈ {lim})")
    style = "green" if v.pnl_total >= 0 else "red"
    t.add_row("PnL", Text(f"{v.pnl_total:+.4f} USD", style=style))
    t.add_row("", f"realized {v.realized:+.4f}  unrealized {v.unrealized:+.4f}  fees {v.fees:.4f}")
    t.add_row("fills", str(v.n_fills))
    t.add_row("first quote", f"{v.first_quote_s:.1f} s" if v.first_quote_s is not None else "not yet")
    if v.est is not None:
        e = v.est
        ready = "ready" if e["ready"] else "warming"
        t.add_row("estimators", f"{ready} ({e['reason']}), warm-up {e['warmup']:.0%}")
        t.add_row("", f"sigma {e['sigma']:.2e}/√s  A {e['A']:.3g}/s  kappa {e['kappa']:.4g}")
    else:
        t.add_row("estimators", "no state yet")
    t.add_row("kill", Text(f"KILLED: {v.kill}", style="bold red") if v.kill else Text("armed, not fired", "green"))
    if v.rejections:
        t.add_row("rejections", ", ".join(f"{k}={n}" for k, n in sorted(v.rejections.items())))
    t.add_row("events", f"{v.n_events:,}")
    return t


def _fills_table(v: View) -> Table:
    t = Table(title="recent fills", expand=True, show_edge=False)
    for c in ("t (s)", "side", "px", "sz", "role"):
        t.add_column(c)
    for ts, buy, px, sz, maker in reversed(v.recent_fills):
        t.add_row(f"{ts:.1f}", Text("buy", "green") if buy else Text("sell", "red"), f"{px:g}", f"{sz:g}",
                  "maker" if maker else "taker")
    return t


def render(v: View) -> RenderableType:
    """The whole live view as one rich renderable."""
    top = Table.grid(expand=True)
    top.add_column(ratio=1)
    top.add_column(ratio=1)
    top.add_row(_book_table(v), _status_table(v))
    parts: list[RenderableType] = [top, _fills_table(v)]
    title = f"hlmm · {v.coin}"
    return Panel(Group(*parts), title=title, subtitle=v.note or None)
