"""The same Quote and Ping served by grpc's *sync* server, for the aio-vs-sync measurement.

Not a product path: ``pacache serve`` is grpc.aio on uvloop. This exists so
``bench.cpu_ratio`` can measure both on this grpcio, with the same conversion and engine
code (the aio servicer's synchronous core), and the README can say why aio was chosen.

    python -m bench.sync_server --snapshot DIR --port 0 [--threads 8]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from engine import snapshot
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.host import StateHost
from server.service import PriceAvailabilityServicer


class SyncQuote(pb_grpc.PriceAvailabilityServiceServicer):
    def __init__(self, host: StateHost) -> None:
        self.core = PriceAvailabilityServicer(host)
        self.lock = threading.Lock()  # the engine state is single-writer, reads need no lock

    def Quote(self, request: pb.QuoteRequest, context: Any) -> bytes:
        # the aio server's answer, built and serialised the same way on this thread
        return self.core._answer(request, convert.KIND_QUOTE)


class SyncAdmin(pb_grpc.AdminServiceServicer):
    def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingResponse:
        return pb.PingResponse()


def _add_quote_servicer(servicer: SyncQuote, server: grpc.Server) -> None:
    """Quote answers arrive serialised: register it with a serializer that passes bytes on."""
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.Quote,
        request_deserializer=pb.QuoteRequest.FromString,
        response_serializer=lambda answer: answer,
    )
    service = "pacache.v1.PriceAvailabilityService"
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {"Quote": handler}),)
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_server")
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    found = snapshot.latest(args.snapshot)
    assert found is not None, f"no snapshot under {args.snapshot}"
    host = StateHost(snapshot.load(found))
    server = grpc.server(ThreadPoolExecutor(args.threads))
    _add_quote_servicer(SyncQuote(host), server)
    pb_grpc.add_AdminServiceServicer_to_server(SyncAdmin(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"pacache serving on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
