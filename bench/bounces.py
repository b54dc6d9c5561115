"""The bounce classifier against real-world bounces (not a test): how many dead addresses it finds, how few
others it calls hard.

    .venv/bin/python bench/bounces.py PATH [--show wrong]

PATH is a checkout of Sisimai's Perl library (https://github.com/sisimai/p5-sisimai): its
``set-of-emails/maildir/bsd`` holds some six hundred real bounces, complaints and auto-replies from
dozens of MTAs and providers, and its tests (``t/NNN-lhost-NAME.t``, ``rhost-``, ``rfc3464``, ``arf``,
``rfc3834``) give each message's recipients and the reason Sisimai's maintainers assigned. Those
reasons are the reference here; nothing of Sisimai's code is used.

A dead address is one whose reason is userunknown, hostunknown, hasmoved, suspend (a disabled
mailbox) or notaccept (a null MX). It prints one JSON line: ``dead_found`` (the share of dead-address
recipients called hard; the target is at least 0.85), ``others_called_hard`` (the share of every other
failed recipient called hard; at most 0.05), the complaints and auto-replies recognised, and counts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.bounces import reports  # noqa: E402

DEAD = {"userunknown", "hostunknown", "hasmoved", "suspend", "notaccept"}
NOT_FAILURES = {"delivered", "feedback", "vacation", "auth-failure"}
EXPECTED = re.compile(r"'(\d+)'\s*=>\s*\[(.*?)\]\s*,?\s*$", re.M | re.S)
ROW = re.compile(r"\[\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*\d\s*(?:,\s*'([^']*)'\s*)?\]")


def expectations(tests: Path) -> dict[str, list[str]]:
    """Each message file's name → the reasons of its recipients, in order, from Sisimai's tests."""
    found: dict[str, list[str]] = {}
    for test in sorted(tests.glob("*.t")):
        name = re.sub(r"^\d+-", "", test.stem)
        if not (name.startswith(("lhost-", "rhost-")) or name in ("rfc3464", "rfc3834", "arf")):
            continue
        text = test.read_text(encoding="utf-8", errors="replace")
        body = text.split("$isexpected = {", 1)[-1].split("};", 1)[0]
        for line in re.finditer(r"'(\d+)'\s*=>\s*\[(\[.*?\])\]", body, re.S):
            # An authentication-failure report (RFC 6591) is not a reader's complaint: it counts as neither.
            reasons = [row[2] if row[3] != "auth-failure" else "auth-failure" for row in ROW.findall(line.group(2))]
            if reasons:
                found[f"{name}-{line.group(1)}.eml"] = reasons
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="a checkout of sisimai/p5-sisimai")
    parser.add_argument("--show", choices=("wrong", "all"), help="print each message's verdict to stderr")
    args = parser.parse_args()
    folder = args.path / "set-of-emails" / "maildir" / "bsd"
    expected = expectations(args.path / "t")
    tally: Counter[str] = Counter()
    for name, reasons in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            tally["missing_files"] += 1
            continue
        report = reports.read(path.read_bytes())
        verdicts = [b.kind for b in report.bounces] or [report.kind]
        wrong = _count(tally, reasons, verdicts, report.kind)
        if args.show == "all" or (args.show == "wrong" and wrong):
            said = report.bounces[0].diagnostic[:160] if report.bounces else report.note
            print(f"{name}: expected {reasons}, got {verdicts}: {said}", file=sys.stderr)
    print(json.dumps({
        "dead_found": round(tally["dead_hard"] / max(1, tally["dead"]), 3),
        "others_called_hard": round(tally["other_hard"] / max(1, tally["other"]), 3),
        "complaints_found": round(tally["complaint_found"] / max(1, tally["complaint"]), 3),
        "auto_replies_found": round(tally["auto_found"] / max(1, tally["auto"]), 3),
        "counts": dict(sorted(tally.items())),
    }))  # fmt: skip


def _count(tally: Counter[str], reasons: list[str], verdicts: Sequence[str], overall: str) -> bool:
    """Tally one message; whether its verdicts are wrong by the measures above.

    A message's recipients are compared as a whole, not in order (the order of a report's recipients
    need not be the order of Sisimai's list): its dead addresses found are at most its hard verdicts,
    and the hard verdicts beyond its dead addresses are others called hard.
    """
    complaints = reasons.count("feedback")
    autos = reasons.count("vacation")
    dead = sum(r in DEAD for r in reasons)
    others = sum(r not in DEAD and r not in NOT_FAILURES for r in reasons)
    hard = verdicts.count("hard")
    tally["complaint"] += complaints
    tally["complaint_found"] += complaints if overall == "complaint" else 0
    tally["auto"] += autos
    tally["auto_found"] += autos if overall == "auto-reply" else 0
    tally["dead"] += dead
    tally["dead_hard"] += min(dead, hard)
    tally["other"] += others
    tally["other_hard"] += min(others, max(0, hard - dead))
    missed = (complaints and overall != "complaint") or (autos and overall != "auto-reply")
    return bool(missed or hard != dead)


if __name__ == "__main__":
    main()
