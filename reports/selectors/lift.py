"""Reads of the campaign-lift report: treatment against holdout, per campaign.

A campaign is listed when it was active in the period (it has a daily delivery rollup row
then: something sent, opened, converted or held out) and the user can see it. Its figures
are its stored :class:`~reports.models.CampaignOutcome` rows, which cover every enrolment
so far: the period picks the campaigns, not the enrolments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from experience.nps import nps_score
from journeys.models import Campaign
from journeys.selectors import Lift, lift_estimate
from reports.catalog import Period, ReportFilters
from reports.models import CampaignOutcome, DailyDeliveries
from reports.outcomes import Counts, empty_counts


@dataclass(frozen=True)
class CampaignLift:
    """One campaign's treatment and holdout outcomes and the lifts between them."""

    campaign_id: int
    name: str
    channel: str
    department: str
    treatment: Counts
    holdout: Counts
    conversion: Lift
    purchase: Lift
    repeat: Lift

    @property
    def enough(self) -> bool:
        return self.conversion.enough

    @property
    def revenue_per_person(self) -> tuple[float | None, float | None]:
        return per_person(self.treatment), per_person(self.holdout)

    @property
    def revenue_difference(self) -> float | None:
        """Revenue per treated person minus per holdout person (yen); None below the
        minimum group size, like the other lifts."""
        treated, held = self.revenue_per_person
        if not self.enough or treated is None or held is None:
            return None
        return treated - held

    @property
    def incremental_conversions(self) -> float | None:
        if self.conversion.difference is None:
            return None
        return self.conversion.difference * self.treatment["enrolled"]

    @property
    def incremental_revenue(self) -> float | None:
        if self.revenue_difference is None:
            return None
        return self.revenue_difference * self.treatment["enrolled"]

    @property
    def nps_treatment(self) -> float | None:
        return group_nps(self.treatment)

    @property
    def nps_holdout(self) -> float | None:
        return group_nps(self.holdout)


@dataclass(frozen=True)
class LiftSummary:
    campaigns: list[CampaignLift]

    @property
    def significant_positive(self) -> int:
        return sum(
            1
            for row in self.campaigns
            if row.conversion.significant and row.conversion.difference > 0
        )

    @property
    def measured(self) -> int:
        return sum(1 for row in self.campaigns if row.enough)

    @property
    def incremental_conversions(self) -> float | None:
        values = [row.incremental_conversions for row in self.campaigns if row.enough]
        return sum(values) if values else None

    @property
    def incremental_revenue(self) -> float | None:
        values = [row.incremental_revenue for row in self.campaigns if row.enough]
        return sum(values) if values else None


def per_person(counts: Counts) -> float | None:
    """Revenue in the window per enrolment of the group."""
    return float(counts["revenue"]) / counts["enrolled"] if counts["enrolled"] else None


def group_nps(counts: Counts) -> float | None:
    promoters, passives, detractors = (
        counts["promoters"],
        counts["passives"],
        counts["detractors"],
    )
    return nps_score(
        total=promoters + passives + detractors, promoters=promoters, detractors=detractors
    )


def rate_lift(treatment: Counts, holdout: Counts, field: str) -> Lift:
    """The lift of ``field`` / enrolled between the groups (``journeys`` ' estimate)."""
    return lift_estimate(
        treatment_n=treatment["enrolled"],
        treatment_converted=treatment[field],
        holdout_n=holdout["enrolled"],
        holdout_converted=holdout[field],
    )


def scoped_campaigns(user, filters: ReportFilters) -> QuerySet[Campaign]:
    """Campaigns the user can see, narrowed by the department (owner) and channel filters."""
    campaigns = Campaign.objects.visible_to(user)
    if filters.department is not None:
        campaigns = campaigns.filter(owner_department=filters.department)
    if filters.channel:
        campaigns = campaigns.filter(channel=filters.channel)
    return campaigns


def active_campaign_ids(period: Period, campaigns: QuerySet[Campaign]) -> list[int]:
    """Campaigns of ``campaigns`` with delivery activity in the period (one query)."""
    return list(
        DailyDeliveries.objects.filter(
            day__gte=period.start, day__lte=period.end, campaign__in=campaigns.values("pk")
        )
        .values_list("campaign_id", flat=True)
        .order_by("campaign_id")
        .distinct()
    )


def stored_outcomes(campaign_ids: Iterable[int]) -> dict[tuple[int, bool], Counts]:
    """The stored outcome rows of these campaigns, per ``(campaign_id, is_holdout)``."""
    return {
        (row.pop("campaign_id"), row.pop("is_holdout")): row
        for row in CampaignOutcome.objects.filter(campaign_id__in=list(campaign_ids)).values(
            "campaign_id", "is_holdout", *empty_counts()
        )
    }


def campaign_lifts(user, filters: ReportFilters, period: Period) -> LiftSummary:
    """Lifts of the visible campaigns active in ``period`` (three queries)."""
    ids = active_campaign_ids(period, scoped_campaigns(user, filters))
    if not ids:
        return LiftSummary([])
    outcomes = stored_outcomes(ids)
    rows = []
    for campaign in (
        Campaign.objects.filter(pk__in=ids)
        .select_related("owner_department")
        .order_by("name", "pk")
    ):
        treatment = outcomes.get((campaign.pk, False)) or empty_counts()
        holdout = outcomes.get((campaign.pk, True)) or empty_counts()
        rows.append(
            CampaignLift(
                campaign_id=campaign.pk,
                name=campaign.name,
                channel=campaign.get_channel_display(),
                department=campaign.owner_department.name,
                treatment=treatment,
                holdout=holdout,
                conversion=rate_lift(treatment, holdout, "converted"),
                purchase=rate_lift(treatment, holdout, "buyers"),
                repeat=rate_lift(treatment, holdout, "repeat_buyers"),
            )
        )
    return LiftSummary(rows)
