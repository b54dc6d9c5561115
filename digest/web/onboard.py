"""The onboarding page: about ten archive papers to rate ("yes / no / not sure"), teaching a reader's ranking.

Offered right after a sign-up is confirmed and from the preferences page. A GET
shows the papers (``pipeline.onboarding_offers``); only the form's POST records
answers, as the reader's votes. Works without JavaScript: radio buttons, one button.
"""

from __future__ import annotations

from starlette.responses import Response

from digest import links, pipeline
from digest.models import Subscriber
from digest.render.context import authors_text, paper_view
from digest.web.prefs import form_ok, form_token
from digest.web.site import Call, Site, log, threaded

ANSWERS = {"yes": 1, "no": -1}  # "skip" (not sure) records nothing


@threaded
def onboard(site: Site, call: Call) -> Response:
    found = site.subscriber(call.params["token"], links.ONBOARD)
    if found is None:
        return site.not_found()
    subscriber, _ = found
    if subscriber.status == "unsubscribed":
        return site.page("onboard.html.j2", status=409, title="Unsubscribed", subscriber=subscriber, papers=[])
    if call.method == "GET":
        return _show(site, subscriber)
    fields = call.fields
    if not form_ok(site, subscriber, fields.get("form", "")):
        return site.page("missing.html.j2", status=403, title="This form has expired")
    answers = _answers(site, fields)
    changed = pipeline.record_answers(site.feedback, subscriber.name, answers, at=site.clock())
    log.info("onboarding answered subscriber=%s answers=%d changed=%d", subscriber.name, len(answers), changed)
    again = site.links_of(subscriber)
    return site.page(
        "onboard.html.j2", title="Thank you", subscriber=subscriber, papers=[], done=True, answered=len(answers),
        more=again.onboard if again else None, manage=again.preferences if again else None,
    )  # fmt: skip


def _answers(site: Site, fields: dict[str, str]) -> dict[str, int]:
    """The form's answers (``paper:<id>`` = yes / no), for papers the archive has; anything else is ignored."""
    found: dict[str, int] = {}
    for name, value in fields.items():
        paper = name.removeprefix("paper:")
        if paper != name and value in ANSWERS and len(found) < pipeline.MAX_ANSWERS and site.papers.get(paper):
            found[paper] = ANSWERS[value]
    return found


def _show(site: Site, subscriber: Subscriber) -> Response:
    offered = site.offers(subscriber)
    papers = [{**paper_view(p), "authors": authors_text(p), "field": f"paper:{p.id}"} for p in offered]
    signed = site.links_of(subscriber)
    return site.page(
        "onboard.html.j2", title="Teach your digest", subscriber=subscriber, papers=papers, done=False,
        form=form_token(site, subscriber), manage=signed.preferences if signed else None,
    )  # fmt: skip
