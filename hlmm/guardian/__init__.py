"""The out-of-process guardian: a small process that cancels every order of the traded coins when its trader dies,
freezes or hands over, because the exchange's own dead man's switch (``scheduleCancel``) may be refused.

- :mod:`hlmm.guardian.watch`: the pure decision (given heartbeats, EOF and the trader's messages: wait, exit
  cleanly or fire) and the line protocol between trader and guardian.
- :mod:`hlmm.guardian.canceller`: the cancel loop (openOrders -> cancel by oid, retried with backoff until the
  exchange shows none of ours, bounded).
- :mod:`hlmm.guardian.__main__`: the process (``python -m hlmm.guardian``), started by the trader.
- :mod:`hlmm.guardian.launcher`: the trader's side (spawn, hand over the key on the pipe, heartbeat, stop).

No strategy, no engine: the guardian imports only the Hyperliquid REST clients, signing and nonces.
"""
