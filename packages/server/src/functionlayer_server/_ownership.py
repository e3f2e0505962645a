"""Which agent token owns a request: the one that created it, by its immutable id.

A token's name is a label (shown in the audit as ``agent:<name>``); it is never proof of
ownership, since a name can be re-issued after a revocation. Giving up a request, claiming
its execution and reporting the outcome are allowed to the creating token's id only.
"""

from __future__ import annotations

from functionlayer_server._errors import ForbiddenError
from functionlayer_server._store import RequestRecord

__all__ = ["check_owner"]


def check_owner(record: RequestRecord, token_id: str, what: str) -> None:
    """Refuse (``ForbiddenError``) unless the agent token ``token_id`` created ``record``.

    A request recorded with only a creator's name (created before token ids were recorded)
    fails closed: no token can prove it made it, so none may act on it as its owner (the agent
    asks again under a new call id). A request created without any agent token (in-process,
    through the service) has no owner to check."""
    if record.created_by_token:
        if token_id and record.created_by_token == token_id:
            return
        raise ForbiddenError(f"only the agent token that created this request may {what}")
    if record.created_by:
        raise ForbiddenError(
            f"this request was created before the server recorded token ids, so no token can "
            f"{what}; ask again under a new call id"
        )
