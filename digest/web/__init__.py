"""The reader's side, served by ``digest serve``: one-click unsubscribe, votes, preferences, sign-up, feeds.

Rooms: ``app`` (routes, guards, uvicorn), ``site`` (what handlers share, and how they run: in the thread pool),
``pages`` (unsubscribe, feedback, feed, health), ``prefs`` (the preferences
form), ``signup`` (double opt-in), ``limits`` (rate limits).
"""

from __future__ import annotations

from digest.web.app import create_app, serve

__all__ = ["create_app", "serve"]
