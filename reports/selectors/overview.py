"""Reads of the four-circle overview: how the value-provision loop turned in a period.

Three stages of the loop, each from a read model or an indexed column, never the event log:

- **data in**: events (``DailyEvents``), new profiles (``Customer.created_at``), profiles
  unified by a merge that still stands (``CustomerMerge``), survey answers (``DailyAnswers``);
- **action out**: deliveries sent (``DailyDeliveries``), staff tasks created and done
  (``StaffTask``);
- **results**: conversions and the revenue attributed to them (``DailyDeliveries``),
  completed orders and revenue (``DailyOrders``), NPS (``DailyAnswers`` of NPS surveys).

A department's share is what happened at its touchpoints, in answers to its surveys, in
deliveries of its campaigns and in the staff tasks assigned to it. Rows name departments
only, never a department-owned record, so they count every campaign, touchpoint and survey
(the reports show aggregates). New and unified profiles belong to no department: the
customer is company-wide.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, fields

from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from config.org.models import Department
from customers.models import Customer, CustomerMerge
from experience.models import Survey
from experience.nps import nps_score
from journeys.models import StaffTask
from reports.catalog import Period, ReportFilters
from reports.models import DailyAnswers, DailyDeliveries, DailyEvents, DailyOrders
from reports.rollups import local_day

NO_DEPARTMENT = None  # the key of rows no department owns (an event without a touchpoint)


@dataclass
class LoopTotals:
    """The loop's counts over one period (or one day, or one department)."""

    events: int = 0
    new_profiles: int = 0
    unified_profiles: int = 0
    answers: int = 0
    sent: int = 0
    tasks_created: int = 0
    tasks_done: int = 0
    conversions: int = 0
    attributed_revenue: int = 0
    orders: int = 0
    revenue: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0

    @property
    def nps(self) -> float | None:
        return nps_score(
            total=self.nps_answers, promoters=self.promoters, detractors=self.detractors
        )

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + int(value or 0))

    def as_dict(self) -> dict[str, int | float | None]:
        values: dict[str, int | float | None] = {
            f.name: getattr(self, f.name) for f in fields(self)
        }
        values["nps"] = self.nps
        return values


@dataclass
class DepartmentLoop:
    department_id: int | None
    name: str
    totals: LoopTotals


@dataclass
class LoopOverview:
    period: Period
    totals: LoopTotals
    previous: LoopTotals | None
    days: dict[dt.date, LoopTotals] = field(default_factory=dict)
    departments: list[DepartmentLoop] = field(default_factory=list)


# One aggregate per source: (rows, department column or None, day column, aggregates).
# Rollups filter on their ``day``; raw tables on the period's bounds.
def _sources(department_id: int | None) -> list[tuple[QuerySet, str | None, str, dict]]:
    nps = Q(survey__kind=Survey.Kind.NPS)
    return [
        (
            DailyEvents.objects.all(),
            "touchpoint__owner_department_id",
            "day",
            {"events": Sum("events")},
        ),
        (
            DailyAnswers.objects.all(),
            "survey__owner_department_id",
            "day",
            {
                "answers": Sum("answers"),
                "nps_answers": Sum("scored", filter=nps),
                "promoters": Sum("promoters", filter=nps),
                "detractors": Sum("detractors", filter=nps),
            },
        ),
        (
            DailyDeliveries.objects.all(),
            "campaign__owner_department_id",
            "day",
            {
                "sent": Sum("sent"),
                "conversions": Sum("converted"),
                "attributed_revenue": Coalesce(Sum("revenue"), 0, output_field=IntegerField()),
            },
        ),
        (
            DailyOrders.objects.all(),
            "touchpoint__owner_department_id",
            "day",
            {
                "orders": Sum("orders"),
                "revenue": Coalesce(Sum("revenue"), 0, output_field=IntegerField()),
            },
        ),
        (StaffTask.objects.all(), "department_id", "created_at", {"tasks_created": Count("pk")}),
        (
            StaffTask.objects.filter(status=StaffTask.Status.DONE),
            "department_id",
            "completed_at",
            {"tasks_done": Count("pk")},
        ),
        *(
            []
            if department_id is not None
            else [
                (Customer.objects.all(), None, "created_at", {"new_profiles": Count("pk")}),
                (
                    CustomerMerge.objects.filter(undone_at__isnull=True),
                    None,
                    "merged_at",
                    {"unified_profiles": Count("pk")},
                ),
            ]
        ),
    ]


def _grouped(
    queryset: QuerySet,
    department_field: str | None,
    day_field: str,
    aggregates: dict,
    period: Period,
    *,
    department_id: int | None,
    by_day: bool,
) -> list[dict]:
    """One aggregate query: the source's counts in ``period`` by department (and day)."""
    if day_field == "day":
        queryset = queryset.filter(day__gte=period.start, day__lte=period.end)
        day_expression = "day"
    else:
        lo, hi = period.bounds()
        queryset = queryset.filter(**{f"{day_field}__gte": lo, f"{day_field}__lt": hi})
        day_expression = local_day(day_field)
    if department_id is not None and department_field:
        queryset = queryset.filter(**{department_field: department_id})
    keys: dict = {}
    if department_field:
        keys["dept"] = department_field
    if by_day:
        keys["d"] = day_expression
    if keys:
        queryset = queryset.values(
            **{key: F(value) if isinstance(value, str) else value for key, value in keys.items()}
        )
        return list(queryset.annotate(**aggregates).order_by())
    return [queryset.aggregate(**aggregates)]


def _loop_rows(department_id: int | None, period, *, by_day: bool):
    """Every source's grouped rows over ``period``, each with whether it has departments."""
    for queryset, department_field, day_field, aggregates in _sources(department_id):
        for row in _grouped(
            queryset,
            department_field,
            day_field,
            aggregates,
            period,
            department_id=department_id,
            by_day=by_day,
        ):
            yield bool(department_field), row


def loop_overview(*, user, filters: ReportFilters, with_days: bool = True) -> LoopOverview:
    """The loop over ``filters.period`` (totals, per day, per department) and the totals of
    ``filters.compare``; ``filters.department`` restricts every department-owned figure."""
    department_id = filters.department.pk if filters.department is not None else None
    totals = LoopTotals()
    per_day: dict[dt.date, LoopTotals] = {
        filters.period.start + dt.timedelta(days=offset): LoopTotals()
        for offset in range(filters.period.days)
    }
    per_department: dict[int | None, LoopTotals] = defaultdict(LoopTotals)
    for by_department, row in _loop_rows(department_id, filters.period, by_day=with_days):
        day = row.pop("d", None)
        department = row.pop("dept", NO_DEPARTMENT)
        totals.add(**row)
        if day is not None and day in per_day:
            per_day[day].add(**row)
        if by_department:
            per_department[department].add(**row)
    previous = None
    if filters.compare is not None:
        previous = LoopTotals()
        for _by_department, row in _loop_rows(department_id, filters.compare, by_day=False):
            row.pop("dept", None)
            previous.add(**row)
    return LoopOverview(
        period=filters.period,
        totals=totals,
        previous=previous,
        days=per_day if with_days else {},
        departments=_department_rows(per_department, filters),
    )


def _department_rows(
    per_department: dict[int | None, LoopTotals], filters: ReportFilters
) -> list[DepartmentLoop]:
    """One row per department in the filter (every department when none is chosen), plus
    the share no department owns when there is one."""
    if filters.department is not None:
        departments = [filters.department]
    else:
        departments = list(Department.objects.order_by("name"))
    rows = [
        DepartmentLoop(d.pk, d.name, per_department.get(d.pk) or LoopTotals()) for d in departments
    ]
    unowned = per_department.get(NO_DEPARTMENT)
    if filters.department is None and unowned is not None and any(unowned.as_dict().values()):
        rows.append(DepartmentLoop(None, "", unowned))
    return rows
