"""All SQL, in one room per group of tables; ``Store`` is an open database with all of them.

* ``db``: the file, its connection and transactions, migrations (``schema``,
  the statements as data), checkpoints, and one line for every fault;
* ``papers``: dumps, the seen-set and sightings;
* ``subscribers``: profiles and their state;
* ``digests``: frozen digests, their items and packed content;
* ``ledger``: deliveries, each state recorded after the action;
* ``feedback``: readers' votes on papers, and pending sign-ups;
* ``fetches``: what each day's fetch from Hugging Face found.

Only this package speaks SQL.
"""

from __future__ import annotations

from digest.store.db import fault
from digest.store.digests import Digests, FrozenDigest, frozen
from digest.store.feedback import Feedback
from digest.store.fetches import Fetches
from digest.store.ledger import Ledger, Update
from digest.store.papers import Papers
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION
from digest.store.subscribers import FileStamp, StoredProfile, Subscribers


class Store(Papers, Subscribers, Digests, Ledger, Feedback, Fetches):
    """An open database: ``with Store.open(path) as store``."""


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "FileStamp",
    "FrozenDigest",
    "Store",
    "StoredProfile",
    "Update",
    "fault",
    "frozen",
]
