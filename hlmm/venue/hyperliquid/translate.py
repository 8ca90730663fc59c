"""Translation between Hyperliquid's order statuses / replies and the venue protocol's events and reasons."""

from __future__ import annotations

from typing import Any

from hlmm.venue.base import RejectReason

# orderUpdates status -> OrderCancelled.reason (anything else ending in "Canceled" keeps its own name)
_CANCEL_REASONS = {
    "canceled": "requested",
    "marginCanceled": "margin",
    "selfTradeCanceled": "self_trade",
    "reduceOnlyCanceled": "reduce_only",
    "scheduledCancel": "scheduled_cancel",
    "siblingFilledCanceled": "sibling_filled",
    "delistedCanceled": "delisted",
    "liquidatedCanceled": "liquidated",
    "vaultWithdrawalCanceled": "vault_withdrawal",
    "openInterestCapCanceled": "open_interest_cap",
}
# orderUpdates / orderStatus rejection statuses -> RejectReason
_REJECT_REASONS = {
    "rejected": RejectReason.UNKNOWN,
    "badAloPxRejected": RejectReason.POST_ONLY_CROSS,
    "tickRejected": RejectReason.TICK,
    "minTradeNtlRejected": RejectReason.MIN_VALUE,
    "perpMarginRejected": RejectReason.MARGIN,
    "perpMaxPositionRejected": RejectReason.MARGIN,
    "reduceOnlyRejected": RejectReason.REDUCE_ONLY,
    "iocCancelRejected": RejectReason.IOC_NO_MATCH,
    "oracleRejected": RejectReason.PRICE_BAND,
    "badTriggerPxRejected": RejectReason.PRICE_BAND,
    "marketOrderNoLiquidityRejected": RejectReason.IOC_NO_MATCH,
    "positionIncreaseAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "positionFlipAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "tooAggressiveAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "openInterestIncreaseRejected": RejectReason.OPEN_INTEREST_CAP,
    "insufficientSpotBalanceRejected": RejectReason.MARGIN,
}


def _row_oids(rows: Any, coin: str) -> set[int]:
    """The oids of ``coin`` in a raw openOrders reply, row by row: cancel-all must cancel every good row even when
    another row is malformed (the strict validator, which rejects the whole reply, is for snapshots)."""
    out: set[int] = set()
    for r in rows if isinstance(rows, list) else ():
        if not isinstance(r, dict) or r.get("coin") != coin:
            continue
        oid = r.get("oid")
        if isinstance(oid, int) and not isinstance(oid, bool) and oid >= 0:
            out.add(oid)
    return out


def _wire_reason(e: Exception) -> RejectReason:
    """Reject reason for an order refused locally before sending (bad price, size or cloid)."""
    msg = str(e)
    if "cloid" in msg:
        return RejectReason.UNKNOWN
    return RejectReason.TICK if "price" in msg else RejectReason.SIZE

