"""django-q2 tasks of circle ②: thin, idempotent wrappers over services."""

from __future__ import annotations

from experience import pipeline


def process_stored_events(touched: dict[str, list[int]] | None = None) -> int:
    """Carts, favourites, situations, metrics and segments after events were stored.

    Without ``touched`` (what :func:`experience.pipeline.events_stored` queues): drain the
    pending follow-up rows. With it (tasks queued before the rows existed): those customers.
    """
    if touched is None:
        return len(pipeline.follow_ups_drain())
    return len(pipeline.process_stored_events(touched))
