"""Fan-out of course changes to SSE clients: one Redis subscription per process.

The drainer of whichever replica holds the exchange lease publishes every
change of the default answer; each replica subscribes once and hands the
bytes to its own stream clients, so any replica can serve the stream.
A slow client loses the oldest pending change, never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.log import get_logger

log = get_logger("courses.broadcast")

CLIENT_BACKLOG = 8


class Broadcaster:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._clients: set[asyncio.Queue[bytes]] = set()
        self.subscribed = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(CLIENT_BACKLOG)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def deliver(self, body: bytes) -> None:
        for queue in self._clients:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(body)

    async def run(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.CHANGES)
            self.subscribed.set()
            log.info("subscribed", channel=keys.CHANGES)
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message["type"] == "message":
                    self.deliver(message["data"])
        finally:
            self.subscribed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
