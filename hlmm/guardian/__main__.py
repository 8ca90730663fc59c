"""``python -m hlmm.guardian``: the guardian process, started by ``hlmm run --mode live`` (never by hand).

Reads the key and its config from stdin (see :mod:`hlmm.guardian.watch`), answers ``ready <pid>`` on stdout, then
watches the trader's heartbeats. On "done" it exits 0 without signing anything. When it fires (pipe EOF, parent
gone, handover, or silence for ``timeout_s``) it first SIGKILLs a trader that is still alive (frozen or blocked;
never one that handed over: that one is shutting down, has stopped signing and reported its last nonce):
a trader declared dead must never resume trading without a guardian, and once it is dead no nonce of the
guardian can collide with one of the trader's (both sign with the same key; the guardian's nonces also start
above the last one the trader reported, and near the wall clock, so they beat the exchange's 100-highest window
and lie in its time bound). Then it cancels every order of the traded coins until the exchange shows none.

Exit codes: 0 clean (trader said done), 2 bad start-up input, 3 fired and the exchange shows none of ours,
4 fired but the exchange still shows orders (or could not be asked) when the bound ran out.

It ignores SIGINT and SIGTERM (it runs in its own session; a Ctrl-C or a stop meant for the trader makes the
trader shut down, and the guardian follows the trader, not the signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import time
from typing import Any

import orjson

from hlmm.guardian.watch import (
    GuardianConfig,
    LineBuffer,
    ProtocolError,
    WatchState,
    decide,
    next_wait_s,
    parse_config_line,
    parse_key_line,
)

EXIT_CLEAN = 0
EXIT_BAD_INPUT = 2
EXIT_FIRED_OK = 3
EXIT_FIRED_UNVERIFIED = 4
START_TIMEOUT_S = 30.0  # the trader writes key + config right after spawning us
KILL_WAIT_S = 3.0  # after SIGKILL, wait this long for the trader's end of the pipe to close


class JsonLog:
    """JSON lines, one ``write`` + flush per event (the guardian may be killed itself: nothing buffered)."""

    def __init__(self, path: str | None) -> None:
        self._f: Any = None
        if path:
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                self._f = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
            except OSError as e:
                say(f"cannot open log {path}: {e}")
        self.pid = os.getpid()

    def __call__(self, event: str, level: str = "info", **kw: Any) -> None:
        if self._f is None:
            return
        rec = {"ts": time.time(), "level": level, "event": event, "component": "guardian", "pid": self.pid, **kw}
        with contextlib.suppress(OSError, TypeError):
            self._f.write(orjson.dumps(rec, default=str) + b"\n")


def say(msg: str) -> None:
    """The one human line (stderr is the trader's terminal or service log)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"hlmm guardian[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def _read_lines(fd: int, buf: LineBuffer, n: int, timeout_s: float) -> list[bytes] | None:
    """The first ``n`` lines of ``fd`` within ``timeout_s`` (None on EOF or timeout). Reads byte-wise up to the
    n-th newline so that nothing after the config is consumed here."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(lines) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        b = os.read(fd, 1)
        if not b:
            return None
        lines += buf.feed(b)
    return lines


def _parent_alive(pid: int) -> bool:
    # Our parent is the trader: once it dies we are re-parented, so getppid() changes (no pid-reuse race).
    return os.getppid() == pid


def _watch(fd: int, cfg: GuardianConfig, log: JsonLog) -> tuple[Any, WatchState]:
    buf = LineBuffer()
    st = WatchState(last_msg=time.monotonic())
    seen_bad: set[str] = set()
    n_beats = 0
    while True:
        now = time.monotonic()
        v = decide(st, now, cfg.timeout_s, _parent_alive(cfg.trader_pid))
        if v.kind != "wait":
            return v, st
        r, _, _ = select.select([fd], [], [], next_wait_s(st, now, cfg.timeout_s))
        if not r:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            log("guardian_read_failed", level="error", error=str(e))
            data = b""
        if not data:
            st.eof = True
            continue
        t = time.monotonic()
        for line in buf.feed(data):
            m = st.on_line(line, t)
            if isinstance(m, str):
                if m not in seen_bad:  # once per kind, with the running count
                    seen_bad.add(m)
                    log("guardian_bad_message", level="warning", kind=m, count=st.bad[m])
            elif m.kind == "beat":
                n_beats += 1
                if n_beats == 1:
                    log("guardian_first_beat", nonce=m.nonce, orders=len(m.orders))
        if buf.overlong:
            log("guardian_bad_message", level="warning", kind="overlong", count=buf.overlong)
            buf.overlong = 0


def _kill_trader(fd: int, cfg: GuardianConfig, log: JsonLog, st: WatchState) -> None:
    if not _parent_alive(cfg.trader_pid):
        return
    try:
        os.kill(cfg.trader_pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except OSError as e:
        log("guardian_kill_failed", level="error", trader_pid=cfg.trader_pid, error=str(e))
        return
    log("guardian_killed_trader", level="warning", trader_pid=cfg.trader_pid)
    deadline = time.monotonic() + KILL_WAIT_S
    while not st.eof and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                st.eof = True


async def _cancel(cfg: GuardianConfig, key_hex: str, st: WatchState, log: JsonLog) -> Any:
    from hlmm.guardian.canceller import cancel_everything
    from hlmm.venue.hyperliquid.nonce import NonceManager
    from hlmm.venue.hyperliquid.rest import ExchangeClient, InfoClient
    from hlmm.venue.hyperliquid.wallet import Wallet

    wallet = Wallet.from_key(key_hex)
    nonces = NonceManager()
    nonces.observe(st.last_nonce)  # strictly above every nonce the trader reported
    info = InfoClient(cfg.url, timeout_s=5.0)
    exchange = ExchangeClient(cfg.url, wallet, nonces, cfg.mainnet, cfg.vault, timeout_s=5.0)
    try:
        return await cancel_everything(info, exchange, cfg.account, cfg.coins, st.orders, cfg.cancel_bound_s,
                                       lambda ev, **kw: log(ev, **kw))
    finally:
        await exchange.close()
        await info.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = sys.stdin.fileno()
    head = _read_lines(fd, LineBuffer(), 2, START_TIMEOUT_S)
    if head is None:
        say("no key and config on stdin: exiting")
        return EXIT_BAD_INPUT
    try:
        key_hex = parse_key_line(head[0])
        cfg = parse_config_line(head[1])
    except ProtocolError as e:
        say(f"bad start-up input: {e}")
        return EXIT_BAD_INPUT
    del head
    # Everything the cancel path needs is imported now: an import failure shows at start, and firing is fast.
    import hlmm.guardian.canceller
    import hlmm.venue.hyperliquid.nonce
    import hlmm.venue.hyperliquid.rest  # noqa: F401
    from hlmm.venue.hyperliquid.wallet import Wallet, WalletError

    try:
        signer = Wallet.from_key(key_hex).address
    except WalletError as e:
        say(f"bad key: {e}")
        return EXIT_BAD_INPUT
    if signer != cfg.signer:
        say("the key on stdin is not the trader's signer: exiting")
        return EXIT_BAD_INPUT
    log = JsonLog(cfg.log_path)
    log("guardian_started", trader_pid=cfg.trader_pid, account=cfg.account, signer=signer,
        coins=sorted(cfg.coins), timeout_s=cfg.timeout_s, url=cfg.url)
    try:
        sys.stdout.write(f"ready {os.getpid()}\n")
        sys.stdout.flush()
    except OSError:
        pass

    verdict, st = _watch(fd, cfg, log)
    if verdict.kind == "exit_clean":
        log("guardian_exit", code=EXIT_CLEAN, reason=verdict.reason)
        return EXIT_CLEAN

    t_fire = time.monotonic()
    log("guardian_fire", level="warning", reason=verdict.reason, silent_s=round(verdict.silent_s, 3),
        last_nonce=st.last_nonce, known_orders=len(st.orders))
    say(f"{verdict.reason}: cancelling every order on {', '.join(sorted(cfg.coins))}")
    if not st.handover:  # a trader that handed over is shutting down and signs nothing more: let it finish
        _kill_trader(fd, cfg, log, st)
    try:
        rep = asyncio.run(_cancel(cfg, key_hex, st, log))
    except Exception as e:  # never die silently: the line says what is left to do
        log("guardian_cancel_crashed", level="error", error=f"{type(e).__name__}: {e}"[:300])
        say(f"cancel loop failed ({type(e).__name__}): CHECK OPEN ORDERS BY HAND")
        return EXIT_FIRED_UNVERIFIED
    took = time.monotonic() - t_fire
    code = EXIT_FIRED_OK if rep.verified else EXIT_FIRED_UNVERIFIED
    log("guardian_exit", level="warning" if rep.verified else "error", code=code, reason=verdict.reason,
        verified=rep.verified, rounds=rep.rounds, cancels_sent=rep.cancels_sent, cancels_ok=rep.cancels_ok,
        first_resting=rep.first_resting, last_resting=rep.last_resting, errors=rep.errors,
        fire_to_verified_s=round(took, 3))
    if rep.verified:
        say(f"cancelled {rep.cancels_ok} order(s); the exchange shows none of ours ({took:.2f} s)")
    else:
        say(f"could not confirm that nothing rests after {took:.1f} s "
            f"(last seen: {rep.last_resting}): CHECK OPEN ORDERS BY HAND")
    return code


if __name__ == "__main__":
    sys.exit(main())
