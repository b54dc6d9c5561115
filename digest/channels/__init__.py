"""Channels: one small class per transport, behind an explicit registry.

Each channel takes a ``Job`` (the ledger row, the frozen digest, and what the
pipeline built for it: an email, chat payloads, feed history) and delivers it,
or raises ``TransientError`` / ``PermanentError`` with a reason that names no
secret. Limits and defaults are class data; options are checked in
``__init__``; ``close()`` releases connections. Only this package opens sockets.
"""

from __future__ import annotations

from digest.channels.base import Channel, Job
from digest.channels.email import EmailChannel, EmailPool
from digest.channels.files import AtomChannel, OutboxChannel
from digest.channels.webhook import (
    UNSET,
    DiscordChannel,
    GenericWebhookChannel,
    MattermostChannel,
    SlackChannel,
    Target,
    TeamsChannel,
    channel_name,
    vet,
)

REGISTRY: dict[str, type[Channel]] = {
    cls.kind: cls
    for cls in (
        EmailChannel,
        OutboxChannel,
        AtomChannel,
        SlackChannel,
        DiscordChannel,
        TeamsChannel,
        MattermostChannel,
        GenericWebhookChannel,
    )
}

__all__ = ["REGISTRY", "UNSET", "Channel", "EmailPool", "Job", "Target", "channel_name", "vet"]
