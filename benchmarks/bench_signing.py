"""Microseconds per signed order batch (1 and 10 ALO orders): official SDK vs hlmm.

Run: ``python benchmarks/bench_signing.py [--number N]``. Two measurements per library:
``sign`` signs a pre-built action; ``build+sign`` also turns order requests into the wire action.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

import eth_account
from _machine import machine  # the script's directory is on sys.path
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid

from hlmm.market.instrument import default_registry
from hlmm.venue.base import PlaceOrder
from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.signing import sign_l1_action
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
NONCE = 1_700_000_000_000


def per_call_us(fn: Callable[[], object], number: int, repeat: int = 5) -> tuple[float, float]:
    """(median, min) microseconds per call over ``repeat`` runs of ``number`` calls."""
    runs = [t / number * 1e6 for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return statistics.median(runs), min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--number", type=int, default=300, help="calls per timing run (hlmm; SDK uses a fifth)")
    args = ap.parse_args()

    inst = default_registry().get("BTC")
    wallet = Wallet.from_key(KEY)
    acct = eth_account.Account.from_key(KEY)
    print(machine())
    print(f"{'batch':>6} {'library':>6} {'what':>11} {'median µs':>10} {'min µs':>8}")
    for n in (1, 10):
        # A ladder around 64000: bids below, asks above, distinct sizes.
        orders = [
            PlaceOrder("BTC", wire.cloid_from_int(i + 1), i % 2 == 0, 64000.0 + (i // 2 + 1) * (1 - 2 * (i % 2 == 0)),
                       inst.floor_size(0.001 * (i + 1)))
            for i in range(n)
        ]  # fmt: skip
        reqs = [
            {"coin": "BTC", "is_buy": o.is_buy, "sz": o.sz, "limit_px": o.px, "order_type": {"limit": {"tif": "Alo"}},
             "reduce_only": False, "cloid": Cloid(o.cloid)}
            for o in orders
        ]  # fmt: skip
        ours_action = wire.order_action([wire.order_to_wire(inst, o) for o in orders])
        sdk_action = sdk.order_wires_to_order_action([sdk.order_request_to_order_wire(r, 0) for r in reqs])
        assert ours_action == sdk_action
        assert sign_l1_action(wallet, ours_action, NONCE, None, None, True) == sdk.sign_l1_action(
            acct, sdk_action, None, NONCE, None, True
        )

        def ours_sign(a: dict = ours_action) -> dict:
            return sign_l1_action(wallet, a, NONCE, None, None, True)

        def ours_full(os: list[PlaceOrder] = orders) -> dict:
            a = wire.order_action([wire.order_to_wire(inst, o) for o in os])
            return sign_l1_action(wallet, a, NONCE, None, None, True)

        def sdk_sign(a: dict = sdk_action) -> dict:
            return sdk.sign_l1_action(acct, a, None, NONCE, None, True)

        def sdk_full(rs: list[dict] = reqs) -> dict:
            a = sdk.order_wires_to_order_action([sdk.order_request_to_order_wire(r, 0) for r in rs])
            return sdk.sign_l1_action(acct, a, None, NONCE, None, True)

        rows = [
            ("sdk", "sign", sdk_sign, max(args.number // 5, 10)),
            ("sdk", "build+sign", sdk_full, max(args.number // 5, 10)),
            ("hlmm", "sign", ours_sign, args.number),
            ("hlmm", "build+sign", ours_full, args.number),
        ]
        res = {}
        for lib, what, fn, number in rows:
            med, best = per_call_us(fn, number)
            res[(lib, what)] = med
            print(f"{n:>6} {lib:>6} {what:>11} {med:>10.1f} {best:>8.1f}")
        for what in ("sign", "build+sign"):
            print(f"{n:>6} speed-up {what}: {res[('sdk', what)] / res[('hlmm', what)]:.1f}x")


if __name__ == "__main__":
    main()
