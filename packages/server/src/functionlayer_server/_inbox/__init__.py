"""The web inbox: server-rendered pages where humans answer approval requests.

Security model, briefly:
- every page needs a logged-in user (a signed, HttpOnly, SameSite=Lax session cookie);
- every POST carries the session's CSRF token and is refused (403) without it or when the
  browser says it comes from another site (the ``CsrfForm`` dependency of ``_deps``);
- everything an LLM wrote is rendered through Jinja2 autoescape only, and pages are sent with a
  Content-Security-Policy that allows no inline script at all;
- a user who may not see a request gets the same 404 as for a request that does not exist.
"""

from __future__ import annotations

from ._router import create_inbox_router, install_inbox

__all__ = ["create_inbox_router", "install_inbox"]
