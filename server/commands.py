"""Client subcommands of the ``pacache`` CLI: quote, promise, watch, stats.

Each prints a rich table from :class:`server.client.Client` answers, or with ``--json``
the answer as proto3 JSON (lowerCamelCase names; int64 values are strings, as proto3 JSON
writes them, so money never passes through a float). Money in tables is shown from integer
micros by exact string formatting. A failed call prints one line (status and message) and
exits 1 (``server.cli``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, QuotedLine, quote_lines, short_name

__all__ = [
    "add_client_arguments",
    "money",
    "promise_main",
    "quote_main",
    "rpc_error_text",
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
    parser.add_argument("--json", action="store_true", help="print the answer as proto3 JSON")


def rpc_error_text(error: grpc.RpcError) -> str:
    """A failed call as one line: its status code and the server's message."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"


def _print_json(*messages: Any) -> None:
    for message in messages:
        sys.stdout.write(json_format.MessageToJson(message, indent=None) + "\n")


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
    parser.add_argument("--policy", choices=("PRIORITY", "LOWEST_PRICE"), default="",
                        help="price policy (default: the server's)")  # fmt: skip
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
    with _client(args) as client:
        response, rows = client.quote(
            args.account,
            args.lines,
            locations=args.locations,
            region=args.region,
            currency=args.currency,
            pricing_date=args.date,
            explain=args.explain,
            policy=args.policy,
        )
    if args.json:
        _print_json(response)
        return 0
    console = Console()
    console.print(_quote_table(response, rows))
    if args.explain:
        for line in response.lines:
            for candidate in line.explanation.candidates:
                lost = short_name(pb.LostReason, candidate.lost)
                price = (
                    money(candidate.unit_price_micros)
                    if candidate.HasField("unit_price_micros")
                    else "-"
                )
                console.print(
                    f"  {line.sku}: {candidate.source_id} tier {candidate.tier_index} {price}"
                    f" → {lost}"
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
    with _client(args) as client:
        plan = client.promise(
            pb.PromiseRequest(
                account=args.account,
                region=args.region,
                locations=args.locations,
                lines=quote_lines(args.lines),
                ship_complete=args.ship_complete,
                max_shipments=args.max_shipments,
                need_by=args.need_by,
            )
        )
    if args.json:
        _print_json(plan)
        return 0
    console = Console()
    table = Table(title="Promise")
    for column in ("line", "SKU", "status", "location", "qty (base)", "ship date", "shipment"):
        table.add_column(column)
    for line in plan.lines:
        status = short_name(pb.LineStatus, line.status)
        for allocation in line.allocations:
            table.add_row(
                str(line.index), line.sku, status, allocation.location,
                str(allocation.quantity), allocation.ship_date or "-",
                str(allocation.shipment),
            )  # fmt: skip
        if line.backordered_qty:
            date = line.backorder_date or "no date"
            table.add_row(str(line.index), line.sku, status, "BACKORDER",
                          str(line.backordered_qty), date, "-")  # fmt: skip
        if line.status != pb.LINE_STATUS_OK:
            table.add_row(str(line.index), line.sku, status, "-", "-", "-", "-")
    console.print(table)
    console.print(
        f"shipments: {len(plan.shipments)}, complete: {plan.complete_date or 'no date'}"
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
            if args.json:
                _print_json(message)
            else:
                kind = "snapshot" if message.snapshot else "change"
                for watched in message.skus:
                    cells = " ".join(
                        f"{a.location}:{a.available}" for a in watched.availability.locations
                    )
                    console.print(f"v{message.as_of.version} {kind} {watched.sku} {cells}")
            seen += 1
            if args.count and seen >= args.count:
                break
    return 0


def stats_main(args: argparse.Namespace) -> int:
    """``pacache stats``: counts, freshness and per-RPC counters (``--json``: the Stats
    answer, then the Freshness answer, one JSON object per line)."""
    console = Console()
    with _client(args) as client:
        stats = client.stats()
        fresh = client.freshness()
    if args.json:
        _print_json(stats, fresh)
        return 0
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
