"""The pieces every chat channel shares (``_answering``, ``_core``, ``_rest``): the service's
refusals become a message for the person and decide nothing, a button names only an option the
request has, a failed message rewrite does not stop the others, and an id from a request never
adds a path segment to a REST URL."""

from __future__ import annotations

from typing import Any

import pytest
from functionlayer.models import ResponseOption
from functionlayer_server._channels._answering import (
    NOT_ALLOWED,
    NeedsConfirmation,
    Refused,
    chosen_option,
    refusals,
)
from functionlayer_server._channels._core import rewrite_each
from functionlayer_server._channels._rest import path_segment, required_id
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)

pytestmark = pytest.mark.anyio


async def test_already_decided_is_audited_by_the_channel_and_shown_to_the_person() -> None:
    audited: list[str] = []

    async def already() -> None:
        audited.append("already decided")

    with pytest.raises(Refused, match=r"^Already decided: approved by ann$"):
        async with refusals(already):
            raise AlreadyDecidedError("approved by ann")
    assert audited == ["already decided"]


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ForbiddenError("bob may not decide"), NOT_ALLOWED),  # the service audited it
        (InvalidDecisionError("a rejection needs feedback"), "a rejection needs feedback"),
        (ConfirmationRequiredError("confirm it"), "confirm it"),  # no confirm step offered
    ],
)
async def test_the_services_refusals_become_a_message(error: Exception, shown: str) -> None:
    with pytest.raises(Refused) as refused:
        async with refusals():
            raise error
    assert str(refused.value) == shown


async def test_a_confirm_step_is_asked_for_only_where_the_channel_offers_one() -> None:
    with pytest.raises(NeedsConfirmation, match="confirm it"):
        async with refusals(confirm=True):
            raise ConfirmationRequiredError("confirm it")
    with pytest.raises(Refused, match="a rejection needs feedback"):
        async with refusals(confirm=True):
            raise InvalidDecisionError("a rejection needs feedback")


async def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(NotFoundError):
        async with refusals(confirm=True):
            raise NotFoundError("gone")


def test_a_button_names_only_an_option_of_the_request() -> None:
    options = [ResponseOption(name="later"), ResponseOption(name="never")]
    assert chosen_option(options, 1) == "never"
    for listed, index in ((options, 2), (None, 0), ([], 0)):
        with pytest.raises(Refused, match="not part of the request"):
            chosen_option(listed, index)


async def test_a_failed_rewrite_does_not_stop_the_others_and_is_raised() -> None:
    sent: list[str] = []

    async def build(delivery: dict[str, Any]) -> str | None:
        return None if delivery["id"] == "skip" else f"body {delivery['id']}"

    async def send(delivery: dict[str, Any], body: str) -> None:
        if delivery["id"] == "broken":
            raise ValueError("HTTP 500")
        sent.append(body)

    deliveries = [{"id": "a"}, {"id": "broken"}, {"id": "skip"}, {"id": "b"}]
    with pytest.raises(RuntimeError, match=r"^HTTP 500$"):
        await rewrite_each(deliveries, build, send, (ValueError,))
    assert sent == ["body a", "body b"]


async def test_an_error_outside_the_expected_ones_stops_the_rewrite() -> None:
    async def build(delivery: dict[str, Any]) -> str:
        return "body"

    async def send(delivery: dict[str, Any], body: str) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await rewrite_each([{"id": "a"}], build, send, (ValueError,))


def test_an_id_is_one_path_segment() -> None:
    assert path_segment(" 123/../456 ", "Discord") == "123%2F..%2F456"
    for value in ("", "  ", ".", ".."):
        with pytest.raises(ValueError, match="not a Teams id"):
            path_segment(value, "Teams")


def test_a_created_thing_without_an_id_is_an_error() -> None:
    assert required_id({"id": 42}, LookupError, "POST /x", "message") == "42"
    with pytest.raises(LookupError, match=r"^POST /x returned no message id$"):
        required_id({}, LookupError, "POST /x", "message")
