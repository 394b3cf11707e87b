"""A Redis lease: at most one replica holds it; if the holder dies it expires after a TTL.

``SET key owner NX PX ttl`` takes it; renewal and release check the owner in a
Lua script so a replica never extends or drops a lease it lost.  A holder whose
key vanished (Redis lost it) takes it back at its next renewal.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ratesvc.cancel import raise_if_cancelling
from ratesvc.log import get_logger

log = get_logger("lease")

# A missing key is taken back: Redis lost it (restarted empty, flushed, failed over),
# and nobody else holds the lease while the key is absent.  Handing the work to
# another replica would only cost a reconnect to every upstream.
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def worker_id() -> str:
    """This process among all replicas and workers: host (the container's, in docker) and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseLostError(Exception):
    """Another replica holds the lease now (or Redis could not confirm ours)."""


class Lease:
    def __init__(self, redis: Redis, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.owner = f"{worker_id()}:{uuid.uuid4().hex[:8]}"
        self.held = False

    async def acquire(self) -> bool:
        self.held = bool(await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))
        return self.held

    async def renew(self) -> bool:
        """Extend the lease, or take it back if Redis lost the key; False if another holds it."""
        result = await self.redis.eval(_RENEW, 1, self.key, self.owner, self.ttl_ms)
        if result == 2:
            log.warning("lease_key_lost_taken_back", key=self.key, owner=self.owner)
        self.held = bool(result)
        return self.held

    async def release(self) -> None:
        if self.held:
            self.held = False
            await self.redis.eval(_RELEASE, 1, self.key, self.owner)

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def _keep(self) -> None:
        while True:
            raise_if_cancelling()  # a fresh task per term: its count is its own
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                renewed = await self.renew()
            except RedisError as exc:
                raise LeaseLostError(f"could not renew: {exc!r}") from exc
            if not renewed:
                raise LeaseLostError("taken by another replica")

    async def run_while_held(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: wait for the lease, run ``work`` while it is held, stop it when lost."""
        # No cancellation guard in this loop: on Python 3.11 a TaskGroup whose child
        # failed while it waited leaves the parent's cancel request counted (it never
        # calls uncancel()), so the guard would end this task after every lost lease.
        while True:
            if not await self.acquire():
                await asyncio.sleep(self.ttl_ms / 3000)
                continue
            log.info("lease_acquired", key=self.key, owner=self.owner)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._keep())
                    group.create_task(work())
            except* LeaseLostError as lost:
                log.warning("lease_lost", key=self.key, reason=str(lost.exceptions[0]))
            finally:
                try:
                    await self.release()
                except RedisError:
                    self.held = False
