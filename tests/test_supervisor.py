import asyncio

from ratesvc.supervisor import Supervisor


async def test_crashing_task_restarts_and_others_keep_running() -> None:
    supervisor = Supervisor(initial_delay_s=0.01, max_delay_s=0.02)
    crashes = 0
    third_crash = asyncio.Event()
    ticks = 0

    async def crashing() -> None:
        nonlocal crashes
        crashes += 1
        if crashes == 3:
            third_crash.set()
        raise RuntimeError(f"boom {crashes}")

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    supervisor.start("crashing", crashing)
    supervisor.start("steady", steady)
    await asyncio.wait_for(third_crash.wait(), 5)
    state = supervisor.states["crashing"]
    assert state.restarts >= 2
    assert state.last_error is not None
    assert state.last_error.startswith("RuntimeError: boom")
    assert supervisor.states["steady"].status == "running"
    assert supervisor.states["steady"].restarts == 0
    assert ticks > 0
    await supervisor.stop(grace_s=2)
    assert {s.status for s in supervisor.states.values()} == {"stopped"}


async def test_stop_cancels_a_task_that_ignores_nothing() -> None:
    supervisor = Supervisor()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    supervisor.start("forever", forever)
    await asyncio.sleep(0)
    await supervisor.stop(["forever"], grace_s=2)
    assert cancelled.is_set()
