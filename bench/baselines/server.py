"""A baseline gRPC server: pacache's API (``pacache.v1``) answered by a store + plain rules.

``python -m bench.baselines.server --system {redis,postgres,python} …`` serves Quote,
GetPrices, GetAvailability, Promise and Admin Ping on grpc.aio + uvloop, exactly the stack
pacache serves on, so a comparison measures where the data comes from and how the rules
are computed — not the framework. Each call: validate the request (``server.convert``, as
pacache), read the request's rows from the store (``rules.Needs``), answer with the
reference model (``bench.baselines.rules``). Other RPCs are UNIMPLEMENTED.

It prints ``baseline serving on HOST:PORT`` once it listens (``server.spawn`` waits for
it). "Today" is pinned with ``--today`` exactly as ``pacache serve --today`` pins it, else
it is UTC today, as pacache's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
from typing import Any, Protocol, TypeVar

from grpc import aio

from bench.baselines import rules
from engine.deltas import day_number
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.auth import require_account
from server.interceptors import ErrorInterceptor

__all__ = ["BaselineServicer", "Store", "main", "serve"]

log = logging.getLogger("pacache.baseline")
MAX_LINES = 5_000  # pacache's default --max-lines
_R = TypeVar("_R")


class Store(Protocol):
    """Where a baseline reads a request's rows from."""

    name: str

    async def read(self, needs: rules.Needs) -> list[Any]: ...

    async def close(self) -> None: ...


class BaselineServicer(pb_grpc.PriceAvailabilityServiceServicer):
    """Quote, GetPrices, GetAvailability and Promise from a :class:`Store`."""

    def __init__(self, store: Store, today: int | None, policy: str) -> None:
        self.store = store
        self.pinned_today = today
        self.policy = policy

    def _today(self) -> int:
        if self.pinned_today is not None:
            return self.pinned_today
        return day_number(dt.datetime.now(dt.UTC).date())

    @staticmethod
    def _lines(request: Any) -> convert.RequestLines:
        """The request's ``repeated QuoteLine``, checked as pacache checks them."""
        return convert.request_lines(request, MAX_LINES)

    async def _priced(self, request: Any, out: _R, *, prices: bool, stock: bool) -> _R:
        lines = self._lines(request)  # first, as pacache's Quote
        require_account(request.account)  # auth is off: only "missing" is refused
        needs = rules.request_needs(request, lines.skus, prices=prices, stock=stock)
        model = rules.request_model(await self.store.read(needs))
        rules.quote_response(
            model, request, out, lines=lines, today=self._today(), policy=self.policy,
            with_prices=prices, with_stock=stock,
        )  # fmt: skip
        return out

    async def Quote(self, request: pb.QuoteRequest, context: Any) -> pb.QuoteResponse:
        return await self._priced(request, pb.QuoteResponse(), prices=True, stock=True)

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> pb.GetPricesResponse:
        return await self._priced(request, pb.GetPricesResponse(), prices=True, stock=False)

    async def GetAvailability(
        self, request: pb.GetAvailabilityRequest, context: Any
    ) -> pb.GetAvailabilityResponse:
        return await self._priced(request, pb.GetAvailabilityResponse(), prices=False, stock=True)

    async def Promise(self, request: pb.PromiseRequest, context: Any) -> pb.PromiseResponse:
        require_account(request.account)
        lines = self._lines(request)
        needs = rules.request_needs(request, lines.skus, prices=False, stock=True)
        model = rules.request_model(await self.store.read(needs))
        return rules.promise_response(model, request, lines=lines, today=self._today())


class _Admin(pb_grpc.AdminServiceServicer):
    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingResponse:
        return pb.PingResponse()


async def serve(store: Store, address: str, today: int | None, policy: str) -> None:
    """Serve until SIGTERM/SIGINT; prints the bound address once listening."""
    server = aio.server(
        interceptors=[ErrorInterceptor()],
        options=[("grpc.max_receive_message_length", 16 * 1024 * 1024),
                 ("grpc.max_send_message_length", 16 * 1024 * 1024)],
    )  # fmt: skip
    pb_grpc.add_PriceAvailabilityServiceServicer_to_server(
        BaselineServicer(store, today, policy), server
    )
    pb_grpc.add_AdminServiceServicer_to_server(_Admin(), server)
    port = server.add_insecure_port(address)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)
    host = address.rsplit(":", 1)[0]
    print(f"baseline {store.name} serving on {host}:{port}", flush=True)
    await stopping.wait()
    await server.stop(2)
    await store.close()


async def _open_store(args: argparse.Namespace) -> Store:
    if args.system == "python":
        from bench.baselines.dataset import extract_events, load_world
        from bench.baselines.memory import MemoryStore

        return MemoryStore(load_world(extract_events(args.extract)))
    if args.system == "redis":
        from bench.baselines.redis_store import RedisStore

        return RedisStore(args.redis_url, args.prefix)
    from bench.baselines.postgres_store import PostgresStore

    return await PostgresStore.open(args.pg_url, args.schema, args.connections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.server")
    parser.add_argument("--system", choices=("redis", "postgres", "python"), required=True)
    parser.add_argument("--extract", help="extract directory (python: loaded into memory)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="pab", help="Redis key prefix")
    parser.add_argument("--pg-url", default="postgresql:///postgres?host=/var/run/postgresql")
    parser.add_argument("--schema", default="pacache_baseline", help="PostgreSQL schema")
    parser.add_argument("--connections", type=int, default=8, help="PostgreSQL connections")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--today", help="pin today (YYYY-MM-DD), as pacache serve --today")
    parser.add_argument("--policy", choices=("priority", "lowest_price"), default="priority")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    today = day_number(dt.date.fromisoformat(args.today)) if args.today else None

    async def run() -> None:
        store = await _open_store(args)
        await serve(store, f"{args.bind}:{args.port}", today, args.policy)

    import uvloop

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
