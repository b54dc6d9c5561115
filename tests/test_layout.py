"""docs/architecture.md's import rules, read from the source: imports point downward, resources have one owner."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# Which of our own modules each module may import. A new module must be added here on purpose.
ROOMS = (
    "report",
    "intake",
    "fetching",
    "subscribers",
    "ranking",
    "onboarding",
    "batch",
    "workers",
    "make",
    "delivery",
    "notices",
    "signups",
    "run",
    "status",
    "payloads",
    "retry",
    "retention",
    "bounces",
)

CHAT_PLATFORMS = ("slack", "discord", "teams", "mattermost", "webhook")

ALLOWED: dict[str, set[str]] = {
    "digest": set(),
    "digest.__main__": {"digest.cli"},
    # the ground floor: plain values, errors, settings, shared text, signed links
    "digest.models": set(),
    "digest.errors": set(),
    "digest.config": {"digest.errors", "digest.renamed"},
    "digest.renamed": set(),
    "digest.text": set(),
    "digest.lazy": set(),
    "digest.addresses": set(),  # email-validator, in one place
    "digest.interrupts": set(),  # Ctrl-C and SIGTERM as a request to stop
    "digest.atomic": set(),  # a file written whole or not at all
    "digest.links": {"digest.config"},
    "digest.cadence": {"digest.models"},
    "digest.profile_checks": {"digest.addresses", "digest.models", "digest.errors"},
    "digest.profiles": {"digest.profile_checks", "digest.models", "digest.errors"},
    # ingest
    "digest.ingest": {"digest.ingest.lines", "digest.ingest.parse", "digest.ingest.read", "digest.text"},
    "digest.ingest.hfjson": {"digest.errors", "digest.ingest.safejson", "digest.models", "digest.text"},
    "digest.ingest.safejson": {"digest.errors"},
    "digest.ingest.lines": {"digest.models", "digest.text"},
    "digest.ingest.parse": {
        "digest.errors",
        "digest.ingest.lines",
        "digest.models",
        "digest.text",
    },
    "digest.ingest.read": {"digest.errors", "digest.ingest.hfjson", "digest.ingest.parse", "digest.models"},
    # rank
    "digest.rank": {
        "digest.rank.corpus",
        "digest.rank.onboarding",
        "digest.rank.score",
        "digest.rank.trending",
        "digest.text",
    },
    "digest.rank.onboarding": {"digest.models", "digest.rank.corpus"},
    "digest.rank.corpus": {"digest.models", "digest.rank.postings", "digest.text"},
    "digest.rank.plan": {"digest.models", "digest.rank.corpus"},
    "digest.rank.postings": {"digest.models", "digest.text"},
    "digest.rank.trending": {"digest.models", "digest.rank.corpus"},
    "digest.rank.explain": {"digest.models", "digest.rank.corpus", "digest.rank.plan"},
    "digest.rank.implicit": {"digest.models", "digest.rank.corpus", "digest.rank.plan"},
    "digest.rank.score": {
        "digest.models",
        "digest.rank.corpus",
        "digest.rank.explain",
        "digest.rank.implicit",
        "digest.rank.plan",
        "digest.rank.postings",
        "digest.rank.trending",
    },
    # render
    "digest.render": {"digest", "digest.lazy", "digest.render.context", "digest.render.message", "digest.render.mime"},
    "digest.render.templating": set(),
    "digest.render.context": {"digest.links", "digest.models", "digest.text"},
    "digest.render.chat": {f"digest.render.chat.{room}" for room in ("base", *CHAT_PLATFORMS)},
    "digest.render.chat.base": {"digest.models"},
    "digest.render.chat.webhook": {"digest.render.chat.base", "digest.render.context"},
    **{
        f"digest.render.chat.{platform}": {
            "digest.render.chat.base",
            "digest.render.chat.webhook",
            "digest.render.context",
        }
        for platform in CHAT_PLATFORMS
        if platform != "webhook"
    },
    "digest.render.mime": {"digest.models", "digest.render.context"},
    "digest.render.atom": {"digest.models", "digest.render.context"},
    "digest.render.message": {
        "digest.errors",
        "digest.links",
        "digest.models",
        "digest.render.chat",
        "digest.render.context",
        "digest.render.templating",
    },
    # store
    "digest.store": {
        "digest.errors",
        "digest.store.db",
        "digest.store.digests",
        "digest.store.ledger",
        "digest.store.papers",
        "digest.store.schema",
        "digest.store.subscribers",
        "digest.store.feedback",
        "digest.store.fetches",
        "digest.store.signups",
        "digest.store.copies",
        "digest.store.bounces",
        "digest.store.claims",
        "digest.store.postgres",  # only when a postgresql:// URL is opened
        "digest.store.transfer",
    },
    "digest.store.schema": set(),
    "digest.store.copies": {"digest.errors", "digest.store.schema"},
    "digest.store.db": {"digest.errors", "digest.store.copies", "digest.store.schema"},
    "digest.store.papers": {"digest.models", "digest.store.db"},
    "digest.store.subscribers": {"digest.models", "digest.store.db"},
    "digest.store.digests": {
        "digest.models",
        "digest.render",  # the stored form of an email digest, and the text and HTML read back from it
        "digest.store.db",
        "digest.store.packing",  # the content and the reasons as kept
        "digest.store.papers",  # a paper's row, read once
    },
    "digest.store.packing": {"digest.models"},
    "digest.store.ledger": {"digest.models", "digest.store.db"},
    "digest.store.feedback": {"digest.models", "digest.store.db"},
    "digest.store.fetches": {"digest.models", "digest.store.db"},
    "digest.store.signups": {"digest.store.db"},
    "digest.store.bounces": {"digest.store.db"},
    "digest.store.claims": {"digest.store.db"},
    "digest.store.postgres": {
        "digest.config",
        "digest.errors",
        "digest.text",
        "digest.store.db",
        "digest.store.schema",
        "digest.store.schema_postgres",
        "digest.store.transfer",  # a snapshot as a SQLite file
    },
    "digest.store.schema_postgres": {"digest.store.schema"},
    "digest.store.transfer": {"digest.errors", "digest.store.db"},
    "digest.init": {"digest.errors"},  # `digest init`
    # bounces: reading what comes back (pure), and the mailboxes it comes back to (Maildir, mbox, IMAP, stdin)
    "digest.bounces": {"digest.bounces.classify", "digest.bounces.reports"},
    "digest.bounces.classify": set(),
    "digest.bounces.reports": {"digest.bounces.classify"},
    "digest.bounces.providers": {"digest.bounces.classify", "digest.bounces.reports"},
    "digest.mailboxes": {"digest.config", "digest.errors"},
    # fetch: the one room that calls Hugging Face
    "digest.fetch": {"digest", "digest.config", "digest.errors", "digest.ingest.safejson"},
    # channels: each transport; a chat platform only posts the payloads render.chat built
    "digest.channels": {
        "digest.channels.base",
        "digest.channels.discord",
        "digest.channels.email",
        "digest.channels.files",
        "digest.channels.mattermost",
        "digest.channels.slack",
        "digest.channels.targets",
        "digest.channels.teams",
        "digest.channels.webhook",
    },
    "digest.channels.base": {"digest.config", "digest.errors", "digest.links", "digest.models"},
    "digest.channels.targets": {"digest.errors"},
    "digest.channels.email": {"digest.channels.base", "digest.config", "digest.errors"},
    "digest.channels.files": {
        "digest.atomic",
        "digest.channels.base",
        "digest.config",
        "digest.errors",
        "digest.render.atom",
    },
    "digest.channels.webhook": {"digest.channels.base", "digest.channels.targets", "digest.config", "digest.errors"},
    **{
        f"digest.channels.{platform}": {"digest.channels.webhook"}
        for platform in CHAT_PLATFORMS
        if platform != "webhook"
    },
    # pipeline: the wiring
    "digest.pipeline": {"digest", "digest.lazy"}
    | {f"digest.pipeline.{room}" for room in ROOMS} - {"digest.pipeline.workers"},
    "digest.pipeline.report": {"digest.errors", "digest.models"},
    "digest.pipeline.intake": {
        "digest",
        "digest.ingest",
        "digest.store",
        "digest.config",
        "digest.models",
        "digest.errors",
    },
    "digest.pipeline.fetching": {
        "digest.atomic",
        "digest.config",
        "digest.errors",
        "digest.fetch",
        "digest.models",
        "digest.pipeline.intake",
        "digest.store",
    },
    "digest.pipeline.subscribers": {"digest", "digest.profiles", "digest.store", "digest.models", "digest.errors"},
    "digest.pipeline.ranking": {
        "digest",
        "digest.cadence",
        "digest.channels",
        "digest.config",
        "digest.models",
        "digest.pipeline.subscribers",
        "digest.rank",
        "digest.render",
        "digest.store",
        "digest.text",
    },
    "digest.pipeline.onboarding": {
        "digest",
        "digest.config",
        "digest.models",
        "digest.pipeline.ranking",
        "digest.rank",
        "digest.store",
    },
    "digest.pipeline.batch": {
        "digest",
        "digest.channels",
        "digest.config",
        "digest.links",
        "digest.models",
        "digest.pipeline.claims",
        "digest.pipeline.payloads",
        "digest.pipeline.ranking",
        "digest.pipeline.report",
        "digest.rank",
        "digest.render",
        "digest.store",
        "digest.text",
    },
    "digest.pipeline.claims": {"digest.config"},
    "digest.pipeline.workers": {"digest.config", "digest.pipeline.batch", "digest.store"},
    "digest.pipeline.make": {
        "digest",
        "digest.cadence",
        "digest.config",
        "digest.models",
        "digest.pipeline.batch",
        "digest.pipeline.ranking",
        "digest.pipeline.report",
        "digest.pipeline.subscribers",
        "digest.pipeline.workers",
        "digest.store",
    },
    "digest.pipeline.delivery": {
        "digest",
        "digest.bounces",
        "digest.links",
        "digest.pipeline.bounces",
        "digest.channels",
        "digest.config",
        "digest.errors",
        "digest.models",
        "digest.pipeline.claims",
        "digest.pipeline.payloads",
        "digest.pipeline.report",
        "digest.render",
        "digest.store",
    },
    "digest.pipeline.notices": {
        "digest",
        "digest.channels.email",
        "digest.channels.files",
        "digest.config",
        "digest.models",
        "digest.render",
    },
    "digest.pipeline.signups": {
        "digest.links",
        "digest.config",
        "digest.errors",
        "digest.pipeline.notices",
        "digest.store",
    },
    "digest.pipeline.retry": {"digest.errors", "digest.store"},
    "digest.pipeline.bounces": {
        "digest",
        "digest.bounces",
        "digest.config",
        "digest.links",
        "digest.mailboxes",
        "digest.models",
        "digest.pipeline.subscribers",
        "digest.store",
    },
    "digest.pipeline.retention": {"digest.config", "digest.pipeline.signups", "digest.store"},  # VALID
    "digest.pipeline.payloads": {
        "digest",
        "digest.config",
        "digest.links",
        "digest.models",
        "digest.render",
        "digest.store",
    },
    "digest.pipeline.status": {"digest.cadence", "digest.models", "digest.pipeline.subscribers", "digest.store"},
    "digest.pipeline.run": {
        "digest.config",
        "digest.pipeline.signups",
        "digest.pipeline.delivery",
        "digest.pipeline.intake",
        "digest.pipeline.make",
        "digest.pipeline.report",
        "digest.pipeline.retention",
        "digest.pipeline.subscribers",
        "digest.store",
    },
    # the reader's side: digest serve
    "digest.web": {"digest.web.app"},
    "digest.web.limits": set(),
    "digest.web.site": {
        "digest.config",
        "digest.links",
        "digest.models",
        "digest.pipeline",
        "digest.render",
        "digest.store",
        "digest.web.limits",
    },
    "digest.web.pages": {"digest", "digest.links", "digest.models", "digest.render.atom", "digest.web.site"},
    "digest.web.form": {"digest.models", "digest.profile_checks"},
    "digest.web.prefs": {
        "digest",
        "digest.pipeline.signups",  # how long a request stays valid, which the sender also keeps to
        "digest.atomic",
        "digest.errors",
        "digest.links",
        "digest.models",
        "digest.pipeline",
        "digest.profiles",
        "digest.web.form",
        "digest.web.pages",
        "digest.web.site",
    },
    "digest.web.onboard": {
        "digest",
        "digest.pipeline",
        "digest.links",
        "digest.models",
        "digest.render.context",
        "digest.web.prefs",
        "digest.web.site",
    },
    "digest.web.signup": {
        "digest",
        "digest.atomic",
        "digest.addresses",
        "digest.cadence",
        "digest.pipeline",
        "digest.errors",
        "digest.links",
        "digest.pipeline.signups",  # how long a sign-up stays valid, which the sender also keeps to
        "digest.profiles",
        "digest.web.prefs",
        "digest.web.site",
    },
    "digest.web.hooks": {
        "digest",
        "digest.bounces",
        "digest.errors",
        "digest.ingest.safejson",
        "digest.pipeline",
        "digest.web.site",
    },
    "digest.web.app": {
        "digest.config",
        "digest.web.hooks",
        "digest.errors",
        "digest.links",
        "digest.render",
        "digest.web.onboard",
        "digest.web.pages",
        "digest.web.prefs",
        "digest.web.signup",
        "digest.web.limits",
        "digest.web.site",
    },
    # the top: the daemon and the command line
    "digest.events": set(),  # the daemon's event lines
    "digest.passes": {
        "digest",
        "digest.config",
        "digest.errors",
        "digest.events",
        "digest.fetch",
        "digest.mailboxes",
        "digest.pipeline",
        "digest.store",
    },
    "digest.schedule": {
        "digest",
        "digest.events",
        "digest.passes",
        "digest.cadence",
        "digest.links",
        "digest.interrupts",
        "digest.config",
        "digest.errors",
        "digest.fetch",
        "digest.models",
        "digest.pipeline",
        "digest.store",
    },
    "digest.cli.show": {
        "digest",
        "digest.config",
        "digest.links",
        "digest.models",
        "digest.pipeline",
        "digest.render",
        "digest.store",
        "digest.text",
    },
    "digest.cli.sending": {
        "digest",
        "digest.cli.show",
        "digest.config",
        "digest.models",
        "digest.pipeline",
        "digest.text",
    },
    "digest.cli.args": {"digest.config", "digest.errors"},
    "digest.cli.parser": {  # commands load lazily
        "digest",
        "digest.cli.args",
        "digest.cli.upkeep",
        "digest.models",
        "digest.store.schema",
    },
    "digest.cli.upkeep": {"digest.cli.args"},
    "digest.cli.database": {
        "digest",
        "digest.cli.show",
        "digest.config",
        "digest.errors",
        "digest.pipeline",
        "digest.schedule",
        "digest.store",
        "digest.text",
    },
    "digest.cli.papers": {
        "digest",
        "digest.cadence",
        "digest.cli.show",
        "digest.config",
        "digest.errors",
        "digest.fetch",
        "digest.pipeline",
        "digest.store",
        "digest.text",
    },
    "digest.cli.people": {
        "digest",
        "digest.channels",
        "digest.rank",  # the type of what onboarding offers
        "digest.cli.show",
        "digest.config",
        "digest.errors",
        "digest.links",
        "digest.models",
        "digest.pipeline",
        "digest.profiles",
        "digest.store",
        "digest.text",
    },
    "digest.cli.bounces": {
        "digest",
        "digest.cli.show",
        "digest.config",
        "digest.errors",
        "digest.interrupts",
        "digest.mailboxes",
        "digest.pipeline",
        "digest.store",
        "digest.text",
    },
    "digest.cli.digests": {
        "digest",
        "digest.cli.bounces",
        "digest.events",
        "digest.cli.sending",
        "digest.links",
        "digest.interrupts",
        "digest.init",
        "digest.web",
        "digest.models",
        "digest.cli.show",
        "digest.config",
        "digest.errors",
        "digest.ingest",
        "digest.pipeline",
        "digest.profiles",
        "digest.schedule",
        "digest.store",
        "digest.text",
    },
    "digest.cli": {
        "digest",
        "digest.cli.args",
        "digest.cli.show",
        "digest.cli.parser",
        "digest.config",
        "digest.errors",
    },
}
# Outside resources and the one module that owns each.
OWNERS = {
    "sqlite3": {  # only the store speaks SQL
        "digest.store.db",
        "digest.store.papers",
        "digest.store.subscribers",
        "digest.store.digests",
        "digest.store.ledger",
        "digest.store.feedback",
        "digest.store.fetches",
        "digest.store.signups",
        "digest.store.copies",
    },
    "psycopg": {"digest.store.postgres"},  # PostgreSQL, when database.url names it
    "smtplib": {"digest.channels.email"},
    "imaplib": {"digest.mailboxes"},  # the bounce mailbox
    "mailbox": {"digest.mailboxes"},
    "cryptography": {"digest.bounces.providers"},  # SendGrid's ECDSA signature
    "httpx": {"digest.channels.webhook", "digest.channels.targets", "digest.fetch"},
    # resolving a webhook's host; telling DNS failures apart (fetch, SMTP); binding the web server's port
    "socket": {"digest.channels.targets", "digest.channels.email", "digest.fetch", "digest.web.app"},
    "apscheduler": {"digest.schedule"},
    "starlette": {
        "digest.web.app",
        "digest.web.site",
        "digest.web.pages",
        "digest.web.prefs",
        "digest.web.signup",
        "digest.web.hooks",
        "digest.web.onboard",
    },
    "uvicorn": {"digest.web.app"},
    "tomlkit": {"digest.web.prefs", "digest.web.signup"},
    "fcntl": {"digest.schedule"},
}
# Pure modules: no files, network, environment or clock.
PURE = {"digest.models", "digest.errors"}
IMPURE_CALLS = {"open", "now", "today", "utcnow", "getenv", "read_text", "read_bytes", "write_text", "stat", "time"}


@cache  # parsed once per worker: each of the ~90 parametrised cases used to parse all of digest/ again
def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            named = {f"{node.module}.{alias.name}" for alias in node.names}
            if named <= set(ALLOWED):  # `from digest.cli import show`: the modules, not their package
                names |= named
            else:
                names.add(node.module)
    return names


def test_every_module_is_in_the_table() -> None:
    assert set(modules()) == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_point_downward(name: str) -> None:
    ours = imports(modules()[name]) & set(ALLOWED)
    extra = ours - ALLOWED[name]
    assert not extra, f"{name} may not import {sorted(extra)}"


@pytest.mark.parametrize("resource", sorted(OWNERS))
def test_each_resource_has_one_owner(resource: str) -> None:
    users = {name for name, tree in modules().items() if any(i.split(".")[0] == resource for i in imports(tree))}
    assert users <= OWNERS[resource]


def _calls(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


PURE_CODE = [
    "digest.text",
    "digest.cadence",
    "digest.ingest.hfjson",
    "digest.ingest.safejson",
    "digest.ingest.lines",
    "digest.ingest.parse",
    *(f"digest.rank.{room}" for room in ("corpus", "plan", "postings", "trending", "explain", "score")),
    *(f"digest.render.{room}" for room in ("context", "chat", "mime", "message")),
    "digest.links",
    *(f"digest.bounces.{room}" for room in ("classify", "reports", "providers")),
]


@pytest.mark.parametrize("name", PURE_CODE)
def test_parsing_ranking_and_rendering_touch_no_file_clock_or_environment(name: str) -> None:
    tree = modules()[name]
    assert not (_calls(tree) & IMPURE_CALLS), f"{name} does I/O"
    assert imports(tree).isdisjoint({"os", "time", "socket", "sqlite3", "io", "smtplib", "httpx", "stat"})


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_only_stdlib_values(name: str) -> None:
    allowed = {"__future__", "dataclasses", "datetime", "enum", "typing"}  # enum: the states; typing: NamedTuple
    assert imports(modules()[name]) <= allowed


# The store's parts (digest.store.Store), and the methods of each that change the database.
PARTS = {
    "Papers": "papers",
    "Subscribers": "subscribers",
    "Digests": "digests",
    "Ledger": "ledger",
    "Feedback": "feedback",
    "Signups": "signups",
    "Fetches": "fetches",
    "Bounces": "bounces",
    "Claims": "claims",
}
WRITES = {
    "papers": {"ingest", "forget_sightings"},
    "subscribers": {
        "sync", "save", "save_many", "set_status", "set_joined", "unsubscribe_missing",
        "note_held", "stamp_files", "stamp_folder", "forget_files",
    },
    "digests": {"save", "drop_bodies", "forget"},
    "ledger": {"update", "update_many", "requeue", "set_payloads", "claim", "start"},
    "feedback": {"vote", "forget"},
    "signups": {"add", "mailed", "purge", "confirm"},
    "fetches": {"save", "forget"},
    "bounces": {"record", "suspend", "lift", "forget"},
    "claims": {"editions"},
}  # fmt: skip
# Who uses which part of the store: a room is handed the parts it uses. Only those that open the
# database (cli, passes, the web side, workers) or wire several rooms together hand on all of it.
USES: dict[str, set[str]] = {  # "store": hands the whole database on (it opens it, or wires several rooms)
    "digest.cli.database": {"store"},
    "digest.cli.digests": {"ledger", "store", "subscribers"},
    "digest.cli.bounces": {"bounces", "store"},
    "digest.cli.papers": {"papers", "store"},
    "digest.cli.people": {"bounces", "feedback", "papers", "store", "subscribers"},  # feedback: onboarding's answers
    "digest.passes": {"fetches", "store"},
    "digest.pipeline.batch": {"claims", "digests", "papers", "store"},
    "digest.pipeline.delivery": {"bounces", "digests", "ledger", "store", "subscribers"},
    "digest.pipeline.fetching": {"fetches", "papers", "store"},
    "digest.pipeline.intake": {"papers"},
    "digest.pipeline.retry": {"ledger"},
    "digest.pipeline.bounces": {"bounces", "subscribers"},
    "digest.pipeline.retention": {"bounces", "digests", "feedback", "fetches", "papers", "signups", "store"},
    "digest.pipeline.make": {"bounces", "digests", "papers", "store", "subscribers"},
    "digest.pipeline.payloads": {"digests", "ledger", "subscribers"},
    "digest.pipeline.ranking": {"digests", "feedback", "papers", "store", "subscribers"},
    "digest.pipeline.onboarding": {"feedback", "papers", "store"},
    "digest.pipeline.run": {"ledger", "papers", "store", "subscribers"},
    "digest.pipeline.signups": {"signups", "subscribers"},
    "digest.pipeline.status": {"bounces", "fetches", "ledger", "papers", "subscribers"},
    "digest.pipeline.subscribers": {"feedback", "subscribers"},
    "digest.pipeline.workers": {"store"},
    "digest.schedule": {"ledger", "store", "subscribers"},
    "digest.web.pages": {"digests", "feedback", "papers", "subscribers"},
    "digest.web.prefs": {"bounces", "feedback", "signups", "subscribers"},
    "digest.web.hooks": {"bounces", "subscribers"},
    "digest.web.signup": {"signups", "subscribers"},
    "digest.web.onboard": {"feedback", "papers"},
    "digest.web.site": {"bounces", "digests", "feedback", "papers", "signups", "store", "subscribers"},
}
# The ledger is written where deliveries happen (`digest retry` too, through pipeline.requeue), and where
# a delivery frozen before payloads were kept gets its own.
LEDGER_WRITERS = {"digest.pipeline.delivery", "digest.pipeline.payloads", "digest.pipeline.retry"}


def _holders(tree: ast.Module) -> dict[str, str]:
    """Names that hold a part in this module: arguments annotated with a part's class."""
    held = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotation = ast.unparse(node.annotation).removesuffix(" | None")
            if annotation in PARTS:
                held[node.arg] = PARTS[annotation]
    return held


def _part_of(node: ast.expr, held: dict[str, str]) -> str | None:
    """The part an expression is: ``store.ledger``, ``site.subscribers``, ``…here().digests``, a holder, or
    ``store``: the whole database, which only the pipeline's orchestrating rooms hand on."""
    if isinstance(node, ast.Name):
        return "store" if node.id == "store" else held.get(node.id)
    if not isinstance(node, ast.Attribute) or node.attr not in WRITES:
        return None
    owner = node.value
    if isinstance(owner, ast.Name) and owner.id in {"store", "site", "shadow"}:
        return node.attr
    if isinstance(owner, ast.Attribute) and owner.attr == "store":
        return node.attr
    if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute) and owner.func.attr == "here":
        return node.attr
    return None


def part_uses(tree: ast.Module) -> set[tuple[str, str]]:
    """Each (part, method) the module calls; (part, "") where it hands a part on."""
    held, found = _holders(tree), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (part := _part_of(node.value, held)) not in (None, "store"):
            found.add((part, node.attr))
        elif isinstance(node, ast.Call):
            handed = [*node.args, *(keyword.value for keyword in node.keywords)]
            found |= {(part, "") for arg in handed if (part := _part_of(arg, held)) is not None}
        elif isinstance(node, ast.Return) and node.value is not None and (part := _part_of(node.value, held)):
            found.add((part, ""))
    return found


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_room_uses_only_its_parts_of_the_store(name: str) -> None:
    if name.startswith("digest.store"):
        return
    used = {part for part, _ in part_uses(modules()[name])}
    assert used == USES.get(name, set()), f"{name} uses {sorted(used)}; USES says {sorted(USES.get(name, set()))}"


def test_the_command_line_changes_nothing_but_through_the_pipeline() -> None:
    for name, tree in modules().items():
        if name.startswith("digest.cli"):
            writes = {(part, method) for part, method in part_uses(tree) if method in WRITES.get(part, ())}
            assert not writes, f"{name} writes {sorted(writes)}: call a pipeline function instead"


def test_the_ledger_is_written_only_where_deliveries_happen() -> None:
    writers = {
        name
        for name, tree in modules().items()
        if not name.startswith("digest.store")
        and any(p == "ledger" and m in WRITES["ledger"] for p, m in part_uses(tree))
    }
    assert writers == LEDGER_WRITERS


MODULE_LINES, FUNCTION_LINES = 400, 80  # a room read in a sitting, a function at a glance (CONTRIBUTING)


def test_no_module_or_function_grows_past_its_bound() -> None:
    too_long = []
    for name, tree in modules().items():
        lines = max((getattr(node, "end_lineno", 0) or 0 for node in ast.walk(tree)), default=0)
        if lines > MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {size} lines")
    assert not too_long, f"split these: {too_long}"
