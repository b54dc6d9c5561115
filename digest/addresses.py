"""Email addresses as SMTP will carry them: checked and normalised by email-validator, the one place that does it.

Pure (no DNS lookups: ``check_deliverability`` is off). ``normalise`` applies
RFC 5321's syntax and lengths, turns an internationalised domain into its ASCII
(IDNA) form, and refuses what this sender's SMTP cannot carry as written: a
non-ASCII local part (it would need SMTPUTF8), quoted local parts, comments,
control characters. Profiles, the sign-up page and ``digest check`` all call it,
so an address that passes one passes all.
"""

from __future__ import annotations

import email_validator


class AddressError(ValueError):
    """An address that cannot be used; ``str()`` says why in plain words."""


def normalise(address: str, *, public: bool = False) -> str:
    """The address in the form to send to (domain lower-cased and in IDNA form), or ``AddressError``.

    ``public`` (the sign-up page) also requires a domain that is deliverable on
    the Internet; an operator's profile may name a local one (``team@intranet``).
    """
    if not isinstance(address, str) or not address.strip():
        raise AddressError("empty; write an address like name@example.org")
    try:
        found = email_validator.validate_email(
            address.strip(),
            check_deliverability=False,
            allow_smtputf8=True,  # accepted here only to be refused below with a clearer reason
            allow_quoted_local=False,
            allow_domain_literal=False,
            globally_deliverable=public,
        )
    except email_validator.EmailNotValidError as e:
        raise AddressError(str(e).rstrip(".")) from None
    if found.smtputf8 or found.ascii_email is None:
        raise AddressError("the part before the @ is not plain ASCII, which this server's mail cannot carry")
    return found.ascii_email


def key(address: str) -> str:
    """What tells two spellings of one mailbox apart for limits and look-ups: the normalised, case-folded form."""
    return normalise(address).casefold()
