"""The support and treasury console under ``/console/`` (spec/operations.md "Support console").

Server-rendered HTML (aiohttp-jinja2), usable without JavaScript, in Bahasa Indonesia. The handlers only
translate: they call the same services as the staff API (``SupportService``, ``TreasuryService`` and the
staff account functions), which write each action's audit row in the action's own transaction. No SQL and no
business rule lives here.

The console does not import ``gateway.http`` (the HTTP app mounts the console, and packages form a one-way
graph): it shares the staff API's session cookie by name and checks sessions with the same account
functions the API's ``staff_auth`` uses.
"""
from __future__ import annotations

from gateway.console.web import mount

__all__ = ["mount"]
