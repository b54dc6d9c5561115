"""Secrets never show in a repr or str: settings, signed links, vetted webhook targets, channels."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest import config, links
from digest.channels import REGISTRY, vet

SECRETS = {
    "DIGEST_SMTP__PASSWORD": "smtp-pass-5f3c9a",
    "DIGEST_DELIVERY__SECRET": "link-secret-81d2e7",
}
WEBHOOK = "https://127.0.0.1/hooks/T000/B000/webhook-secret-4a9b"


def test_no_repr_or_str_holds_a_secret(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (workdir / "digest.toml").write_text(
        '[smtp]\nhost = "127.0.0.1"\n[delivery]\nbase_url = "https://digest.example.org"\n'
    )
    settings = config.load()
    assert settings.smtp.password.get_secret_value() == SECRETS["DIGEST_SMTP__PASSWORD"]  # they were read
    signed = links.links_for("ada", "k" * 22, settings.delivery)
    assert signed is not None
    target = vet(WEBHOOK, name="$TEAM_HOOK", allow_private=True)
    channels = [cls(settings) for cls in REGISTRY.values()]
    try:
        shown = [settings, settings.smtp, settings.delivery, signed, target, *channels]
        text = " ".join(f"{thing!r} {thing!s}" for thing in shown)
    finally:
        for channel in channels:
            channel.close()
    for secret in [*SECRETS.values(), "webhook-secret-4a9b"]:
        assert secret not in text
    assert "base='https://digest.example.org'" in repr(signed)  # the rest of a repr still helps
