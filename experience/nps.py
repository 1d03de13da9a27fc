"""Net Promoter Score, computed one way everywhere.

Answers to NPS surveys only (0–10); promoters score 9–10, passives 7–8, detractors 0–6;
NPS = % promoters − % detractors over all answers, from −100 to +100, rounded to one
decimal. Pages, reports, the touchpoint map and the API all aggregate with
:func:`nps_counts` and turn the counts into a score with :func:`nps_score`.
"""

from __future__ import annotations

from django.db.models import Count, Q

PROMOTER_MIN = 9
DETRACTOR_MAX = 6


def nps_counts(prefix: str = "") -> dict[str, Count]:
    """Aggregates ``total``, ``promoters`` and ``detractors`` over survey responses.

    ``prefix`` is the path from the queried model to ``SurveyResponse`` (e.g.
    ``"surveys__responses__"``). Filter the rows to NPS surveys yourself; the counts only
    look at the score.
    """
    pk, score = f"{prefix}pk", f"{prefix}score"
    return {
        "total": Count(pk, filter=Q(**{f"{score}__isnull": False})),
        "promoters": Count(pk, filter=Q(**{f"{score}__gte": PROMOTER_MIN})),
        "detractors": Count(pk, filter=Q(**{f"{score}__lte": DETRACTOR_MAX})),
    }


def nps_score(*, total: int, promoters: int, detractors: int) -> float | None:
    """The NPS of the counts, or ``None`` when nobody answered."""
    if not total:
        return None
    return round((promoters - detractors) * 100 / total, 1)


def nps_category(score: int) -> str:
    """``promoter``, ``passive`` or ``detractor`` for one 0–10 answer."""
    if score >= PROMOTER_MIN:
        return "promoter"
    if score <= DETRACTOR_MAX:
        return "detractor"
    return "passive"
