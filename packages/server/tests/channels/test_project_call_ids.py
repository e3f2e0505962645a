"""Call ids are unique per project only: a request is delivered to its channels even when
another project already uses its call id (real store, scheduler and Slack channel; the Slack
Web API is the double)."""

from __future__ import annotations

from pathlib import Path

import pytest
from functionlayer.models import ApprovalPolicy, FunctionCall, FunctionCallSpec
from functionlayer_server._scheduler import ManualClock

from packages.server.tests.channels.slack_double import SlackDouble
from packages.server.tests.channels.test_routing import posted, running, settle, slack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_a_squatted_call_id_is_still_delivered_in_its_own_project(
    tmp_path: Path, slack_double: SlackDouble
) -> None:
    async with running(tmp_path / "ids.sqlite3", slack_double, ManualClock()) as server:
        service = server.service
        # Another project takes the id first (no channels: nothing of it is delivered).
        squat = FunctionCall(run_id="b", call_id="same-id", spec=FunctionCallSpec(fn="other"))
        assert (await service.create_function_call(squat, project="project-b"))[1]
        mine = FunctionCall(
            run_id="a",
            call_id="same-id",
            spec=FunctionCallSpec(
                fn="deploy", kwargs={"v": 1}, policy=ApprovalPolicy(channels=[slack("C-ONE")])
            ),
        )
        assert (await service.create_function_call(mine))[1]
        message = await posted(slack_double, "C-ONE")
        assert "deploy" in message.params["text"]
        await settle()
        delivered = [e for e in await service.audit_trail("same-id") if e.action == "delivered"]
        assert [e.project for e in delivered] == ["default"]
