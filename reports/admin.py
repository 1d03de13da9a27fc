"""Admin of circle ④: rollups and predictions to inspect, report e-mail subscriptions."""

from __future__ import annotations

from django.contrib import admin

from config.org.admin import ReadOnlyAdmin
from reports.models import (
    CampaignOutcome,
    ClvFit,
    ClvSegmentValue,
    ClvSummary,
    Cohort,
    CohortMonth,
    CustomerPrediction,
    DailyAnswers,
    DailyDeliveries,
    DailyEvents,
    DailyOrders,
    DormancyDay,
    DormancyMonth,
    HeadlineSnapshot,
    ReportSubscription,
    RfmCell,
    RollupState,
)


class ReadModelAdmin(ReadOnlyAdmin):
    """Rollups are derived data, rebuilt by ``rebuild_rollups``: the administrator may look,
    nobody edits. (Department staff read them through the scoped report pages.)"""

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(RollupState)
class RollupStateAdmin(ReadModelAdmin):
    list_display = ["name", "last_id", "refreshed_at", "rebuilt_at"]


@admin.register(DailyEvents)
class DailyEventsAdmin(ReadModelAdmin):
    list_display = ["day", "event_type", "touchpoint", "value_bits", "events", "customers"]
    list_filter = ["event_type"]
    list_select_related = ["event_type", "touchpoint"]
    date_hierarchy = "day"


@admin.register(DailyOrders)
class DailyOrdersAdmin(ReadModelAdmin):
    list_display = ["day", "touchpoint", "orders", "revenue", "customers", "first_orders"]
    list_select_related = ["touchpoint"]
    date_hierarchy = "day"


@admin.register(DailyAnswers)
class DailyAnswersAdmin(ReadModelAdmin):
    list_display = ["day", "survey", "touchpoint", "answers", "promoters", "detractors"]
    list_select_related = ["survey", "touchpoint"]
    date_hierarchy = "day"


@admin.register(DailyDeliveries)
class DailyDeliveriesAdmin(ReadModelAdmin):
    list_display = ["day", "campaign", "sent", "opened", "clicked", "converted", "revenue"]
    list_select_related = ["campaign"]
    date_hierarchy = "day"


@admin.register(CohortMonth)
class CohortMonthAdmin(ReadModelAdmin):
    list_display = ["cohort", "touchpoint", "offset", "customers", "orders", "revenue"]
    list_select_related = ["touchpoint"]


@admin.register(Cohort)
class CohortAdmin(ReadModelAdmin):
    list_display = ["cohort", "touchpoint", "customers", "repeaters", "repeaters_90d"]
    list_select_related = ["touchpoint"]


@admin.register(CampaignOutcome)
class CampaignOutcomeAdmin(ReadModelAdmin):
    list_display = ["campaign", "is_holdout", "enrolled", "converted", "buyers", "revenue"]
    list_select_related = ["campaign"]


@admin.register(ClvFit)
class ClvFitAdmin(ReadModelAdmin):
    list_display = ["fitted_at", "calibration_end", "customers", "horizon_days", "error"]


@admin.register(CustomerPrediction)
class CustomerPredictionAdmin(ReadModelAdmin):
    list_display = ["customer", "p_alive", "expected_purchases", "clv", "fit"]
    raw_id_fields = ["customer"]
    list_select_related = ["fit"]


@admin.register(RfmCell)
class RfmCellAdmin(ReadModelAdmin):
    list_display = ["recency", "frequency", "customers", "revenue", "computed_at"]


@admin.register(DormancyDay)
class DormancyDayAdmin(ReadModelAdmin):
    list_display = ["as_of", "computed_at"]


@admin.register(DormancyMonth)
class DormancyMonthAdmin(ReadModelAdmin):
    list_display = ["day", "month", "buyers", "dormant", "churned"]
    list_select_related = ["day"]


@admin.register(ClvSummary)
class ClvSummaryAdmin(ReadModelAdmin):
    list_display = ["fit", "customers", "repeat_buyers", "clv", "computed_at", "segments_at"]
    list_select_related = ["fit"]


@admin.register(ClvSegmentValue)
class ClvSegmentValueAdmin(ReadModelAdmin):
    list_display = ["summary", "segment", "members", "predicted", "clv"]
    list_select_related = ["summary", "segment"]


@admin.register(HeadlineSnapshot)
class HeadlineSnapshotAdmin(ReadModelAdmin):
    list_display = ["name", "computed_at"]


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions of the weekly overview e-mail: staff see and change only their own."""

    list_display = ["user", "department", "weekday", "hour", "is_active", "last_sent_at"]
    list_filter = ["is_active", "weekday"]
    list_select_related = ["user", "department"]
    raw_id_fields = ["user", "created_by"]
    readonly_fields = ["last_sent_at", "last_period", "created_at"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows if request.user.is_superuser else rows.filter(user=request.user)
