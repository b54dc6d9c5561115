"""Ranking: a day's papers against every profile at once, with the reasons why (pure).

Nothing here touches files, the network, the environment or the clock.

Scores, for paper *d* and profile *p* (all as sparse matrix products over the
day's papers and every profile together, never a loop per pair):

* **keywords**: each term or phrase *k* with weight *w* adds
  ``w · idf(k) · (title_boost · in_title + abstract_saturation)``; a phrase whose
  words appear only separately earns ``partial_credit`` of that, shared out over
  its words. ``idf`` comes from the archive (every paper ever ingested), so a
  term on every page counts less than a rare one. The sum is divided by what a
  paper matching every term in title and abstract would score, so it is about
  0..1. Words are folded (case, plurals: *models* matches *model*).
* **seeds**: Rocchio: the cosine between the paper's TF-IDF vector and the
  profile's seed centroid minus ``seed_contrast`` times the archive's centroid
  (what every paper shares counts against), clipped at 0, times
  ``seed_weight``. On our labelled set this ranks at least as well as
  arxiv-sanity's per-profile linear SVM (bench/ranking.py) and, unlike an SVM
  per profile, is a few matrix products for all profiles at once.
* **votes**: liked papers join the seeds (``liked_weight``); likeness to the
  closest disliked paper, where it exceeds the paper's likeness to the seeds,
  liked papers and archive matches, pushes it down (``disliked_weight``).
* **trending**: a small prior from upvotes and page position (0..1) scales the
  relevance by ``1 + trending_weight * prior``: among relevant papers the
  trending ones rise; an irrelevant paper does not become relevant by trending.

An ``exclude`` term found anywhere in the title or abstract (case-insensitive,
as a substring, so *survey* also removes *Surveys*) removes the paper, and so
does having been in one of the subscriber's earlier digests.
"""

from __future__ import annotations

from digest.rank.corpus import Corpus, Weights
from digest.rank.onboarding import ONBOARDING_SIZE, Offer, offers
from digest.rank.score import rank, rank_all, rank_and_ask
from digest.rank.trending import trending, trending_order
from digest.text import tokens

__all__ = [
    "ONBOARDING_SIZE",
    "Corpus",
    "Offer",
    "Weights",
    "offers",
    "rank",
    "rank_all",
    "rank_and_ask",
    "tokens",
    "trending",
    "trending_order",
]
