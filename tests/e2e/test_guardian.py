"""The out-of-process guardian (issue 9 item 5): ``hlmm run --mode live`` as a subprocess against the local exchange
with the scheduleCancel volume gate on (as on real Hyperliquid below $1M traded), so the exchange's dead man's switch
is refused and only the guardian can cancel what a dead or frozen trader leaves resting.

Each test prints one JSON line with its measured figures (``pytest -s``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import COIN, KEY, MAX_POS_USD, Monitor, make_server, server_records

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ADDR = Wallet.from_key(KEY).address
GUARDIAN_TIMEOUT_S = 5.0
VOLUME_GATE_USD = 1_000_000.0


def _wait(cond, timeout_s: float, step_s: float = 0.1) -> bool:
    end = time.time() + timeout_s
    while time.time() < end:
        if cond():
            return True
        time.sleep(step_s)
    return bool(cond())


def _start_trader(st, tmp_path: Path, duration_s: float = 90.0) -> tuple[subprocess.Popen, Path, Path]:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(
        f'[run]\nnetwork = "local"\nlocal_url = "{st.url}"\ndead_man_s = 6\n'
        f"guardian_timeout_s = {GUARDIAN_TIMEOUT_S}\n"
        f'[coins.{COIN}.risk]\nmax_position_usd = {MAX_POS_USD}\ndaily_loss_limit_usd = 500\n'
        f'max_drawdown_usd = 300\n[coins.{COIN}.estimators]\nwarmup_timeout_s = 2\n'
        f'[coins.{COIN}.reference]\nbinance_symbol = "off"\n')
    err = tmp_path / "trader.err"
    logs = tmp_path / "logs"
    env = {**os.environ, "HLMM_PRIVATE_KEY": KEY}
    with err.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "hlmm.cli", "run", "--coin", COIN, "--mode", "live",
                                 "--network", "local", "--duration", str(duration_s), "--config", str(cfg),
                                 "--state-dir", str(tmp_path / "state"), "--log-dir", str(logs)],
                                env=env, stdout=subprocess.DEVNULL, stderr=f)
    return proc, err, logs / "guardian.jsonl"


def _wait_resting(mon: Monitor, proc: subprocess.Popen, n: int = 2, timeout_s: float = 40.0) -> int:
    ok = _wait(lambda: proc.poll() is not None or any(r >= n for _, _, r, _ in mon.samples), timeout_s, 0.2)
    assert ok and proc.poll() is None, f"the trader exited early (rc {proc.poll()})"
    return max(r for _, _, r, _ in mon.samples)


def _guardian_pid(err: Path) -> int | None:
    for line in err.read_text(errors="replace").splitlines():
        if line.startswith("guardian: pid "):
            return int(line.split()[2].rstrip(","))
    return None


def _gone(pid: int) -> bool:
    """The process has exited (gone, or a zombie waiting for a reaper that is not us)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def _reap(proc: subprocess.Popen, gpid: int | None) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
        proc.kill()
    proc.wait(15)
    if gpid is not None and not _gone(gpid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(gpid, signal.SIGKILL)


def _resting_now(st) -> int:
    return server_records(st, ADDR)["resting"]


def test_kill9_guardian_cancels_everything(tmp_path):
    """kill -9 of the trader with scheduleCancel refused: nothing of ours rests within timeout + 2 s; the guardian
    exits (code 3: fired, the exchange shows none of ours)."""
    with make_server(schedule_cancel_min_volume=VOLUME_GATE_USD) as st:
        mon = Monitor(st, ADDR).start()
        proc, err, glog = _start_trader(st, tmp_path)
        gpid = None
        try:
            _wait_resting(mon, proc)
            time.sleep(1.0)  # quoting settles (a full ladder rests)
            resting_at_kill = _resting_now(st)
            proc.send_signal(signal.SIGKILL)
            t_kill = time.time()
            proc.wait(10)
            assert _wait(lambda: _resting_now(st) == 0, GUARDIAN_TIMEOUT_S + 2.0, 0.05), \
                f"{_resting_now(st)} order(s) still resting {GUARDIAN_TIMEOUT_S + 2:g} s after kill -9"
            t_zero = time.time()
            gpid = _guardian_pid(err)
            assert gpid is not None, "the trader never reported a guardian"
            assert _wait(lambda: _gone(gpid), 20.0), "the guardian did not exit"
            ev = _events(glog)
            ex = [e for e in ev if e.get("event") == "guardian_exit"]
            assert ex and ex[-1]["code"] == 3 and ex[-1]["verified"] is True, ex
            fire = next(e for e in ev if e.get("event") == "guardian_fire")
            assert "pipe closed" in fire["reason"]
        finally:
            mon.stop()
            _reap(proc, gpid)
        rec = server_records(st, ADDR)
        assert rec["resting"] == 0
        assert rec["stats"].get("scheduled_cancels_fired", 0) == 0  # the dead man's switch never helped
        text = err.read_text(errors="replace")
        assert KEY[2:] not in text and KEY[2:] not in glog.read_text()
        print(json.dumps({"scenario": "guardian_kill9", "resting_at_kill": resting_at_kill,
                          "kill_to_no_resting_s": round(t_zero - t_kill, 2),
                          "guardian_fire_to_verified_s": ex[-1]["fire_to_verified_s"],
                          "guardian_cancels_ok": ex[-1]["cancels_ok"]}))


def test_clean_shutdown_guardian_exits_0_without_cancelling(tmp_path):
    """SIGTERM: the trader cancels everything itself and says "done"; the guardian exits 0 having signed nothing."""
    with make_server(schedule_cancel_min_volume=VOLUME_GATE_USD) as st:
        mon = Monitor(st, ADDR).start()
        proc, err, glog = _start_trader(st, tmp_path)
        gpid = None
        try:
            _wait_resting(mon, proc)
            gpid = _guardian_pid(err)
            assert gpid is not None, "the trader never reported a guardian"
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
            assert rc == 0, err.read_text(errors="replace")[-2000:]
            assert _wait(lambda: _gone(gpid), 10.0), "the guardian did not exit"
        finally:
            mon.stop()
            _reap(proc, gpid)
        text = err.read_text(errors="replace")
        assert "guardian: exited cleanly (0)" in text
        ev = _events(glog)
        names = [e.get("event") for e in ev]
        assert "guardian_started" in names
        assert not any(n and (n == "guardian_fire" or n.startswith("guardian_cancel")) for n in names), names
        ex = [e for e in ev if e.get("event") == "guardian_exit"]
        assert ex and ex[-1]["code"] == 0
        assert server_records(st, ADDR)["resting"] == 0
        print(json.dumps({"scenario": "guardian_clean_stop", "guardian_exit": ex[-1]["code"]}))


def test_sigstop_guardian_cancels_frozen_trader(tmp_path):
    """SIGSTOP (alive but silent): after guardian_timeout_s the guardian kills the frozen trader (a trader declared
    dead must not resume unguarded, and its nonces cannot race the guardian's) and cancels everything."""
    with make_server(schedule_cancel_min_volume=VOLUME_GATE_USD) as st:
        mon = Monitor(st, ADDR).start()
        proc, err, glog = _start_trader(st, tmp_path)
        gpid = None
        try:
            _wait_resting(mon, proc)
            time.sleep(1.0)
            resting_at_stop = _resting_now(st)
            proc.send_signal(signal.SIGSTOP)
            t_stop = time.time()
            assert _wait(lambda: _resting_now(st) == 0, GUARDIAN_TIMEOUT_S + 2.0, 0.05), \
                f"{_resting_now(st)} order(s) still resting {GUARDIAN_TIMEOUT_S + 2:g} s after SIGSTOP"
            t_zero = time.time()
            gpid = _guardian_pid(err)
            assert gpid is not None
            assert _wait(lambda: _gone(gpid), 20.0), "the guardian did not exit"
            assert proc.wait(10) == -signal.SIGKILL, "the guardian did not kill the frozen trader"
        finally:
            mon.stop()
            _reap(proc, gpid)
        ev = _events(glog)
        fire = next(e for e in ev if e.get("event") == "guardian_fire")
        assert "no heartbeat" in fire["reason"]
        assert any(e.get("event") == "guardian_killed_trader" for e in ev)
        ex = [e for e in ev if e.get("event") == "guardian_exit"]
        assert ex and ex[-1]["code"] == 3
        # Frozen is not dead: the orders stay until the timeout (less one beat interval), the guardian is patient.
        early = [r for t, _, r, _ in mon.samples if t_stop + 0.5 <= t <= t_stop + GUARDIAN_TIMEOUT_S - 1.5]
        assert early and min(early) > 0, "the guardian fired before the timeout"
        assert server_records(st, ADDR)["resting"] == 0
        print(json.dumps({"scenario": "guardian_sigstop", "resting_at_stop": resting_at_stop,
                          "stop_to_no_resting_s": round(t_zero - t_stop, 2)}))
