"""Writes of circle ④ that act on inner circles: saving a report selection as a segment."""

from __future__ import annotations

from django.utils.translation import gettext

from customers.models import Segment
from customers.segments import segment_create
from reports.selectors.rfm import rfm_cell_rules


def rfm_cell_segment_create(
    *, recency: int, frequency: int, within: Segment | None, owner_department, by
) -> Segment:
    """A dynamic segment of one RFM cell (within ``within``'s members when given), named
    after the cell; circle ①'s ``segment_create`` checks the owner and the rules."""
    name = gettext("RFM R%(recency)s F%(frequency)s") % {"recency": recency, "frequency": frequency}
    if within is not None:
        name = gettext("%(name)s in %(segment)s") % {"name": name, "segment": within.name}
    return segment_create(
        name=name,
        rules=rfm_cell_rules(recency, frequency, segment_id=within.pk if within else None),
        owner_department=owner_department,
        by=by,
        description=gettext("Saved from the RFM grid of the customers report."),
    )
