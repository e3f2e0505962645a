"""No orphans: the inbox tells whether the agent still waits, and the operator's default
expiry fails a forgotten request closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from functionlayer.models import FunctionCall, FunctionCallSpec
from functionlayer_server import ApprovalService, ManualClock, Settings
from functionlayer_server._store import open_store, prepare_database


def _service(tmp_path: Path, **settings: object) -> tuple[ApprovalService, ManualClock]:
    url = f"sqlite:///{tmp_path / 'orphans.sqlite3'}"
    prepare_database(url)
    clock = ManualClock(1_800_000_000.0)
    return ApprovalService(
        open_store(url), Settings(database_url=url, **settings), clock=clock
    ), clock  # type: ignore[arg-type]


def test_agent_presence_is_tracked_from_its_polls(tmp_path: Path) -> None:
    async def main() -> list[str]:
        service, clock = _service(tmp_path)
        await service.start(scheduler=False)
        try:
            call = FunctionCall(run_id="r", call_id="c1", spec=FunctionCallSpec(fn="f"))
            await service.create_function_call(call)
            states = [(await service.agent_presence("function_call", "c1"))[0]]
            await service.wait_function_call("c1", 0, agent=True)
            states.append((await service.agent_presence("function_call", "c1"))[0])
            # A person's reads do not count as the agent's.
            clock.advance(600)
            await service.wait_function_call("c1", 0)
            states.append((await service.agent_presence("function_call", "c1"))[0])
            return states
        finally:
            await service.stop()

    assert asyncio.run(main()) == ["unknown", "waiting", "gone"]


def test_the_operators_default_expiry_fails_a_forgotten_request_closed(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[default]\ndefault_timeout_seconds = 30\n")

    async def main() -> FunctionCall:
        service, clock = _service(tmp_path, policy_file=str(policy))
        await service.start(scheduler=False)
        try:
            call = FunctionCall(run_id="r", call_id="c2", spec=FunctionCallSpec(fn="f"))
            stored, _ = await service.create_function_call(call)
            assert stored.status is not None and stored.status.expires_at is not None
            clock.advance(31)
            await service.scheduler.run_due()
            return await service.get_function_call("c2")
        finally:
            await service.stop()

    final = asyncio.run(main())
    assert final.status is not None
    assert final.status.expired is True and final.status.approved is False


def test_agent_polls_are_written_down_in_batches_and_on_stop(tmp_path: Path) -> None:
    """Polls are noted in memory and written together (not one transaction per poll); another
    process (here a second service on the same database) sees them once written, and stopping
    writes what is left."""

    async def main() -> tuple[str, str, str]:
        service, clock = _service(tmp_path)
        other, other_clock = _service(tmp_path)
        other_clock.now = clock.now  # type: ignore[method-assign]
        await service.start(scheduler=False)
        await other.start(scheduler=False)
        try:
            for n in range(3):
                call = FunctionCall(run_id="r", call_id=f"b{n}", spec=FunctionCallSpec(fn="f"))
                await service.create_function_call(call)
                await service.wait_function_call(f"b{n}", 0, agent=True)
            here = (await service.agent_presence("function_call", "b0"))[0]
            await asyncio.sleep(1.5)  # one flush for all three polls
            there = (await other.agent_presence("function_call", "b2"))[0]
            call = FunctionCall(run_id="r", call_id="b3", spec=FunctionCallSpec(fn="f"))
            await service.create_function_call(call)
            await service.wait_function_call("b3", 0, agent=True)
            await service.stop()
            after_stop = (await other.agent_presence("function_call", "b3"))[0]
            return here, there, after_stop
        finally:
            await other.stop()

    assert asyncio.run(main()) == ("waiting", "waiting", "waiting")
