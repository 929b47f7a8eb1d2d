"""Building the gRPC server: services, health, reflection, interceptors, limits.

:func:`create_server` returns the (not yet started) server and its bound port, so tests
bind port 0. Nothing here connects anywhere at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from grpc import aio
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.auth import TokenTable
from server.host import StateHost
from server.interceptors import (
    AuthInterceptor,
    ErrorInterceptor,
    LimitInterceptor,
    Metrics,
    ObservabilityInterceptor,
)
from server.lane import DEFAULT_SWITCH_INTERVAL_S, EngineLane
from server.service import AdminServicer, IngestServicer, Limits, PriceAvailabilityServicer

__all__ = ["SERVICE_NAMES", "HealthServicer", "Server", "ServerConfig", "create_server"]

log = logging.getLogger("pacache.server")
SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("PriceAvailabilityService", "IngestService", "AdminService")
)


class HealthServicer(health_aio.HealthServicer):  # type: ignore[misc]  # untyped library
    """grpc_health's asyncio servicer, plus ``List``.

    The health proto has List (every service's status at once), so reflection advertises
    it, but grpc_health leaves it to the generated stub, a synchronous function that
    raises NotImplementedError: every List failed. It answers from the servicer's own
    table, the one Check and Watch read (a private attribute: ``tests/e2e`` compares List
    with Check, so an upgrade that renames it fails there, not in production)."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        statuses = dict(self._server_status)
        return health_pb2.HealthListResponse(
            statuses={
                service: health_pb2.HealthCheckResponse(status=status)
                for service, status in statuses.items()
            }
        )


@dataclass
class ServerConfig:
    """Server settings (flags and PACACHE_* environment variables set these)."""

    limits: Limits = field(default_factory=Limits)
    tokens: TokenTable | None = None  # None: auth off
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_client_ca: bytes | None = None  # set: mutual TLS, clients must present a cert
    snapshot_root: str | None = None
    # the GIL turn of the engine lane (server.lane); None leaves CPython's default
    switch_interval_s: float | None = DEFAULT_SWITCH_INTERVAL_S


@dataclass
class Server:
    """A built server and what a caller needs to drive it."""

    grpc_server: aio.Server
    port: int
    health: health_aio.HealthServicer
    metrics: Metrics
    lane: EngineLane

    async def set_serving(self, serving: bool) -> None:
        """Set standard health for the whole server and each pacache service."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def stop(self, grace: float | None) -> None:
        """Health NOT_SERVING for good, then stop taking calls and drain for ``grace`` s."""
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(grace)
        self.lane.close()


def create_server(address: str, host: StateHost, config: ServerConfig | None = None) -> Server:
    """Build the server on ``address`` ("host:port", port 0 = any free port)."""
    config = config or ServerConfig()
    metrics = Metrics()
    interceptors: list[aio.ServerInterceptor] = [
        ObservabilityInterceptor(metrics),
        ErrorInterceptor(),
        LimitInterceptor(config.limits.max_in_flight),
    ]
    if config.tokens is not None:
        interceptors.append(AuthInterceptor(config.tokens))
    size = config.limits.max_message_bytes
    server = aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
            ("grpc.so_reuseport", 1),
        ],
    )
    lane = EngineLane(config.limits.max_queued_lines, switch_interval_s=config.switch_interval_s)
    pb_grpc.add_PriceAvailabilityServiceServicer_to_server(
        PriceAvailabilityServicer(host, config.limits, lane), server
    )
    pb_grpc.add_IngestServiceServicer_to_server(IngestServicer(host, config.limits), server)
    pb_grpc.add_AdminServiceServicer_to_server(
        AdminServicer(host, metrics, config.snapshot_root), server
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if config.tls_cert and config.tls_key:
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key, config.tls_cert)],
            root_certificates=config.tls_client_ca,
            require_client_auth=config.tls_client_ca is not None,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    # Health says SERVING for "" until told otherwise: callers `await set_serving(...)`
    # before `start()` so a balancer never sees SERVING ahead of a loaded state.
    return Server(server, port, health_servicer, metrics, lane)
