"""Links into ``digest serve`` that carry a signature, so only the person they were sent to can use them.

Pure: the base URL and the secret come in with the settings (the secret from the environment).
"""

from __future__ import annotations

import hashlib
import hmac

from digest.config import DeliverySettings


def unsubscribe_url(name: str, settings: DeliverySettings) -> str | None:
    """A one-click unsubscribe link signed with HMAC-SHA256, when a base URL and a secret are set."""
    secret = settings.secret.get_secret_value()
    base = settings.base_url.rstrip("/")
    if not base or not secret:
        return None
    token = hmac.new(secret.encode(), name.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{base}/unsubscribe/{name}/{token}"
