"""The trader's side of the guardian: spawn ``python -m hlmm.guardian``, hand it the key on its stdin pipe, send a
heartbeat from the trader's event loop, and tell it "done" (or "handover") at the end.

The key travels only on the pipe: not on the command line, not in the environment (the child's environment has
``HLMM_PRIVATE_KEY``/``HLMM_KEYSTORE_PASSWORD`` removed; a keystore-loaded key was never in the environment
anyway). The guardian runs in its own session, so a terminal Ctrl-C reaches only the trader, which then shuts down
cleanly and says "done".

Heartbeats are written non-blocking: a guardian that stops reading can never stall the trader (beats are dropped
while the pipe is full). If the guardian exits unexpectedly the trader is unguarded: ``on_lost`` is called (the
live runner stops the session: no live trading without a guardian).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hlmm.guardian.watch import GuardianConfig, MessageKind, encode_message

SECRET_ENV = ("HLMM_PRIVATE_KEY", "HLMM_KEYSTORE_PASSWORD")
READY_TIMEOUT_S = 30.0
STOP_WAIT_S = 5.0
CANCEL_BOUND_S = 60.0


class GuardianError(RuntimeError):
    """The guardian could not be started (live trading must not start unguarded)."""


def _secret_hex(wallet: Any) -> str:
    # The one place the key leaves the Wallet object: written straight into the guardian's stdin pipe.
    return wallet._key.secret.hex()


class Guardian:
    """One guardian process for one trading session: ``await start()``, heartbeats run by themselves from the
    trader's loop, ``await stop(clean)`` at the end."""

    def __init__(
        self,
        *,
        wallet: Any,
        url: str,
        is_mainnet: bool,
        account: str,
        vault: str | None,
        coins: dict[str, int],
        timeout_s: float,
        nonce_last: Callable[[], int],
        known_orders: Callable[[], list[tuple[int, int]]],
        log: Any,
        out: Callable[[str], None] = print,
        log_path: Path | None = None,
        on_lost: Callable[[], None] | None = None,
        cancel_bound_s: float = CANCEL_BOUND_S,
        python: str = sys.executable,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"guardian timeout must be > 0, got {timeout_s}")
        self._wallet = wallet
        self._cfg = GuardianConfig(trader_pid=os.getpid(), url=url.rstrip("/"), mainnet=is_mainnet,
                                   account=account.lower(), signer=wallet.address.lower(),
                                   vault=vault.lower() if vault else None, coins=dict(coins), timeout_s=timeout_s,
                                   cancel_bound_s=cancel_bound_s, log_path=str(log_path) if log_path else None)
        self.interval_s = min(1.0, timeout_s / 4)
        self._nonce_last = nonce_last
        self._known = known_orders
        self._log = log
        self._out = out
        self._on_lost = on_lost
        self._python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd: int | None = None
        self._pending = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.beats_sent = 0
        self.beats_dropped = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        try:
            proc = subprocess.Popen([self._python, "-m", "hlmm.guardian"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env, start_new_session=True, close_fds=True)
        except OSError as e:
            raise GuardianError(f"cannot start the guardian process: {e}") from None
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_secret_hex(self._wallet).encode() + b"\n" + self._cfg.to_json() + b"\n")
            proc.stdin.flush()
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), ready_timeout_s)
        except (OSError, TimeoutError) as e:
            line = b""
            why = f"{type(e).__name__}: {e}"
        else:
            why = f"exit code {proc.poll()}" if not line else "unexpected reply"
        if not line.startswith(b"ready "):
            proc.kill()
            await asyncio.to_thread(proc.wait)
            raise GuardianError(f"the guardian did not start ({why}); live trading needs it")
        proc.stdout.close()
        self._fd = proc.stdin.fileno()
        os.set_blocking(self._fd, False)
        self._log.info("guardian_started", pid=proc.pid, timeout_s=self._cfg.timeout_s,
                       interval_s=self.interval_s, coins=sorted(self._cfg.coins))
        self._out(f"guardian: pid {proc.pid}, cancels everything if this process is silent for "
                  f"{self._cfg.timeout_s:g} s or dies")
        self.beat()
        self._task = asyncio.create_task(self._beat_loop())

    # ---- heartbeat ----------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        """Write what fits without blocking; the rest waits in ``_pending``. False when the pipe is broken."""
        if self._fd is None:
            return False
        self._pending += data
        try:
            n = os.write(self._fd, self._pending)
        except BlockingIOError:
            return True
        except OSError:  # BrokenPipeError: the guardian is gone (the beat loop notices its exit)
            return False
        del self._pending[:n]
        return True

    def beat(self) -> None:
        """One heartbeat (the last nonce signed and the oids the tracker knows). Never blocks."""
        if self._fd is None or self._stopping:
            return
        if self._pending:  # a previous line is still half-written: finish it, drop this beat
            self._write(b"")
            self.beats_dropped += 1
            return
        try:
            msg = encode_message("beat", self._nonce_last(), self._known())
        except Exception as e:  # a beat must never take the trader down
            self._log.warning("guardian_beat_failed", error=str(e))
            return
        if self._write(msg):
            self.beats_sent += 1

    async def _beat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval_s)
            if self._stopping:
                return
            rc = self.proc.poll() if self.proc is not None else None
            if rc is not None:
                self._lost(rc)
                return
            self.beat()

    def _lost(self, rc: int) -> None:
        self._log.error("guardian_lost", pid=self.pid, rc=rc)
        self._out(f"guardian exited unexpectedly (code {rc}): stopping, no live trading without a guardian")
        self._fd = None
        if self._on_lost is not None:
            self._on_lost()

    # ---- stop ---------------------------------------------------------------------------------------------
    async def stop(self, clean: bool, wait_s: float = STOP_WAIT_S) -> int | None:
        """Tell the guardian "done" (``clean``: nothing of ours rests, it exits 0 without signing) or "handover"
        (it cancels everything now), close the pipe and wait up to ``wait_s`` for its exit code."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        proc = self.proc
        if proc is None:
            return None
        if self._fd is not None:
            kind: MessageKind = "done" if clean else "handover"
            self._write(encode_message(kind, self._nonce_last(), None if clean else self._safe_known()))
            deadline = asyncio.get_running_loop().time() + 1.0
            while self._pending and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
                if not self._write(b""):
                    break
            self._log.info("guardian_stop_sent", kind=kind, beats_sent=self.beats_sent,
                           beats_dropped=self.beats_dropped)
            self._fd = None
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            rc = await asyncio.to_thread(proc.wait, wait_s)
        except subprocess.TimeoutExpired:
            self._log.warning("guardian_still_running", pid=proc.pid, clean=clean)
            self._out(f"guardian: pid {proc.pid} still {'exiting' if clean else 'cancelling'} in the background")
            return None
        self._log.info("guardian_exited", pid=proc.pid, rc=rc, clean=clean)
        if rc == 0:
            self._out("guardian: exited cleanly (0)")
        elif rc == 3:
            self._out("guardian: cancelled everything left (3)")
        else:
            self._out(f"guardian: exited with code {rc}: check open orders")
        return rc

    def _safe_known(self) -> list[tuple[int, int]]:
        try:
            return self._known()
        except Exception:
            return []
