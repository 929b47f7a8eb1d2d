"""Real ``pacache serve`` processes for the fuzz suite, and their health checks.

Each configuration (``--workers 2``, ``--workers 0``, ``--auth`` with tokens) serves the
e2e test world (``tests/e2e/conftest.py``) from a snapshot, with a ``--snapshot-dir`` (so
Ingest, Reserve and Release are durable and accepted) and its stderr in a file, which the
suite reads for tracebacks. :meth:`Served.stop` stops the supervisor, then makes sure every
process it started and its shared-memory directory are gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.procstat import descendants
from engine import snapshot
from engine.shared import DEFAULT_SHM
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.spawn import Spawned, spawn
from tests.e2e.conftest import TOKENS, world_state

__all__ = ["CONFIGS", "Served", "serve"]

#: name → serve flags (the auth one gets ``--auth <tokens file>`` too)
CONFIGS = {
    "workers-2": ("--workers", "2"),
    "workers-0": ("--workers", "0"),
    "auth": ("--workers", "2"),
}
#: the token an operator's probe uses under --auth (admin scope, for Ping)
OPS_TOKEN = "ops"


@dataclass
class Served:
    """A running server: the process, its stderr file, the pids it started with."""

    name: str
    running: Spawned
    stderr: Path
    auth: bool
    pids: set[int] = field(default_factory=set)
    tracebacks_seen: int = 0

    @property
    def target(self) -> str:
        return self.running.target

    @property
    def shm_dir(self) -> Path:
        return Path(DEFAULT_SHM) / f"pacache-{self.running.process.pid}"

    def problems(self) -> list[str]:
        """Why this server is not healthy now: health not SERVING, Ping failing, a process
        it started gone (a worker or writer died, or was replaced), or a traceback new in
        its stderr since the last look. [] when healthy."""
        found: list[str] = []
        metadata = (("authorization", f"Bearer {OPS_TOKEN}"),) if self.auth else ()
        with grpc.insecure_channel(self.target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    found.append(
                        f"health: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
                    )
                channel.unary_unary(
                    "/pacache.v1.AdminService/Ping",
                    request_serializer=pb.PingRequest.SerializeToString,
                    response_deserializer=pb.PingResponse.FromString,
                )(pb.PingRequest(), timeout=10, metadata=metadata)
            except grpc.RpcError as error:
                found.append(f"probe: {error.code().name} {error.details()}")
        alive = set(descendants(self.running.process.pid))
        if self.running.process.poll() is not None:
            found.append(f"supervisor exited with {self.running.process.returncode}")
        elif not self.pids <= alive:
            found.append(f"processes gone: {sorted(self.pids - alive)} (were {sorted(self.pids)})")
        text = self.stderr.read_text(errors="replace")
        tracebacks = text.count("Traceback (most recent call last)")
        if tracebacks > self.tracebacks_seen:
            at = text.find("Traceback (most recent call last)")
            for _ in range(self.tracebacks_seen):
                at = text.find("Traceback (most recent call last)", at + 1)
            found.append(f"new traceback in stderr:\n{text[max(0, at - 300) : at + 3_000]}")
            self.tracebacks_seen = tracebacks
        return found

    def stop(self) -> list[str]:
        """Stop it (SIGTERM, then SIGKILL after 30 s) and make sure nothing it started is
        left: returns what had to be cleaned up by force ([] when it all went away)."""
        leftovers: list[str] = []
        everyone = self.pids | set(descendants(self.running.process.pid))
        try:
            self.running.stop(timeout=30)
        except subprocess.TimeoutExpired:
            leftovers.append("supervisor ignored SIGTERM for 30 s: killed")
            self.running.stop(kill=True)
        for pid in sorted(everyone):
            if _is_ours(pid):
                leftovers.append(f"child {pid} outlived the supervisor: killed")
                os.kill(pid, signal.SIGKILL)
        if self.shm_dir.exists():
            leftovers.append(f"{self.shm_dir} left behind: removed")
            shutil.rmtree(self.shm_dir, ignore_errors=True)
        return leftovers


def _is_ours(pid: int) -> bool:
    """Whether ``pid`` is still a pacache server process (not a recycled pid)."""
    try:
        return b"server.serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def serve(name: str, root: Path) -> Served:
    """Start configuration ``name`` of :data:`CONFIGS` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    snapshot.write(world_state(), root / "snapshots")
    flags = list(CONFIGS[name])
    if name == "auth":
        tokens = root / "tokens.json"
        tokens.write_text(json.dumps(TOKENS))
        flags += ["--auth", str(tokens)]
    stderr = root / "stderr.log"
    with stderr.open("w") as log:
        running = spawn(
            ["--snapshot", str(root / "snapshots"), "--port", "0", "--grace", "5",
             "--snapshot-dir", str(root / "data"), *flags],
            stderr=log.fileno(),
        )  # fmt: skip
    served = Served(name, running, stderr, auth=name == "auth")
    served.pids = set(descendants(running.process.pid))
    return served
