"""The agent ends a request without a person: it gives up waiting, or it stopped (Ctrl-C, its
program ending) and abandons it. Only the token that created the request may; either is an
expiry, always a rejection (fail closed), written by the ledger."""

from __future__ import annotations

import json

from functionlayer_server import _policy as policy
from functionlayer_server._auth import ApiClient
from functionlayer_server._errors import AlreadyDecidedError
from functionlayer_server._ownership import check_owner
from functionlayer_server._store import RequestRecord

from ._part import Part
from ._records import dt, model

__all__ = ["Ending"]


class Ending(Part):
    """The agent giving up or abandoning its own request."""

    async def give_up(self, kind: str, call_id: str, client: ApiClient, reason: str) -> bool:
        """An agent stops waiting: only the token that created the request may expire it, and
        expiry is always a rejection (fail closed)."""
        record = await self.ledger.read(kind, call_id, client.project)
        check_owner(record, client.token_id, "give it up; agent tokens cannot decide")
        return await self.ledger.expire(
            kind,
            call_id,
            project=record.project,
            reason=reason,
            force=True,
            actor=f"agent:{client.token_name}",
            via="api",
        )

    async def abandon(self, kind: str, call_id: str, client: ApiClient) -> RequestRecord:
        """The agent stopped waiting (Ctrl-C, its program ending): only the token that created
        the request may say so. A pending request is expired for good with ``abandoned_at``
        set, audited ``abandoned``: nobody can approve it any more and nothing runs. One already
        abandoned is returned as it is (a retry); any other decided request stays decided
        (``AlreadyDecidedError``: abandoning never un-decides)."""
        record = await self.ledger.read(kind, call_id, client.project)
        check_owner(record, client.token_id, "abandon it; agent tokens cannot decide")
        if not record.completed:
            at = dt(self.ledger.clock.now())
            await self.ledger.expire(
                kind,
                call_id,
                project=record.project,
                reason=(
                    f"The agent stopped waiting at {at:%Y-%m-%d %H:%M:%S} UTC (it was "
                    "interrupted or ended), so nothing was approved and nothing runs."
                ),
                force=True,
                actor=f"agent:{client.token_name}",
                via="api",
                abandoned=True,
            )
            fresh = await self.ledger.store.get_request(kind, call_id, record.project)
            assert fresh is not None
            record = fresh
        if json.loads(record.status).get("abandoned_at"):
            return record
        raise AlreadyDecidedError(policy.decided_message(model(record)))
