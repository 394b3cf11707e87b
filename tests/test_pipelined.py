"""The pipelined Redis client: replies in order, errors, lost connections, timeouts."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratesvc.embedded import EmbeddedRedis
from ratesvc.pipelined import PipelinedRedis
from support.servers import eventually

PASSWORD = "s3cret-pipelined"  # noqa: S105 - a test server's password


@pytest.fixture(autouse=True)
def no_connection_outlives_its_test() -> Iterator[None]:
    """Collect now what the test dropped: an unclosed socket fails this test, not a later one."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()


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
        replies: list[object] = await asyncio.gather(
            client.execute("HMGET", "pipelined:s", "f"),
            client.execute("GET", "pipelined:s"),
            return_exceptions=True,
        )
        wrong_type, fine = replies
        assert isinstance(wrong_type, ResponseError)
        assert fine == b"x"
    finally:
        await client.aclose()


async def test_reconnects_after_the_connection_is_lost(redis_url: str, redis: Redis) -> None:
    client = PipelinedRedis(redis_url)
    try:
        await client.execute("SET", "pipelined:k", "1")
        lost = client._protocol.lost if client._protocol else None
        assert lost is not None
        await redis.client_kill_filter(_type="normal", skipme=True)
        await asyncio.wait_for(lost, 10)  # the client has seen the loss, however slow the loop
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


@pytest.fixture
async def password_redis(tmp_path: Path) -> AsyncIterator[str]:
    """A redis-server of its own that requires a password: ``redis://:PASSWORD@host:port``."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    try:
        admin = Redis(host="127.0.0.1", port=server.port)
        await admin.config_set("requirepass", PASSWORD)
        await admin.aclose()
        yield f"redis://:{PASSWORD}@127.0.0.1:{server.port}"
    finally:
        server.stop()


async def test_no_command_goes_out_before_auth_and_select(password_redis: str) -> None:
    for db in ("0", "3"):
        setup = Redis.from_url(f"{password_redis}/{db}")
        await setup.set("pipelined:where", f"db{db}")
        await setup.aclose()
    client = PipelinedRedis(password_redis + "/3")
    try:
        first = asyncio.create_task(client.execute("GET", "pipelined:where"))
        # A new command on every loop turn while the connection is being set up.
        during = []
        while not first.done():
            during.append(asyncio.create_task(client.execute("GET", "pipelined:where")))
            await asyncio.sleep(0)
        replies = [await first, *await asyncio.gather(*during)]
    finally:
        await client.aclose()
    assert len(during) >= 3  # AUTH and SELECT took loop turns, and commands came meanwhile
    assert set(replies) == {b"db3"}


async def test_a_refused_password_leaves_no_connection_open(password_redis: str) -> None:
    wrong = password_redis.replace(PASSWORD, "not-the-password") + "/3"
    client = PipelinedRedis(wrong)
    admin = Redis.from_url(password_redis + "/0")
    try:
        for _ in range(2):  # and the next command does not reuse a half-open one
            with pytest.raises(ResponseError, match="WRONGPASS"):
                await client.execute("GET", "pipelined:where")

        async def clients() -> int:
            info = await admin.info("clients")
            return int(info["connected_clients"])

        await eventually(clients, lambda n: n == 1)  # only the admin connection
    finally:
        await client.aclose()
        await admin.aclose()


async def test_closing_while_connecting_closes_that_connection() -> None:
    accepted: list[asyncio.StreamWriter] = []
    gone = asyncio.Event()

    async def never_answer_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        while await reader.read(1 << 16):
            pass
        gone.set()  # the client closed its end

    server = await asyncio.start_server(never_answer_auth, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PipelinedRedis(f"redis://:{PASSWORD}@127.0.0.1:{port}/3", timeout_s=30)
    try:
        reading = asyncio.create_task(client.execute("GET", "k"))
        await eventually(lambda: asyncio.sleep(0, accepted))  # AUTH sent, no reply
        await asyncio.wait_for(client.aclose(), 5)
        with pytest.raises(RedisConnectionError, match="closed"):
            await reading
        await asyncio.wait_for(gone.wait(), 5)
    finally:
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
