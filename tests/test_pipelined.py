"""The pipelined Redis client: replies in order, errors, lost connections, timeouts."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratesvc.pipelined import PipelinedRedis


async def test_concurrent_commands_get_their_own_replies(redis_url: str, redis: Redis) -> None:
    await redis.hset("pipelined:h", mapping={f"f{i}": f"v{i}" for i in range(50)})
    client = PipelinedRedis(redis_url)
    try:
        replies = await asyncio.gather(
            *(client.execute("HMGET", "pipelined:h", f"f{i}", "absent") for i in range(50))
        )
        assert replies == [[f"v{i}".encode(), None] for i in range(50)]
        assert await client.execute("GET", "pipelined:absent") is None
    finally:
        await client.aclose()


async def test_an_error_reply_fails_only_its_command(redis_url: str, redis: Redis) -> None:
    await redis.set("pipelined:s", "x")
    client = PipelinedRedis(redis_url)
    try:
        wrong_type, fine = await asyncio.gather(
            client.execute("HMGET", "pipelined:s", "f"),
            client.execute("GET", "pipelined:s"),
            return_exceptions=True,
        )
        assert isinstance(wrong_type, ResponseError)
        assert fine == b"x"
    finally:
        await client.aclose()


async def test_reconnects_after_the_connection_is_lost(redis_url: str, redis: Redis) -> None:
    client = PipelinedRedis(redis_url)
    try:
        await client.execute("SET", "pipelined:k", "1")
        await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await asyncio.sleep(0.05)
        assert await client.execute("GET", "pipelined:k") == b"1"
    finally:
        await client.aclose()


async def test_a_silent_server_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(1 << 16)  # and never answer

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    try:
        with pytest.raises(RedisTimeoutError):
            await client.execute("GET", "k")
    finally:
        await client.aclose()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
