"""What the stream writer's integration tests share: the writer on its own thread, and
publishing to the streams of a redis-server the test started."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from engine import events as ev
from loaders.events import encode
from loaders.stream_writer import FIELD, Sink, StreamWriter, WriterConfig

PREFIX = "t"


class WriterThread:
    """A StreamWriter running on its own event loop, as it runs beside the server."""

    def __init__(self, url: str, sink: Sink, **config: Any) -> None:
        config.setdefault("block_ms", 20)
        config.setdefault("lag_every_s", 0.05)
        self.writer = StreamWriter(url, sink, WriterConfig(prefix=PREFIX, **config))
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        await self.writer.run(self.stop_event)

    def __enter__(self) -> WriterThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        while self.stop_event is None:
            time.sleep(0.01)
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(20)
        self.loop.close()

    def wait(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; writer stats {self.writer.stats}")
            time.sleep(0.01)


def master() -> list[Any]:
    return [
        ev.LocationUpsert(location="DAL", version=1),
        ev.LocationUpsert(location="ATL", version=1),
        *[ev.ItemUpsert(sku=f"S{i}", version=1, uoms={"BX": 10}) for i in range(20)],
    ]


def publish(client: Any, stream: str, events: list[Any], per_entry: int = 7) -> list[str]:
    ids = []
    for start in range(0, len(events), per_entry):
        ids.append(
            client.xadd(f"{PREFIX}:{stream}", {FIELD: encode(events[start : start + per_entry])})
        )
    return [i.decode() for i in ids]
