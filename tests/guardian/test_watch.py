"""The guardian's decision and line protocol (hlmm.guardian.watch), with injected time; the watch loop of
``python -m hlmm.guardian`` on a real pipe; and the guardian process's exits (clean "done", handover)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import orjson
import pytest

from hlmm.guardian import __main__ as gmain
from hlmm.guardian.watch import (
    MAX_LINE_BYTES,
    GuardianConfig,
    LineBuffer,
    ProtocolError,
    WatchState,
    decide,
    encode_message,
    next_wait_s,
    parse_config_line,
    parse_key_line,
    parse_message,
)
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "5a" * 32
SIGNER = Wallet.from_key("0x" + KEY).address.lower()


def _cfg(**kw) -> GuardianConfig:
    d = {"trader_pid": os.getpid(), "url": "http://127.0.0.1:9", "mainnet": False, "account": SIGNER,
         "signer": SIGNER, "vault": None, "coins": {"BTC": 0}, "timeout_s": 5.0, "cancel_bound_s": 10.0,
         "log_path": None}
    d.update(kw)
    return GuardianConfig(**d)


# ---- protocol --------------------------------------------------------------------------------------------------
def test_key_line_accepts_hex_and_never_echoes_it() -> None:
    assert parse_key_line(KEY.encode() + b"\n") == KEY
    assert parse_key_line(b"0x" + KEY.upper().encode()) == KEY.upper()
    for bad in (b"", b"12", KEY.encode()[:-1] + b"z", KEY.encode() + b"00"):
        with pytest.raises(ProtocolError) as ei:
            parse_key_line(bad)
        assert KEY[:16] not in str(ei.value)


def test_config_round_trip_and_refusals() -> None:
    c = _cfg(url="http://x/", vault="0x" + "AB" * 20)
    back = parse_config_line(c.to_json())
    assert back.url == "http://x" and back.vault == "0x" + "ab" * 20 and back.coins == {"BTC": 0}
    d = orjson.loads(c.to_json())
    for k, v in (("v", 2), ("trader_pid", 1), ("trader_pid", True), ("url", "ftp://x"), ("mainnet", 1),
                 ("coins", {}), ("coins", {"BTC": -1}), ("timeout_s", 0), ("timeout_s", float("inf")),
                 ("cancel_bound_s", True), ("account", "0x12"), ("log_path", 5)):
        with pytest.raises(ProtocolError):
            parse_config_line(orjson.dumps({**d, k: v}))
    with pytest.raises(ProtocolError):
        parse_config_line(b"[1]")
    with pytest.raises(ProtocolError):
        parse_config_line(b"{nope")


def test_messages_parse_and_defects_are_named() -> None:
    m = parse_message(encode_message("beat", 7, [(0, 5), (1, 6)]).strip())
    assert not isinstance(m, str) and m.kind == "beat" and m.nonce == 7 and m.orders == ((0, 5), (1, 6))
    assert parse_message(b"x") == "not_json"
    assert parse_message(b"[]") == "not_object"
    assert parse_message(b'{"t":"hello"}') == "unknown_type"
    assert parse_message(b'{"t":"beat","nonce":-1}') == "bad_nonce"
    assert parse_message(b'{"t":"beat","nonce":true}') == "bad_nonce"
    assert parse_message(b'{"t":"beat","orders":[[0,0]]}') == "bad_orders"
    assert parse_message(b'{"t":"beat","orders":[[0]]}') == "bad_orders"
    assert parse_message(b'{"t":"beat","orders":{}}') == "bad_orders"


def test_line_buffer_splits_and_drops_overlong_lines() -> None:
    b = LineBuffer()
    assert b.feed(b"a\nb") == [b"a"]
    assert b.feed(b"c\n\n") == [b"bc", b""]
    big = b"x" * (MAX_LINE_BYTES + 10)
    assert b.feed(big) == [] and b.overlong == 1
    assert b.feed(b"yyy\nok\n") == [b"ok"]  # the tail of the over-long line is dropped too
    # an over-long line whose newline arrives in the same chunk is dropped as well (never parsed)
    b2 = LineBuffer()
    assert b2.feed(b"x" * (MAX_LINE_BYTES + 10) + b"\nok\n") == [b"ok"] and b2.overlong == 1
    b3 = LineBuffer()
    assert b3.feed(b"x" * (MAX_LINE_BYTES - 5)) == []
    assert b3.feed(b"x" * 20 + b"\nok\n") == [b"ok"] and b3.overlong == 1


# ---- decision, injected time ---------------------------------------------------------------------------------
def test_heartbeat_timeout_with_injected_time() -> None:
    st = WatchState(last_msg=100.0)
    assert decide(st, 104.9, 5.0, True).kind == "wait"
    assert next_wait_s(st, 104.9, 5.0) == pytest.approx(0.1)
    st.on_line(encode_message("beat", 3, [(0, 9)]).strip(), 104.9)  # a beat resets the clock
    assert decide(st, 109.8, 5.0, True).kind == "wait"
    v = decide(st, 109.9, 5.0, True)
    assert v.kind == "fire" and "no heartbeat" in v.reason and v.silent_s == pytest.approx(5.0)
    assert st.orders == ((0, 9),) and st.last_nonce == 3
    assert next_wait_s(st, 200.0, 5.0) == 0.0


def test_bad_lines_do_not_count_as_heartbeats() -> None:
    st = WatchState(last_msg=100.0)
    for line in (b"garbage", b'{"t":"beat","nonce":-5}', b'{"t":"nope"}'):
        st.on_line(line, 104.0)
    assert st.last_msg == 100.0 and st.bad == {"not_json": 1, "bad_nonce": 1, "unknown_type": 1}
    assert decide(st, 105.0, 5.0, True).kind == "fire"


def test_nonce_only_grows_and_handover_keeps_last_known_orders() -> None:
    st = WatchState(last_msg=0.0)
    st.on_line(encode_message("beat", 10, [(0, 1)]).strip(), 1.0)
    st.on_line(encode_message("beat", 4, [(0, 1), (0, 2)]).strip(), 2.0)
    assert st.last_nonce == 10 and st.orders == ((0, 1), (0, 2))
    st.on_line(encode_message("handover", 12, None).strip(), 3.0)  # no orders in it: keep the beat's
    assert st.orders == ((0, 1), (0, 2)) and st.last_nonce == 12
    v = decide(st, 3.0, 5.0, True)
    assert v.kind == "fire" and "handed over" in v.reason


def test_done_wins_over_the_eof_that_follows_it() -> None:
    st = WatchState(last_msg=0.0)
    st.on_line(encode_message("done", 5).strip(), 1.0)
    st.eof = True
    assert decide(st, 100.0, 5.0, False).kind == "exit_clean"


@pytest.mark.parametrize(("eof", "parent", "why"), [(True, True, "pipe closed"), (False, False, "parent")])
def test_trader_gone_fires_at_once(eof: bool, parent: bool, why: str) -> None:
    st = WatchState(last_msg=0.0, eof=eof)
    v = decide(st, 0.1, 5.0, parent)
    assert v.kind == "fire" and why in v.reason


# ---- the watch loop on a real pipe -----------------------------------------------------------------------------
def _pipe_watch(cfg: GuardianConfig, lines: list[bytes], close: bool):
    r, w = os.pipe()
    try:
        for line in lines:
            os.write(w, line)
        if close:
            os.close(w)
            w = -1
        logs: list[str] = []
        res: list = []
        t = threading.Thread(target=lambda: res.append(gmain._watch(r, cfg, lambda ev, **kw: logs.append(ev))))
        t.start()
        t.join(30)
        assert not t.is_alive(), "watch loop did not decide"
        return res[0][0], res[0][1], logs
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_watch_loop_exits_clean_on_done_and_fires_on_eof_or_silence() -> None:
    cfg = _cfg(trader_pid=os.getppid(), timeout_s=30.0)  # _parent_alive: our parent plays the trader
    v, st, logs = _pipe_watch(cfg, [encode_message("beat", 1, [(0, 5)]), encode_message("done", 2)], close=True)
    assert v.kind == "exit_clean" and st.last_nonce == 2 and "guardian_first_beat" in logs
    v, st, _ = _pipe_watch(cfg, [encode_message("beat", 1, [(0, 5)]), b"junk\n"], close=True)
    assert v.kind == "fire" and "pipe closed" in v.reason and st.orders == ((0, 5),) and st.bad == {"not_json": 1}
    v, _, _ = _pipe_watch(_cfg(trader_pid=os.getppid(), timeout_s=0.3), [encode_message("beat", 1)], close=False)
    assert v.kind == "fire" and "no heartbeat" in v.reason
    v, _, _ = _pipe_watch(_cfg(trader_pid=os.getpid(), timeout_s=30.0), [], close=False)  # not our parent
    assert v.kind == "fire" and "parent" in v.reason


# ---- the process -----------------------------------------------------------------------------------------------
def _guardian(stdin: bytes, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hlmm.guardian"], input=stdin, capture_output=True,
                          timeout=timeout_s, check=False)


def test_process_refuses_bad_start_up_input_with_code_2() -> None:
    assert _guardian(b"").returncode == gmain.EXIT_BAD_INPUT
    assert _guardian(b"nokey\n{}\n").returncode == gmain.EXIT_BAD_INPUT
    other = "11" * 32
    p = _guardian(other.encode() + b"\n" + _cfg().to_json() + b"\n")  # the key is not the configured signer
    assert p.returncode == gmain.EXIT_BAD_INPUT and b"not the trader's signer" in p.stderr
    assert other.encode() not in p.stderr + p.stdout


# A stand-in trader: spawns the guardian as the live runner does (its own session, key on the pipe), then says
# ``kind`` and closes the pipe; prints the guardian's exit code. Killed by the guardian, it prints nothing.
_TRADER = textwrap.dedent('''
    import os, subprocess, sys, orjson
    kind, key, cfg = sys.argv[1], sys.argv[2], orjson.loads(sys.argv[3])
    cfg["trader_pid"] = os.getpid()
    g = subprocess.Popen([sys.executable, "-m", "hlmm.guardian"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         start_new_session=True)
    g.stdin.write(key.encode() + b"\\n" + orjson.dumps(cfg) + b"\\n"); g.stdin.flush()
    assert g.stdout.readline().startswith(b"ready ")
    g.stdin.write(orjson.dumps({"t": kind, "nonce": 1}) + b"\\n"); g.stdin.flush(); g.stdin.close()
    print("guardian_rc", g.wait(60), flush=True)
''')


def _trader(kind: str, url: str) -> subprocess.CompletedProcess:
    cfg = orjson.loads(_cfg(url=url, cancel_bound_s=20.0).to_json())
    return subprocess.run([sys.executable, "-c", _TRADER, kind, KEY, orjson.dumps(cfg).decode()],
                          capture_output=True, timeout=90, check=False)


def test_done_exits_0_without_touching_the_exchange() -> None:
    p = _trader("done", "http://127.0.0.1:9")  # nothing listens there: any request would fail
    assert p.returncode == 0 and b"guardian_rc 0" in p.stdout, p.stderr[-2000:]


def test_handover_cancels_without_killing_the_trader_that_handed_over() -> None:
    """A handover comes from a trader that is shutting down (alive, no longer signing): the guardian cancels
    everything, but it must not SIGKILL that trader (its shutdown - journal, summary - must finish)."""
    from tests.e2e.harness import make_server

    with make_server() as st:
        p = _trader("handover", st.url)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert f"guardian_rc {gmain.EXIT_FIRED_OK}".encode() in p.stdout
