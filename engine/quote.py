"""Batch evaluation: price and availability for a batch of lines from one state version.

:func:`quote` is what the API's Quote, GetPrices and GetAvailability call. It resolves codes
in bulk, converts UoMs, checks sell rules (array passes), prices (``engine.pricing``) and
computes ATP (``engine.atp``) — one compiled kernel call each — and applies the account's
disclosure policy on the way out, with per-line statuses so one bad line never fails the
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine.atp import Availability, availability, location_set
from engine.catalog import LineStatus, SellRules, resolve_lines, sell_rules
from engine.contexts import account_context
from engine.errors import InvalidInput, LimitExceeded, UnknownCode
from engine.money import check_currency, micros_per_minor_unit
from engine.pricing import Policy, PriceResult, price_lines
from engine.state import Disclosure, ItemStatus, State

__all__ = [
    "AsOf",
    "Bucket",
    "LineStatus",
    "QuoteResult",
    "disclose",
    "quote",
]

I64 = npt.NDArray[np.int64]
DEFAULT_MAX_LINES = 5_000


class Bucket(IntEnum):
    """Stock buckets for the BUCKETS disclosure policy."""

    OUT = 0
    LOW = 1
    IN_STOCK = 2


# plain ints for array comparisons (numpy compares an IntEnum member ~6x slower)
_OK, _NO_PRICE, _AMOUNT_OVERFLOW = (
    int(LineStatus.OK),
    int(LineStatus.NO_PRICE),
    int(LineStatus.AMOUNT_OVERFLOW),
)
_OUT, _LOW, _IN_STOCK = int(Bucket.OUT), int(Bucket.LOW), int(Bucket.IN_STOCK)
_UNKNOWN_ITEM = int(ItemStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class AsOf:
    """How fresh an answer is: state version, last applied id per stream, newest source time."""

    version: int
    stream_ids: dict[str, str]
    newest_ts_ms: int


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """Columnar answer: row i answers line i."""

    as_of: AsOf
    account: int
    currency: str
    sku: I64  # -1 where unknown
    uom: I64  # the line's UoM id, -1 for the base UoM (or an unknown code)
    status: npt.NDArray[np.int8]
    base_qty: I64
    factor: I64
    sell: SellRules
    prices: PriceResult | None
    stock: Availability | None
    disclosure: Disclosure
    shown_available: I64 | None  # (n, L) after disclosure; -1 where hidden
    bucket: npt.NDArray[np.int8] | None  # (n, L) Bucket


def disclose(mode: Disclosure, cap: int, values: I64) -> tuple[I64, npt.NDArray[np.int8]]:
    """Apply a disclosure policy to clipped quantities: (shown, bucket).

    EXACT shows the number; CAPPED shows at most ``cap``; BUCKETS hides the number (-1) and
    gives OUT (0), LOW (≤ cap) or IN_STOCK. Stored numbers are never changed.
    """
    # OUT (0) where ≤ 0, else LOW (1) plus one more where above the cap: IN_STOCK (2)
    bucket = (values > cap).astype(np.int8)
    bucket += _LOW
    bucket *= values > 0
    if mode == Disclosure.EXACT:
        shown = values
    elif mode == Disclosure.CAPPED:
        shown = np.minimum(values, cap)
    else:
        shown = np.full(values.shape, -1, dtype=np.int64)
    return shown, bucket


def quote(
    state: State,
    *,
    account: str,
    skus: Sequence[str],
    qty: Sequence[int] | I64,
    uoms: Sequence[str] | None = None,
    currency: str | None = None,
    pricing_date: int,
    today: int | None = None,
    locations: Sequence[str] | None = None,
    region: str | None = None,
    policy: Policy = Policy.PRIORITY,
    explain: bool = False,
    with_prices: bool = True,
    with_availability: bool = True,
    max_lines: int = DEFAULT_MAX_LINES,
) -> QuoteResult:
    """Price and check availability of a batch of lines for ``account``.

    ``qty`` is per line in the line's UoM (``uoms``: '' or None means the base UoM).
    Dates are days since 1970-01-01; ``today`` defaults to ``pricing_date``. Raises
    :class:`InvalidInput` / :class:`UnknownCode` only for request-level problems (account,
    currency, locations, sizes); line problems are statuses. A ``currency`` must be an ISO
    4217 code in use (``engine.money.ISO_4217``); one the catalogue has no prices in is
    answered line by line (NO_PRICE).
    """
    n = len(skus)
    if n == 0:
        raise InvalidInput("lines", "no lines", "at least 1")
    if n > max_lines:
        raise LimitExceeded("lines", f"{n} lines", f"at most {max_lines} per request")
    quantities = np.asarray(qty, dtype=np.int64)
    account_id = state.accounts.get(account)
    if account_id < 0 or state.account_rows["version"][account_id] < 0:
        raise UnknownCode("account", account)
    if currency:
        check_currency(currency)
    currency_code = currency or state.currencies.code(
        int(state.account_rows["currency"][account_id])
    )
    currency_id = state.currencies.get(currency_code)
    micros_per_minor = micros_per_minor_unit(currency_code)
    today = pricing_date if today is None else today

    lines = resolve_lines(state, skus, quantities, uoms)
    sku, uom_id, factor, base_qty, status = (
        lines.sku,
        lines.uom,
        lines.factor,
        lines.base_qty,
        lines.status,
    )
    item_status = lines.item_status
    safe_sku = np.maximum(sku, 0)
    sell = sell_rules(state, safe_sku, base_qty, factor, lines.items)

    prices = None
    if with_prices:
        if currency_id < 0:
            prices = None
            status = np.where(status == _OK, _NO_PRICE, status).astype(np.int8)
        else:
            ctx = account_context(state, account_id, currency_id, pricing_date)
            # only orderable lines are priced: a bad line must not show another SKU's price
            rows = np.nonzero(status == _OK)[0]
            whole = rows.size == n
            pick = slice(None) if whole else rows
            priced_items = lines.items if whole else lines.items.take(rows)
            prices = price_lines(
                state,
                ctx,
                safe_sku[pick],
                base_qty[pick],
                np.maximum(factor[pick], 1),
                priced_items.min_order_qty,
                priced_items.order_multiple,
                micros_per_minor,
                policy,
                explain,
                priced_items,
            )
            if not whole:
                prices = prices.scatter(rows, n)
            ok = status == _OK
            status = np.where(
                ok & ~prices.priced,
                _NO_PRICE,
                np.where(ok & prices.overflow, _AMOUNT_OVERFLOW, status),
            ).astype(np.int8)

    stock = shown = bucket = None
    mode = Disclosure(int(state.account_rows["disclosure"][account_id]))
    if with_availability:
        location_ids = location_set(state, locations, region)
        stock = availability(state, safe_sku, base_qty, location_ids, today, lines.items)
        cap = int(state.account_rows["disclosure_cap"][account_id])
        shown, bucket = disclose(mode, cap, stock.available_now)
        unknown = np.nonzero(item_status == _UNKNOWN_ITEM)[0]
        if unknown.size:  # row 0 stood in for them: answer "nothing" instead
            for block in (stock.available_now, shown):
                block[unknown] = (
                    0 if block is stock.available_now or mode != Disclosure.BUCKETS else -1
                )
            stock.oversold[unknown] = False
            stock.network_available[unknown] = 0
            stock.earliest_date[unknown] = -1
            stock.date_source[unknown] = 0
            bucket[unknown] = _OUT
    as_of = AsOf(state.version, dict(state.stream_ids), state.newest_ts_ms)
    return QuoteResult(
        as_of, account_id, currency_code, sku, uom_id, status, base_qty, factor, sell,
        prices, stock, mode, shown, bucket,
    )  # fmt: skip
