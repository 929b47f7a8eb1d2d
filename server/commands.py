"""Client subcommands of the ``pacache`` CLI: quote, promise, watch, stats.

Each prints a rich table from :class:`server.client.Client` answers. Money is shown from
integer micros by exact string formatting (never through a float).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, QuotedLine, lines_message

__all__ = [
    "add_client_arguments",
    "money",
    "promise_main",
    "quote_main",
    "stats_main",
    "watch_main",
]

DEFAULT_TARGET = f"127.0.0.1:{os.environ.get('PACACHE_PORT', '50051')}"


def money(micros: int, decimals: int = 2) -> str:
    """Micros as a decimal string with at least ``decimals`` places, exactly."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), 1_000_000)
    digits = f"{fraction:06d}".rstrip("0").ljust(decimals, "0")
    return f"{sign}{whole:,}.{digits}" if digits else f"{sign}{whole:,}"


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=os.environ.get("PACACHE_TARGET", DEFAULT_TARGET))
    parser.add_argument("--token", default=os.environ.get("PACACHE_TOKEN"))
    parser.add_argument("--timeout", type=float, default=10.0)


def _line(text: str) -> tuple[str, int, str]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise argparse.ArgumentTypeError(f"--line {text!r}: expected SKU:QTY[:UOM]")
    return parts[0], int(parts[1]), parts[2] if len(parts) == 3 else ""


def add_quote_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--account", required=True)
    parser.add_argument("--line", type=_line, action="append", required=True, dest="lines",
                        help="SKU:QTY[:UOM], repeatable")  # fmt: skip
    parser.add_argument("--location", action="append", default=[], dest="locations")
    parser.add_argument("--region", default="")
    parser.add_argument("--currency", default="")
    parser.add_argument("--date", default="", help="pricing date YYYY-MM-DD (default today)")
    parser.add_argument("--explain", action="store_true")


def _client(args: argparse.Namespace) -> Client:
    return Client(args.target, token=args.token, timeout=args.timeout)


def _as_of(response: Any) -> str:
    as_of = response.as_of
    streams = ", ".join(f"{k}={v}" for k, v in sorted(as_of.stream_ids.items())) or "no streams"
    return (
        f"as_of: version {as_of.version}, newest source ts {as_of.newest_source_ts_ms}, {streams}"
    )


def _quote_table(response: pb.QuoteResponse, rows: list[QuotedLine]) -> Table:
    table = Table(title=f"Quote ({response.currency})")
    for column in ("SKU", "status", "qty (base)", "unit price", "extended", "source", "tier",
                   "next break", "available (by location)", "earliest", "sell rules"):  # fmt: skip
        table.add_column(
            column, justify="right" if column.startswith(("qty", "unit", "ext")) else "left"
        )
    for row in rows:
        next_break = (
            f"{row.next_break_qty} @ {money(row.next_break_unit_price_micros)}"
            if row.next_break_qty
            else "-"
        )
        stocked = [f"{loc}:{qty}" for loc, qty in row.available.items() if qty]
        more = f" +{len(stocked) - 3}" if len(stocked) > 3 else ""
        stock = " ".join(stocked[:3]) + more
        rules = []
        if row.below_minimum:
            rules.append("below min")
        if row.not_multiple:
            rules.append("not a multiple")
        if rules:
            rules.append(f"try {row.suggested_qty} {row.suggested_uom}")
        table.add_row(
            row.sku,
            row.status,
            str(row.base_qty),
            money(row.unit_price_micros) if row.status == "OK" else "-",
            money(row.extended_micros) if row.status == "OK" else "-",
            f"{row.source} {row.source_id} ({row.level})" if row.status == "OK" else "-",
            str(row.tier_index) if row.status == "OK" else "-",
            next_break,
            f"{row.network_available} ({stock})" if stock else str(row.network_available),
            row.earliest_date or "backorder",
            ", ".join(rules) or "ok",
        )
    return table


def quote_main(args: argparse.Namespace) -> int:
    """``pacache quote``: price and availability of some lines, as a table."""
    console = Console()
    with _client(args) as client:
        response, rows = client.quote(
            args.account,
            args.lines,
            locations=args.locations,
            region=args.region,
            currency=args.currency,
            pricing_date=args.date,
            explain=args.explain,
        )
    console.print(_quote_table(response, rows))
    if args.explain:
        for sku, explanation in zip(
            (r.sku for r in rows), response.prices.explanations, strict=False
        ):
            for candidate in explanation.candidates:
                lost = pb.LostReason.Name(candidate.lost).removeprefix("LOST_REASON_")
                price = (
                    money(candidate.unit_price_micros)
                    if candidate.HasField("unit_price_micros")
                    else "-"
                )
                console.print(
                    f"  {sku}: {candidate.source_id} tier {candidate.tier_index} {price} → {lost}"
                )
    console.print(_as_of(response))
    return 0


def add_promise_arguments(parser: argparse.ArgumentParser) -> None:
    add_quote_arguments(parser)
    parser.add_argument("--ship-complete", action="store_true")
    parser.add_argument("--max-shipments", type=int, default=0)
    parser.add_argument("--need-by", default="")


def promise_main(args: argparse.Namespace) -> int:
    """``pacache promise``: the sourcing plan of an order."""
    console = Console()
    with _client(args) as client:
        plan = client.promise(
            pb.PromiseRequest(
                account=args.account,
                region=args.region,
                locations=args.locations,
                lines=lines_message(args.lines),
                ship_complete=args.ship_complete,
                max_shipments=args.max_shipments,
                need_by=args.need_by,
            )
        )
    table = Table(title="Promise")
    for column in ("line", "SKU", "location", "qty (base)", "ship date"):
        table.add_column(column)
    for i in range(len(plan.allocation_line)):
        line = plan.allocation_line[i]
        table.add_row(
            str(line), args.lines[line][0], plan.allocation_location[i],
            str(plan.allocation_qty[i]), plan.allocation_ship_date[i] or "-",
        )  # fmt: skip
    for line, qty in enumerate(plan.backordered_qty):
        if qty:
            date = plan.backorder_date[line] or "no date"
            table.add_row(str(line), args.lines[line][0], "BACKORDER", str(qty), date)
    console.print(table)
    console.print(
        f"shipments: {plan.shipment_count}, complete: {plan.complete_date or 'no date'}"
        + (f", meets need-by: {plan.meets_need_by}" if args.need_by else "")
    )
    console.print(_as_of(plan))
    return 0


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--account", required=True)
    parser.add_argument("--sku", action="append", required=True, dest="skus")
    parser.add_argument("--location", action="append", default=[], dest="locations")
    parser.add_argument("--region", default="")
    parser.add_argument("--from-version", type=int, default=0)
    parser.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")


def watch_main(args: argparse.Namespace) -> int:
    """``pacache watch``: stream availability changes of some SKUs."""
    console = Console()
    request = pb.WatchAvailabilityRequest(
        account=args.account, skus=args.skus, locations=args.locations, region=args.region,
        from_version=args.from_version,
    )  # fmt: skip
    seen = 0
    with _client(args) as client:
        for message in client.watch(request):
            stock = message.availability
            width = len(stock.locations)
            for i, sku in enumerate(message.skus):
                cells = " ".join(
                    f"{stock.locations[j]}:{stock.available[i * width + j]}" for j in range(width)
                )
                kind = "snapshot" if message.snapshot else "change"
                console.print(f"v{message.as_of.version} {kind} {sku} {cells}")
            seen += 1
            if args.count and seen >= args.count:
                break
    return 0


def stats_main(args: argparse.Namespace) -> int:
    """``pacache stats``: counts, freshness and per-RPC counters."""
    console = Console()
    with _client(args) as client:
        stats = client.stats()
        fresh = client.freshness()
    table = Table(title="pacache stats")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for key in sorted(stats.counts):
        table.add_row(key, f"{stats.counts[key]:,}")
    table.add_row("uptime ms", f"{stats.uptime_ms:,}")
    table.add_row("rss bytes", f"{stats.rss_bytes:,}")
    table.add_row("staleness ms", f"{fresh.staleness_ms:,}")
    console.print(table)
    console.print(_as_of(stats))
    return 0


add_stats_arguments = add_client_arguments
