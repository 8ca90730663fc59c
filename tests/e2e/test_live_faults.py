"""The bot (``run_live`` live mode, network local) against the local exchange under each fault.

Checks per run: every order accounted for (bot tracker == server records), |position| never beyond max + one capped
order, everything cancelled at shutdown (seconds to cancel-all measured from the server's truth). Results are printed
(``pytest -s``) as one JSON line per scenario."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hlmm.sim.server.faults import FaultStep
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import (
    COIN,
    KEY,
    MAX_POS_USD,
    Monitor,
    RecLog,
    bot_config,
    check_accounting,
    make_server,
    run_bot,
    server_records,
)

ADDR = Wallet.from_key(KEY).address
POS_BOUND_USD = MAX_POS_USD * 1.25 * 1.02  # max + one capped (25%) order, 2% price slack


def fault_at(st, at_s: float, step: FaultStep) -> None:
    """Schedule a fault ``at_s`` seconds from now on the server's loop."""

    async def later() -> None:
        import asyncio

        await asyncio.sleep(at_s)
        await st.server.apply_fault(step)

    st.loop.call_soon_threadsafe(lambda: st.loop.create_task(later()))


async def scenario(name: str, tmp_path, faults: list[tuple[float, FaultStep]], duration: float = 12.0,
                   **cfg_kw) -> tuple[dict, RecLog, Monitor, object]:
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        for at, step in faults:
            fault_at(st, at, step)
        t0 = time.time()
        res = await run_bot(st, bot_config(st.url, str(tmp_path), **cfg_kw), duration, log)
        t_end = t0 + duration
        time.sleep(0.3)
        mon.stop()
        rec = server_records(st, ADDR)
        counts = check_accounting(res, rec)
        zero = mon.first_time_resting_zero_after(t_end)
        out = {"scenario": name, **counts, "max_abs_position_usd": round(mon.max_abs_position_usd(), 2),
               "shutdown_cancel_all_s": None if zero is None else round(max(zero - t_end, 0.0), 2),
               "server_stats": {k: v for k, v in rec["stats"].items() if k.startswith(("fault", "ws_conn", "address",
                                                                                       "restarts", "ip_"))}}
        print(json.dumps(out))
        assert mon.max_abs_position_usd() <= POS_BOUND_USD
        assert rec["resting"] == 0, "orders left resting after shutdown"
        assert res.resting_after_shutdown == 0
        return out, log, mon, st


async def test_ws_drop_delay_reorder_resubscribe_and_resync(tmp_path):
    out, _log, _, _ = await scenario("ws_drop+delay+reorder", tmp_path, [
        (4.0, FaultStep(0, "drop_ws", {"target": "hl"})),
        (6.0, FaultStep(0, "delay_ws", {"delay_ms": 300, "duration_s": 2.0})),
        (8.5, FaultStep(0, "reorder_ws", {"window_ms": 150, "duration_s": 2.0})),
    ], duration=13.0)
    assert out["server_stats"]["ws_connections_hl"] >= 2, "the bot did not reconnect"
    assert out["acked"] > 0


async def test_freeze_reject_and_rate_limit(tmp_path):
    out, _, _, _ = await scenario("freeze+reject+rate_limit", tmp_path, [
        (3.0, FaultStep(0, "freeze_book", {"coin": COIN, "duration_s": 3.0})),
        (6.5, FaultStep(0, "reject_orders", {"fraction": 0.5, "duration_s": 2.0})),
        (9.0, FaultStep(0, "rate_limit", {"kind": "address", "duration_s": 1.5})),
    ], duration=13.0)
    assert out["server_stats"].get("fault_freeze_book") == 1


async def test_pause_and_server_restart_recover_orders(tmp_path):
    out, _, _, _ = await scenario("pause+restart", tmp_path, [
        (3.0, FaultStep(0, "pause", {"duration_s": 1.5})),
        (7.0, FaultStep(0, "restart", {"down_s": 1.0})),
    ], duration=14.0)
    assert out["server_stats"].get("restarts") == 1


async def test_kill_cancels_all_within_1s_and_survives_restart(tmp_path):
    from hlmm.risk.store import KillStateStore

    store = KillStateStore(tmp_path / "kill.json")
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        fault_at(st, 5.0, FaultStep(0, "reject_orders", {"fraction": 1.0, "duration_s": 30.0}))
        # Run until the kill (plus 2 s to watch the cancels), bounded at 30 s: how soon the bot happens to send
        # three orders into the rejecting server depends on the market, so a fixed short run was flaky.
        stop = asyncio.Event()

        async def stop_after_kill() -> None:
            while log.first("kill") is None:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)
            stop.set()

        watcher = asyncio.create_task(stop_after_kill())
        try:
            res = await run_bot(st, bot_config(st.url, str(tmp_path), max_rejections=2), 30.0, log,
                                kill_store=store, stop=stop)
        finally:
            watcher.cancel()
        mon.stop()
        t_kill = log.first("kill")
        assert t_kill is not None, "the rejection burst did not kill"
        zero = mon.first_time_resting_zero_after(t_kill)
        assert zero is not None and zero - t_kill <= 1.0 + 0.15  # 0.1 s sampling granularity
        rec = server_records(st, ADDR)
        counts = check_accounting(res, rec)
        n_before = len(rec["orders"])
        # Restart the bot: the latched kill must keep it from quoting.
        log2 = RecLog()
        await run_bot(st, bot_config(st.url, str(tmp_path), max_rejections=2), 4.0, log2, kill_store=store)
        rec2 = server_records(st, ADDR)
        assert len(rec2["orders"]) == n_before, "a latched kill placed new orders after restart"
        print(json.dumps({"scenario": "kill+bot_restart", **counts, "kill_to_cancel_all_s": round(zero - t_kill, 2),
                          "max_abs_position_usd": round(mon.max_abs_position_usd(), 2)}))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP")
def test_dead_man_cancels_when_bot_goes_silent(tmp_path):
    """``hlmm run`` as a subprocess, frozen with SIGSTOP for longer than the dead-man window: the server's
    scheduleCancel fires and nothing rests; the bot then resumes and shuts down cleanly.

    ``hlmm run --mode live`` also starts the out-of-process guardian, which would cancel (and SIGKILL the frozen
    bot) after ``guardian_timeout_s``: here its timeout is far above the freeze, so only the exchange-side switch
    can be what cancels, and the test checks that the guardian never fired and the orders went as scheduledCancel."""
    with make_server() as st:
        cfg = tmp_path / "bot.toml"
        cfg.write_text(
            f'[run]\nnetwork = "local"\nlocal_url = "{st.url}"\ndead_man_s = 6\nguardian_timeout_s = 120\n'
            f'[coins.{COIN}.risk]\nmax_position_usd = {MAX_POS_USD}\ndaily_loss_limit_usd = 500\n'
            f'max_drawdown_usd = 300\n[coins.{COIN}.estimators]\nwarmup_timeout_s = 2\n'
            f'[coins.{COIN}.reference]\nbinance_symbol = "off"\n')
        env = {**os.environ, "HLMM_PRIVATE_KEY": KEY}
        proc = subprocess.Popen([sys.executable, "-m", "hlmm.cli", "run", "--coin", COIN, "--mode", "live",
                                 "--network", "local", "--duration", "40", "--config", str(cfg),
                                 "--state-dir", str(tmp_path / "state"), "--log-dir", str(tmp_path / "logs")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mon = Monitor(st, ADDR).start()
        try:
            end = time.time() + 25
            while time.time() < end and not any(r > 0 for _, _, r, _ in mon.samples):
                time.sleep(0.2)
            assert any(r > 0 for _, _, r, _ in mon.samples), "the bot never quoted"
            time.sleep(2.0)  # let it arm the dead man's switch
            proc.send_signal(signal.SIGSTOP)
            t_stop = time.time()
            time.sleep(6.0 + 2.5)
            zero = mon.first_time_resting_zero_after(t_stop)
            assert zero is not None, "orders still resting after the dead-man window"
            proc.send_signal(signal.SIGCONT)
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)  # reap it: no zombie left behind
            mon.stop()
        assert rc == 0  # resumed and shut down cleanly (a guardian that fired would have SIGKILLed it)
        rec = server_records(st, ADDR)
        assert rec["resting"] == 0
        fired = rec["stats"].get("scheduled_cancels_fired", 0)
        assert fired >= 1
        assert any(status == "scheduledCancel" for _, _, status in rec["orders"])  # the exchange's switch did it
        glog = tmp_path / "logs" / "guardian.jsonl"
        events = [json.loads(line)["event"] for line in glog.read_text().splitlines() if line.strip()]
        assert "guardian_started" in events and "guardian_fire" not in events
        print(json.dumps({"scenario": "dead_man", "silent_to_no_resting_s": round(zero - t_stop, 2),
                          "scheduled_cancels_fired": fired, "server_orders": len(rec["orders"])}))
