"""Batch evaluation: price and availability for a batch of lines from one state version.

:func:`quote` is what the API's Quote, GetPrices and GetAvailability call. It checks the
request (account, currency, locations, sizes) and then makes **one** call of the compiled
kernel ``engine._kernels._quote``, which resolves the codes through the state's shared code
indexes, converts UoMs, gives every line its status and sell-rule verdict (the rules of
``engine.catalog``), prices the orderable lines (``engine.pricing``), computes availability
(``engine.atp``) and applies the account's disclosure policy (EXACT shows the number,
CAPPED at most the account's cap, BUCKETS hides it: OUT ≤ 0 < LOW ≤ cap < IN_STOCK),
with per-line statuses so one bad line never fails the batch. The answer's columns are
views of the blocks the kernel filled. ``explain`` calls the kernel again with room for
every candidate the first call counted and builds the candidate lists in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine._kernels import _quote
from engine.atp import Availability, DateSource, location_set
from engine.catalog import MAX_BASE_QTY, LineStatus, SellRules
from engine.contexts import account_context
from engine.errors import InvalidInput, LimitExceeded, UnknownCode
from engine.money import check_currency, micros_per_minor_unit
from engine.pricing import Policy, PriceResult, explain_lines, kernel_context
from engine.state import Disclosure, ItemStatus, State
from engine.tables import kernel_tables

__all__ = [
    "AsOf",
    "Bucket",
    "LineStatus",
    "QuoteResult",
    "quote",
]

I64 = npt.NDArray[np.int64]
DEFAULT_MAX_LINES = 5_000


class Bucket(IntEnum):
    """Stock buckets for the BUCKETS disclosure policy."""

    OUT = 0
    LOW = 1
    IN_STOCK = 2


_DISCLOSURES = tuple(Disclosure)  # by value: an enum call costs more than the quote's rest
_ROWS = _quote.LINE_ROWS
# the blocks' rows in order: a quote unpacks each block in one pass (C-level iteration)
# instead of indexing ~30 rows by name; checked against the kernel's layout at import
_INT64_ROWS = (
    "unit", "extended", "source_id", "target_group", "tier_index", "tier_min", "tier_uom",
    "next_qty", "next_unit", "list_book", "list_tier", "list_unit", "winner_hit", "sku",
    "uom", "factor", "base_qty", "suggested", "network", "earliest",
)  # fmt: skip
_INT8_ROWS = ("source", "level", "kind", "status", "item_status", "date_source")
_FLAG_ROWS = ("priced", "overflow", "below_minimum", "not_multiple", "suggested_in_base")
_NO_HITS = np.zeros((_ROWS["hits"], 0), dtype=np.int64)
_NO_LOCATIONS = np.zeros(0, dtype=np.int64)
_PRICES_NOT_ASKED, _PRICES_ASKED, _PRICES_NO_CURRENCY = 0, 1, 2


def _check_kernel_constants() -> None:
    """The kernel hard-codes the engine's codes: fail at import, not with wrong answers,
    if they ever drift apart."""
    expected = {
        **{f"LINE_{status.name}": int(status) for status in LineStatus},
        **{f"SHOW_{mode.name}": int(mode) for mode in Disclosure},
        **{f"BUCKET_{bucket.name}": int(bucket) for bucket in Bucket},
        "ITEM_UNKNOWN": int(ItemStatus.UNKNOWN),
        "ITEM_ACTIVE": int(ItemStatus.ACTIVE),
        "ITEM_BLOCKED": int(ItemStatus.BLOCKED),
        **{f"DATE_{source.name}": int(source) for source in DateSource},
        "MAX_BASE_QTY": MAX_BASE_QTY,
    }
    constants = {k: v for k, v in _quote.QUOTE_CONSTANTS.items() if k in expected}
    if constants != expected:
        raise ImportError(f"engine._kernels._quote is out of step: {_quote.QUOTE_CONSTANTS}")
    for block, names in (("int64", _INT64_ROWS), ("int8", _INT8_ROWS), ("flags", _FLAG_ROWS)):
        if [_ROWS[name] for name in names] != list(range(_ROWS[block])):
            raise ImportError(f"engine._kernels._quote's {block} rows are out of step: {_ROWS}")


_check_kernel_constants()


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
    # the kernel's blocks every column above is a view of (int64, int8, flag rows named by
    # ``_quote.LINE_ROWS``), for a consumer that reads them whole (server._wire)
    blocks: tuple[I64, npt.NDArray[np.int8], npt.NDArray[np.uint8]]


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
    quantities = np.ascontiguousarray(qty, dtype=np.int64)
    if quantities.shape != (n,):
        raise InvalidInput("qty", f"{quantities.size} quantities for {n} lines")
    if uoms is not None and len(uoms) != n:
        raise InvalidInput("uoms", f"{len(uoms)} UoMs for {n} lines")
    account_id = state.accounts.get(account)
    rows = state.account_rows.data
    if account_id < 0 or rows["version"][account_id] < 0:
        raise UnknownCode("account", account)
    if currency:
        check_currency(currency)
    currency_code = currency or state.currencies.code(int(rows["currency"][account_id]))
    currency_id = state.currencies.get(currency_code)
    today = pricing_date if today is None else today
    location_ids = location_set(state, locations, region) if with_availability else None

    context = None
    price_mode = _PRICES_NOT_ASKED
    micros_per_minor = 1
    if with_prices:
        if currency_id < 0:
            price_mode = _PRICES_NO_CURRENCY
        else:
            ctx = account_context(state, account_id, currency_id, pricing_date)
            context = kernel_context(state, ctx)
            price_mode = _PRICES_ASKED
            micros_per_minor = micros_per_minor_unit(currency_code)
    mode = _DISCLOSURES[int(rows["disclosure"][account_id])]
    cap = int(rows["disclosure_cap"][account_id])
    width = 0 if location_ids is None else location_ids.size
    out64 = np.empty((_ROWS["int64"], n), dtype=np.int64)
    out8 = np.empty((_ROWS["int8"], n), dtype=np.int8)
    flags = np.empty((_ROWS["flags"], n), dtype=np.uint8)
    stock_blocks = np.empty((2, n, width), dtype=np.int64)
    small_blocks = np.empty((2, n, width), dtype=np.uint8)
    hits = _NO_HITS
    tables = kernel_tables(state)
    while True:
        seen = _quote.quote_batch(
            tables, context, skus, quantities, uoms, len(state.skus), len(state.uoms),
            price_mode, micros_per_minor, int(policy),
            _NO_LOCATIONS if location_ids is None else location_ids,
            location_ids is not None, today, int(mode), cap, out64, out8, flags,
            stock_blocks[0], stock_blocks[1], small_blocks[0], small_blocks[1].view(np.int8),
            hits,
        )  # fmt: skip
        if not explain or context is None or seen <= hits.shape[1]:
            break
        # explain: the first pass counted the candidates; the second fills them in
        hits = np.empty((_ROWS["hits"], seen), dtype=np.int64)

    (
        unit, extended, source_id, target_group, tier_index, tier_min, tier_uom, next_qty,
        next_unit, list_book, list_tier, list_unit, winner_hit, sku, uom, factor, base_qty,
        suggested, network, earliest,
    ) = out64  # fmt: skip
    source, level, kind, status, _, date_source = out8
    priced, overflow, below_minimum, not_multiple, in_base = flags.view(np.bool_)
    sell = SellRules(below_minimum, not_multiple, suggested, in_base)
    prices = None
    if context is not None:
        candidates = None
        if explain:
            candidates = explain_lines(
                state,
                ctx,
                n,
                hits[:, :seen],
                winner_hit,
                list_book,
                list_tier,
                list_unit,
                policy,
            )
        prices = PriceResult(
            priced, overflow, unit, extended, source, source_id, level, kind, target_group,
            tier_index, tier_min, tier_uom, next_qty, next_unit, candidates,
        )  # fmt: skip
    stock = shown = bucket = None
    if location_ids is not None:
        available, shown = stock_blocks
        oversold, buckets = small_blocks
        stock = Availability(
            location_ids, available, oversold.view(np.bool_), network, earliest, date_source
        )
        bucket = buckets.view(np.int8)
    as_of = AsOf(state.version, dict(state.stream_ids), state.newest_ts_ms)
    return QuoteResult(
        as_of, account_id, currency_code, sku, uom, status, base_qty, factor, sell, prices,
        stock, mode, shown, bucket, (out64, out8, flags),
    )  # fmt: skip
