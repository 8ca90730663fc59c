"""Resident memory of the bot over a long live run against the local exchange (issue 9 item 10).

Starts ``hlmm exchange`` (loopback, any free port, accelerated market ``--speed``) and ``hlmm run --mode live
--network local`` as subprocesses, samples the bot's RSS (``/proc/<pid>/status`` VmRSS) every ``--sample-s``
seconds, and prints the RSS after warm-up, at the end and the least-squares slope (MB/min) of the samples taken
after warm-up. Goal: flat within +/-5 MB after warm-up over 30 minutes. Linux only (/proc).

    python benchmarks/bench_live_rss.py [--minutes 30] [--warmup-minutes 5] [--speed 5]

Last measurement (2 cores, 30 min, warm-up 5 min, speed 5, after the live bounds of hlmm.engine.recent /
LIVE_KEEP_TERMINAL / KEEP_FINISHED=500): 73.7 MB after warm-up -> 76.3 MB at the end, +2.6 MB, slope +0.095 MB/min
(before: 71.7 -> 79.7 MB, +0.33 MB/min). What still grows after warm-up fills its bound slowly (the recorder's
1 s samples and fills, RunStats fills, the fill-key windows, the journal's day): all bounded.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _machine import machine  # the script's directory is on sys.path

KEY = "0x" + "5a" * 32  # a throwaway test key: the local exchange creates its account on first use
COIN = "BTC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def wait_http(url: str, timeout_s: float) -> bool:
    end = time.time() + timeout_s
    while time.time() < end:
        try:
            req = urllib.request.Request(url + "/info", data=b'{"type":"meta"}',
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 0.0 if var == 0 else sum((t - mt) * (r - mr) for t, r in samples) / var * 60.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0, help="wall minutes of live trading (default 30)")
    ap.add_argument("--warmup-minutes", type=float, default=5.0, help="samples before this are warm-up")
    ap.add_argument("--speed", type=float, default=5.0, help="market time acceleration of the local exchange")
    ap.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling interval (wall seconds)")
    ap.add_argument("--csv", type=Path, default=None, help="also write the samples (t_s, rss_mb) here")
    args = ap.parse_args()
    print(machine())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hlmm-rss-") as tmp:
        d = Path(tmp)
        cfg = d / "bot.toml"
        cfg.write_text(
            f'[run]\nnetwork = "local"\nlocal_url = "{url}"\ndead_man_s = 10\n'
            f'[coins.{COIN}.risk]\nmax_position_usd = 2000\ndaily_loss_limit_usd = 1000000\n'
            f'max_drawdown_usd = 1000000\nmax_rejections_per_min = 1000\n'
            f'[coins.{COIN}.estimators]\nwarmup_timeout_s = 2\n'
            f'[coins.{COIN}.reference]\nbinance_symbol = "off"\n')
        server = subprocess.Popen([sys.executable, "-m", "hlmm.cli", "exchange", "--port", str(port),
                                   "--preset", "btc", "--speed", str(args.speed), "--usdc", "1000000"],
                                  stdout=subprocess.DEVNULL, stderr=(d / "server.err").open("w"))
        bot: subprocess.Popen[bytes] | None = None
        samples: list[tuple[float, float]] = []
        try:
            if not wait_http(url, 60):
                raise SystemExit("local exchange did not come up")
            duration = args.minutes * 60.0
            env = {**os.environ, "HLMM_PRIVATE_KEY": KEY}
            bot = subprocess.Popen([sys.executable, "-m", "hlmm.cli", "run", "--coin", COIN, "--mode", "live",
                                    "--network", "local", "--duration", str(duration + 30), "--config", str(cfg),
                                    "--state-dir", str(d / "state"), "--log-dir", str(d / "logs")],
                                   env=env, stdout=(d / "bot.out").open("w"), stderr=(d / "bot.err").open("w"))
            t0 = time.time()
            while time.time() - t0 < duration:
                if bot.poll() is not None:
                    print(f"bot exited early with code {bot.returncode}; stderr tail:")
                    print((d / "bot.err").read_text()[-2000:])
                    break
                r = rss_mb(bot.pid)
                if r:  # None/0: not running (yet)
                    samples.append((time.time() - t0, r))
                    print(f"t={samples[-1][0]:7.0f} s  rss={r:7.1f} MB", flush=True)
                time.sleep(args.sample_s)
        finally:
            for p in (bot, server):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(10)
        out = (d / "bot.out").read_text() if (d / "bot.out").exists() else ""
        print("bot output (tail):\n" + "\n".join(out.splitlines()[-8:]))
    if args.csv is not None:
        args.csv.write_text("t_s,rss_mb\n" + "".join(f"{t:.1f},{r:.2f}\n" for t, r in samples))
    warm = [(t, r) for t, r in samples if t >= args.warmup_minutes * 60.0]
    if not warm:
        print("no samples after warm-up")
        return
    lo, hi = min(r for _, r in warm), max(r for _, r in warm)
    print(f"RSS after warm-up ({args.warmup_minutes:g} min): {warm[0][1]:.1f} MB")
    print(f"RSS at the end ({samples[-1][0] / 60:.1f} min): {samples[-1][1]:.1f} MB")
    print(f"range after warm-up: {lo:.1f} .. {hi:.1f} MB (spread {hi - lo:.1f} MB)")
    print(f"slope after warm-up: {slope_mb_per_min(warm):+.3f} MB/min "
          f"(end - warm-up: {samples[-1][1] - warm[0][1]:+.1f} MB)")


if __name__ == "__main__":
    main()
