"""The ``pacache`` command line.

Each subcommand is one ``_cmd_<name>(args) -> int`` function plus one entry in
:data:`COMMANDS` (name, help, a function adding its arguments). Command modules are
imported inside the command, so ``pacache --help`` and every command start fast and
nothing connects at import time. To add a command, write the two functions and add the
entry.

    pacache gen --scale {tiny,small,large} --out DIR [--seed N]
    pacache build --from DIR --snapshot OUT [--version N] [--json]
    pacache demo [--seed N] [--lines N]
    pacache serve (--demo | --snapshot DIR) [--port N] [--redis-url URL] [--auth FILE] …
    pacache quote --account A --line SKU:QTY[:UOM] … [--region R] [--explain]
    pacache promise --account A --line SKU:QTY[:UOM] … [--ship-complete]
    pacache watch --account A --sku S … ; pacache stats
    pacache publish --from FILE.jsonl|- [--redis-url URL]
    pacache bench [--scale small|large] [--systems …] [--json FILE] [--update-readme]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["COMMANDS", "build_parser", "main"]

Run = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], None]


# ---------------------------------------------------------------------------------------
# gen


def _gen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=("tiny", "small", "large"), default="tiny")
    parser.add_argument("--out", required=True, help="directory for the extract (created)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _cmd_gen(args: argparse.Namespace) -> int:
    import json
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.datagen import generate

    console = Console(stderr=True)
    started = time.perf_counter()
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bars:
        tasks: dict[str, Any] = {}

        def progress(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bars.add_task(table, total=total)
            bars.update(tasks[table], completed=done, total=total)

        manifest = generate(args.out, args.scale, args.seed, progress)
    seconds = time.perf_counter() - started
    console.print(f"[green]wrote {args.scale} extract to {args.out} in {seconds:.1f} s")
    print(json.dumps(manifest["rows"]))
    return 0


# ---------------------------------------------------------------------------------------
# build


def _build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="extract", required=True, help="extract directory")
    parser.add_argument("--snapshot", required=True, help="snapshot root directory")
    parser.add_argument(
        "--version", type=int, default=None, help="extract version (default: extract.json or 1)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_build(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from engine.errors import InvalidInput
    from loaders.extract import build_snapshot, summary

    try:
        report = build_snapshot(
            args.extract, args.snapshot, progress=not args.quiet, version=args.version
        )
    except InvalidInput as error:  # a bad extract: its file and reason, not a traceback
        print(f"pacache build: {error}", file=sys.stderr)
        return 1
    facts = summary(report)
    if args.json:
        print(json.dumps(facts, indent=1))
        return 0
    console = Console()
    console.print(f"[green]snapshot[/] {report.snapshot}")
    console.print(
        ", ".join(f"{k} {v:,}" for k, v in facts["state"].items()),
        "|",
        ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items()),
    )
    if report.rejects.total:
        table = Table("table", "reason", "rows", "first rows", title="rejected rows")
        for (name, reason), count in sorted(report.rejects.counts.items()):
            first = report.rejects.samples[(name, reason)]
            table.add_row(name, reason, f"{count:,}", ", ".join(map(str, first)))
        console.print(table)
    return 0


# ---------------------------------------------------------------------------------------
# demo


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="dataset and cart seed")
    parser.add_argument("--lines", type=int, default=12, help="lines in the cart")


def _cmd_demo(args: argparse.Namespace) -> int:
    import datetime as dt
    import tempfile

    from rich.console import Console
    from rich.table import Table

    from bench.datagen import Workload, generate
    from engine.quote import LineStatus, quote
    from loaders.extract import Rejects, build_state_from
    from server.commands import money as _money

    console = Console()
    with (
        tempfile.TemporaryDirectory(prefix="pacache-demo-") as extract,
        console.status("generating the tiny dataset and building the state…"),
    ):
        generate(extract, "tiny", args.seed)
        state, _, seconds = build_state_from(extract, rejects=Rejects())
        workload = Workload.from_extract(extract, seed=args.seed)
    # A cart of an account that has contracts, so the sources differ line by line.
    assigned = {a for accounts in state.contract_accounts.values() for a in accounts}
    cart = workload.cart(args.lines)
    for _ in range(200):
        if state.accounts.get(cart.account) in assigned:
            break
        cart = workload.cart(args.lines)
    result = quote(
        state,
        account=cart.account,
        skus=cart.skus,
        qty=cart.qty,
        uoms=cart.uoms,
        pricing_date=cart.pricing_date,
        region=cart.region,
    )
    epoch = dt.date(1970, 1, 1)
    title = (
        f"account {cart.account} · {result.currency} · region {cart.region} · "
        f"{epoch + dt.timedelta(days=cart.pricing_date)} · state v{result.as_of.version} "
        f"(built in {seconds['build'] * 1000:.0f} ms)"
    )
    table = Table(title=title)
    for heading in ("sku", "qty", "uom", "unit", "extended", "source", "tier", "avail", "date"):
        left = heading in ("sku", "uom", "source")
        table.add_column(heading, justify="left" if left else "right", no_wrap=True)
    prices, stock = result.prices, result.stock
    assert prices is not None and stock is not None
    total = 0
    for i, sku in enumerate(cart.skus):
        status = LineStatus(int(result.status[i]))
        source = "—"
        if prices.priced[i]:
            source_id = int(prices.source_id[i])
            codes = state.contracts if prices.source[i] == 1 else state.price_lists
            source = codes.code(source_id)
        earliest = int(stock.earliest_date[i])
        ok = status == LineStatus.OK
        if ok:
            total += int(prices.extended_micros[i])
        table.add_row(
            sku,
            str(cart.qty[i]),
            cart.uoms[i],
            _money(int(prices.unit_price_micros[i])) if ok else status.name,
            _money(int(prices.extended_micros[i])) if ok else "",
            source,
            str(int(prices.tier_index[i])) if ok else "",
            f"{int(stock.network_available[i]):,}",
            str(epoch + dt.timedelta(days=earliest)) if earliest >= 0 else "backorder",
        )
    table.add_section()
    table.add_row("total", "", "", "", _money(total), "", "", "", "")
    console.print(table)
    return 0


# ---------------------------------------------------------------------------------------
# serve and the client commands (their modules hold the work)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    from server.serve import add_arguments

    add_arguments(parser)


def _cmd_serve(args: argparse.Namespace) -> int:
    from server.serve import main as serve_main

    return serve_main(args)


def _client_command(name: str) -> tuple[AddArguments, Run]:
    def add(parser: argparse.ArgumentParser) -> None:
        from server import commands

        getattr(commands, f"add_{name}_arguments")(parser)

    def run(args: argparse.Namespace) -> int:
        import grpc

        from server import commands

        try:
            result: int = getattr(commands, f"{name}_main")(args)
        except grpc.RpcError as error:  # one line a person can act on, not a traceback
            print(f"pacache {name}: {commands.rpc_error_text(error)}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # `pacache stats --json | head`: the reader left, as for cat
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return result

    return add, run


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.command import add_arguments

    add_arguments(parser)


def _cmd_bench(args: argparse.Namespace) -> int:
    from bench.command import main as bench_main

    return bench_main(args)


def _publish_arguments(parser: argparse.ArgumentParser) -> None:
    from loaders.producer import add_publish_arguments

    add_publish_arguments(parser)


def _cmd_publish(args: argparse.Namespace) -> int:
    from loaders.producer import publish_main

    return publish_main(args)


# ---------------------------------------------------------------------------------------
# wiring

#: name → (help, add arguments, run). Add a command here.
COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "gen": ("generate a seeded distributor extract (Parquet)", _gen_arguments, _cmd_gen),
    "build": ("build a snapshot from a bulk extract", _build_arguments, _cmd_build),
    "demo": ("price and check a sample cart on the tiny dataset", _demo_arguments, _cmd_demo),
    "serve": ("serve the gRPC API (--demo, or --snapshot DIR)", _serve_arguments, _cmd_serve),
    "quote": ("price and check lines against a server", *_client_command("quote")),
    "promise": ("the sourcing plan of an order", *_client_command("promise")),
    "watch": ("stream availability changes of some SKUs", *_client_command("watch")),
    "stats": ("server counters, stream positions and freshness", *_client_command("stats")),
    "publish": ("publish JSON Lines events to the Redis streams", _publish_arguments, _cmd_publish),
    "bench": (
        "end-to-end benchmark: pacache vs Redis, PostgreSQL and plain Python (report, plots)",
        _bench_arguments,
        _cmd_bench,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="pacache", description="Price-and-availability cache for B2B distributors."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pacache`` console script."""
    args = build_parser().parse_args(argv)
    run: Run = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
