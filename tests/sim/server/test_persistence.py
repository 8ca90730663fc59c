"""Crash safety of the local exchange (issue 9 item 12): ``hlmm exchange --state P`` as a real subprocess, killed
with SIGKILL right after its last answer, restarts with its resting orders, positions, balances, fills and used
nonces, as a real exchange would (journal + snapshot, hlmm/sim/server/journal.py). Bounded polling waits only."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import KEY_A, Signer, order, order_action

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

START_TIMEOUT_S = 60.0


class ExchangeProc:
    """One ``hlmm exchange`` subprocess on a free port with a state file."""

    def __init__(self, state: Path, log: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "hlmm.cli", "exchange", "--port", "0", "--preset", "btc", "--seed", "3",
               "--state", str(state), "--ip-weight", "1000000", *extra]
        self._err = open(log, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(cmd, cwd=state.parent, env=dict(os.environ), stdout=subprocess.PIPE,
                                     stderr=self._err, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_url()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"hlmm exchange exited early with {self.proc.wait()}")
            if line.startswith("local exchange on "):
                return line.split()[3]
        self.proc.kill()
        raise AssertionError("hlmm exchange did not start in time")

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def info(self, body: dict) -> Any:
        code, out = self.post("/info", body)
        assert code == 200, (body, code, out)
        return out

    def exchange(self, body: dict) -> dict:
        code, out = self.post("/exchange", body)
        assert code == 200, (code, out)
        return out  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.wait() == -signal.SIGKILL

    def term(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._err.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait()


@pytest.fixture
def procs():
    started: list[ExchangeProc] = []

    def start(state: Path, *extra: str) -> ExchangeProc:
        p = ExchangeProc(state, state.parent / "exchange.log", *extra)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def wait_for(cond, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        out = cond()
        if out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def touch(p: ExchangeProc) -> tuple[float, float]:
    """(best bid, best ask) once the market has a two-sided book."""
    def two_sided():
        lv = p.info({"type": "l2Book", "coin": "BTC"})["levels"]
        return (float(lv[0][0]["px"]), float(lv[1][0]["px"])) if lv[0] and lv[1] else None

    return wait_for(two_sided, what="a two-sided BTC book")


def statuses(r: dict) -> list:
    assert r["status"] == "ok", r
    return r["response"]["data"]["statuses"]


def snapshot(p: ExchangeProc, addr: str) -> dict:
    """What must survive a crash: open orders, position, cash (account value without unrealized PnL and funding,
    which move with the market clock), fills."""
    oo = p.info({"type": "openOrders", "user": addr})
    ch = p.info({"type": "clearinghouseState", "user": addr})
    fills = p.info({"type": "userFills", "user": addr})
    pos = [(a["position"]["coin"], a["position"]["szi"], a["position"]["entryPx"]) for a in ch["assetPositions"]]
    upnl = sum(float(a["position"]["unrealizedPnl"]) for a in ch["assetPositions"])
    funding = sum(float(a["position"]["cumFunding"]["allTime"]) for a in ch["assetPositions"])
    return {"orders": sorted((o["oid"], o["limitPx"], o["sz"], o["side"], o["cloid"]) for o in oo),
            "positions": pos,
            "cash": float(ch["marginSummary"]["accountValue"]) - upnl + funding,
            "fills": [(f["oid"], f["px"], f["sz"], f["side"], f["fee"]) for f in fills]}


def same_state(before: dict, after: dict) -> None:
    assert after["orders"] == before["orders"]
    assert after["positions"] == before["positions"]
    assert after["fills"] == before["fills"]
    assert after["cash"] == pytest.approx(before["cash"], abs=1e-4)


def place_resting(p: ExchangeProc, s: Signer, n: int, cloid_base: int = 0) -> list[int]:
    bid, _ = touch(p)
    px = round(bid * 0.97)  # far from the touch: the restarted market does not reach it
    orders = [order(0, True, str(px - i), "0.001", cloid="0x%032x" % (cloid_base + i + 1)) for i in range(n)]
    sts = statuses(p.exchange(s.body(order_action(*orders))))
    assert all("resting" in st for st in sts), sts
    return [st["resting"]["oid"] for st in sts]


def open_position(p: ExchangeProc, s: Signer) -> None:
    _, ask = touch(p)
    [st] = statuses(p.exchange(s.body(order_action(order(0, True, str(round(ask * 1.01)), "0.002", tif="Ioc")))))
    assert "filled" in st, st


def signer() -> Signer:
    s = Signer(KEY_A)
    s.nonce = int(time.time() * 1000)
    return s


def test_sigkill_restart_keeps_orders_positions_balances_and_nonces(tmp_path, procs):
    state = tmp_path / "exchange.state"
    s = signer()
    p = procs(state)
    open_position(p, s)
    oids = place_resting(p, s, 3)
    r = p.exchange(s.body({"type": "cancel", "cancels": [{"a": 0, "o": oids[1]}]}))
    assert r["response"]["data"]["statuses"] == ["success"]
    last = s.body({"type": "noop"})
    assert p.exchange(last) == {"status": "ok", "response": {"type": "default"}}
    before = snapshot(p, s.address)
    assert len(before["orders"]) == 2 and before["positions"][0][1] == "0.002" and len(before["fills"]) >= 1
    p.kill()  # right after the last answer: nothing the server answered may be lost

    p = procs(state)
    same_state(before, snapshot(p, s.address))
    st = p.info({"type": "orderStatus", "user": s.address, "oid": oids[1]})
    assert st["status"] == "order" and st["order"]["status"] == "canceled"
    # the used nonce is remembered: replaying the last request is refused
    r = p.exchange(last)
    assert r["status"] == "err" and "nonce" in r["response"].lower(), r
    # the restarted server journals on: a second kill keeps what happened after the first restart
    oids2 = place_resting(p, s, 1, cloid_base=100)
    before2 = snapshot(p, s.address)
    assert len(before2["orders"]) == 3 and oids2[0] in [o[0] for o in before2["orders"]]
    p.kill()

    p = procs(state)
    same_state(before2, snapshot(p, s.address))
    r = p.exchange(s.body({"type": "cancel", "cancels": [{"a": 0, "o": oids2[0]}]}))
    assert r["response"]["data"]["statuses"] == ["success"]  # the order is live, not just listed


def test_sigterm_then_sigkill_after_more_activity(tmp_path, procs):
    """A clean stop (snapshot) followed by a run that is killed: the restart holds both runs' orders."""
    state = tmp_path / "exchange.state"
    s = signer()
    p = procs(state)
    place_resting(p, s, 2)
    assert p.term() == 0
    p = procs(state)
    assert len(snapshot(p, s.address)["orders"]) == 2
    place_resting(p, s, 1, cloid_base=50)
    open_position(p, s)
    before = snapshot(p, s.address)
    p.kill()
    p = procs(state)
    same_state(before, snapshot(p, s.address))


def test_torn_journal_tail_is_dropped_not_fatal(tmp_path, procs):
    """A kill in the middle of a journal write leaves a partial last line: the restart drops it (the request it
    belonged to was never answered) and keeps everything before it."""
    state = tmp_path / "exchange.state"
    s = signer()
    p = procs(state)
    place_resting(p, s, 2)
    before = snapshot(p, s.address)
    p.kill()
    journal = state.with_name(state.name + ".journal")
    assert journal.exists() and journal.stat().st_size > 0
    with open(journal, "ab") as f:
        f.write(b'999999 0badc0de ["x",1.0,{"action":')  # no newline: a torn write
    p = procs(state)
    same_state(before, snapshot(p, s.address))
    with urllib.request.urlopen(p.url + "/health", timeout=20) as r:
        health = json.loads(r.read())
    assert health["stats"].get("journal_torn_tail") == 1, health["stats"]


def test_corrupt_state_refuses_to_start(tmp_path):
    """A damaged state file is an error at start (exit 2 with a message), never a silently empty exchange."""
    state = tmp_path / "exchange.state"
    state.write_bytes(b"not a state file\n")
    r = subprocess.run([sys.executable, "-m", "hlmm.cli", "exchange", "--port", "0", "--state", str(state),
                        "--duration", "5"], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "state" in r.stderr.lower(), r.stderr


def test_corrupt_journal_line_before_the_end_refuses_to_start(tmp_path, procs):
    """Damage inside the journal (not a torn tail) is corruption: refuse to start instead of silently losing the
    records after it."""
    state = tmp_path / "exchange.state"
    s = signer()
    p = procs(state)
    place_resting(p, s, 1)
    p.exchange(s.body({"type": "noop"}))
    p.kill()
    journal = state.with_name(state.name + ".journal")
    lines = journal.read_bytes().split(b"\n")
    assert len(lines) >= 3, len(lines)
    seq, crc, body = lines[0].split(b" ", 2)
    lines[0] = b" ".join([seq, crc, body.replace(b"[", b"{", 1)])
    journal.write_bytes(b"\n".join(lines))
    r = subprocess.run([sys.executable, "-m", "hlmm.cli", "exchange", "--port", "0", "--state", str(state),
                        "--duration", "5"], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "corrupt" in r.stderr.lower(), r.stderr


def test_scheduled_cancel_due_while_killed_fires_after_restart(tmp_path, procs):
    """The dead man's switch is exchange state: set, kill -9, and once its time has passed the restarted server
    cancels the orders (a real exchange would have cancelled them on time)."""
    state = tmp_path / "exchange.state"
    s = signer()
    p = procs(state)
    oids = place_resting(p, s, 2)
    due_ms = int(time.time() * 1000) + 5_500
    r = p.exchange(s.body({"type": "scheduleCancel", "time": due_ms}))
    assert r == {"status": "ok", "response": {"type": "default"}}, r
    p.kill()
    wait_for(lambda: time.time() * 1000 > due_ms + 200, timeout=30, what="the scheduled cancel time")
    p = procs(state)
    wait_for(lambda: not p.info({"type": "openOrders", "user": s.address}), timeout=20,
             what="the scheduled cancel to fire")
    for oid in oids:  # the orders are known and were cancelled by the switch (not just forgotten)
        st = p.info({"type": "orderStatus", "user": s.address, "oid": oid})
        assert st["status"] == "order" and st["order"]["status"] == "scheduledCancel", st
