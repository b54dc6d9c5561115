"""Reading bounces and complaints: what a returned message, or a provider's event, says. Pure.

* ``classify``: a status code and the server's words → hard (the address is dead) or soft, and a reason;
* ``reports``: one message (a DSN, an MTA's bounce in words, an ARF complaint, an auto-reply) → ``Report``;
* ``providers``: SendGrid's, Mailgun's and Postmark's webhook events → ``Report``s, and their signatures checked.
"""

from __future__ import annotations

from digest.bounces.classify import HARD_REASONS, classify, status_code
from digest.bounces.reports import DELIVERY_HEADER, KINDS, Bounce, Kind, Report, judged, read

__all__ = [
    "DELIVERY_HEADER",
    "HARD_REASONS",
    "KINDS",
    "Bounce",
    "Kind",
    "Report",
    "classify",
    "judged",
    "read",
    "status_code",
]
