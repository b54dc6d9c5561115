"""Channels: one small class per transport, behind an explicit registry.

Each channel takes ``Job``s (the ledger row, the frozen digest, and what the
pipeline built for it: an email, chat payloads, feed history) and delivers
them, reporting per job None or a ``TransientError`` / ``PermanentError`` with
a reason that names no secret. Every channel is built from the ``Settings``;
limits and defaults are class data; ``close()`` releases connections. Only
this package opens sockets. ``REGISTRY`` is the only way a channel is chosen.
Chat payloads are built by ``digest.render.chat`` when a digest is frozen; a
chat channel only posts them.
"""

from __future__ import annotations

from collections.abc import Mapping

from digest.channels.base import Channel, Job
from digest.channels.discord import DiscordChannel
from digest.channels.email import EmailChannel
from digest.channels.files import AtomChannel, OutboxChannel
from digest.channels.mattermost import MattermostChannel
from digest.channels.slack import SlackChannel
from digest.channels.targets import UNSET, Target, channel_name, vet
from digest.channels.teams import TeamsChannel
from digest.channels.webhook import WebhookChannel

REGISTRY: Mapping[str, type[Channel]] = {
    cls.kind: cls
    for cls in (
        EmailChannel,
        OutboxChannel,
        AtomChannel,
        SlackChannel,
        DiscordChannel,
        TeamsChannel,
        MattermostChannel,
        WebhookChannel,
    )
}

__all__ = ["REGISTRY", "UNSET", "Channel", "Job", "Target", "channel_name", "vet"]
