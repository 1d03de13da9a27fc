"""Circle ④'s own tables: read models (rollups) of the inner circles, predictions, schedules.

Rollups are keyed by a **local day** (``settings.TIME_ZONE``, Asia/Tokyo by default) and a
few dimensions; ``reports.rollups`` recomputes every day touched since its last run, whole,
so a rollup row always equals a direct aggregate over the raw rows of that day. Report pages
read these tables and never scan the event log. Nothing outside ``reports.rollups`` writes
them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.org.models import Department
from customers.models import Customer, Segment
from experience.models import EventType, Survey, Touchpoint
from journeys.models import Campaign


class RollupState(models.Model):
    """How far one rollup has read its source: the last row id folded in, and when."""

    name = models.CharField(max_length=40, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("rollup state")
        verbose_name_plural = _("rollup states")

    def __str__(self) -> str:
        return self.name


class DailyEvents(models.Model):
    """Events per local day × event type × touchpoint × experience-value mask.

    ``customers`` counts distinct people in the cell that day; summed over days it is
    "visitor-days", not distinct people over the period.
    """

    day = models.DateField(_("day"))
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="+")
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    value_bits = models.PositiveSmallIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    customers = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["day", "touchpoint"]),
            models.Index(fields=["day", "event_type"]),
        ]
        verbose_name = _("daily events")
        verbose_name_plural = _("daily events")

    def __str__(self) -> str:
        return f"{self.day} {self.event_type_id}/{self.touchpoint_id}: {self.events}"


class DailyOrders(models.Model):
    """Completed orders per local day × touchpoint; first orders are a customer's first
    completed order ever."""

    day = models.DateField(_("day"))
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)
    customers = models.PositiveIntegerField(default=0)
    first_orders = models.PositiveIntegerField(default=0)
    first_revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "touchpoint"])]
        verbose_name = _("daily orders")
        verbose_name_plural = _("daily orders")

    def __str__(self) -> str:
        return f"{self.day} {self.touchpoint_id}: {self.orders}"


class DailyAnswers(models.Model):
    """Survey answers per local day × survey × touchpoint.

    For NPS surveys the split is promoters (9–10), passives (7–8) and detractors (0–6);
    ``score_sum`` serves averages of CSAT and other scored surveys.
    """

    day = models.DateField(_("day"))
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="+")
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    answers = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    score_sum = models.PositiveIntegerField(default=0)
    promoters = models.PositiveIntegerField(default=0)
    passives = models.PositiveIntegerField(default=0)
    detractors = models.PositiveIntegerField(default=0)
    comments = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "survey"])]
        verbose_name = _("daily answers")
        verbose_name_plural = _("daily answers")

    def __str__(self) -> str:
        return f"{self.day} {self.survey_id}/{self.touchpoint_id}: {self.answers}"


class DailyDeliveries(models.Model):
    """A campaign's deliveries per local day, each step counted on the day it happened.

    ``sent`` on the day of ``sent_at``, ``opened`` on the day of ``opened_at`` and so on, so
    feedback arriving today only ever changes today's row; ``held_out`` and ``not_sent``
    (suppressed, capped, failed) count on the day the delivery row was created.
    """

    day = models.DateField(_("day"))
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)
    held_out = models.PositiveIntegerField(default=0)
    not_sent = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "campaign"])]
        verbose_name = _("daily deliveries")
        verbose_name_plural = _("daily deliveries")

    def __str__(self) -> str:
        return f"{self.day} {self.campaign_id}: {self.sent}"


class CohortMonth(models.Model):
    """Buyers of one acquisition cohort active in one month.

    ``cohort`` is the local month (first day) of a customer's first completed order,
    ``touchpoint`` where that first order was placed (the acquisition channel), ``offset``
    the months since the cohort month (0 = the first month).
    """

    cohort = models.DateField(_("cohort"))
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    offset = models.PositiveSmallIntegerField(_("months since first order"))
    customers = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)

    class Meta:
        indexes = [models.Index(fields=["cohort", "offset"])]
        verbose_name = _("cohort month")
        verbose_name_plural = _("cohort months")

    def __str__(self) -> str:
        return f"{self.cohort:%Y-%m}+{self.offset}: {self.customers}"


class Cohort(models.Model):
    """One acquisition cohort (month × first-order touchpoint): its size and second
    purchases (F2), as of ``computed_at``."""

    cohort = models.DateField(_("cohort"))
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    customers = models.PositiveIntegerField(default=0)
    repeaters = models.PositiveIntegerField(
        default=0, help_text=_("Customers with a second completed order, ever.")
    )
    repeaters_90d = models.PositiveIntegerField(
        default=0, help_text=_("Customers whose second completed order came within 90 days.")
    )
    revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["cohort"])]
        verbose_name = _("cohort")
        verbose_name_plural = _("cohorts")

    def __str__(self) -> str:
        return f"{self.cohort:%Y-%m}/{self.touchpoint_id}: {self.customers}"


class CampaignOutcome(models.Model):
    """What followed a campaign for its treatment or its holdout group.

    Counted over the enrolments of one group: ``converted`` enrolments with a converted
    delivery; ``buyers`` and ``revenue`` from completed orders within the campaign's
    conversion window after entry; NPS answers in the same window.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    is_holdout = models.BooleanField()
    enrolled = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    buyers = models.PositiveIntegerField(default=0)
    repeat_buyers = models.PositiveIntegerField(
        default=0, help_text=_("Buyers after entry who had bought before entry.")
    )
    revenue = models.DecimalField(max_digits=16, decimal_places=0, default=0)
    promoters = models.PositiveIntegerField(default=0)
    passives = models.PositiveIntegerField(default=0)
    detractors = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "is_holdout"], name="uniq_campaign_outcome")
        ]
        verbose_name = _("campaign outcome")
        verbose_name_plural = _("campaign outcomes")

    def __str__(self) -> str:
        return f"{self.campaign_id} {'holdout' if self.is_holdout else 'treatment'}"


class ClvFitQuerySet(models.QuerySet):
    def succeeded(self) -> models.QuerySet:
        """Fits without an error, newest first: ``.first()`` is the fit behind the current
        predictions (a failed refit leaves them as they were)."""
        return self.filter(error="").order_by("-fitted_at", "-pk")


class ClvFit(models.Model):
    """One fit of the BG/NBD (purchases, P(alive)) and Gamma-Gamma (spend) models.

    ``params`` holds ``r, alpha, a, b`` and ``p, q, gamma``; ``holdout_check`` the test:
    the model fitted on orders before ``calibration_end`` predicts each customer's purchases
    in the ``holdout_days`` after it, compared with what they actually bought.
    """

    fitted_at = models.DateTimeField(_("fitted"), default=timezone.now, db_index=True)
    calibration_end = models.DateTimeField(_("calibration end"))
    holdout_days = models.PositiveSmallIntegerField(_("holdout days"), default=0)
    horizon_days = models.PositiveSmallIntegerField(_("prediction horizon (days)"), default=365)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    params = models.JSONField(_("parameters"), default=dict)
    log_likelihood = models.JSONField(default=dict, blank=True)
    holdout_check = models.JSONField(_("holdout check"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    objects = ClvFitQuerySet.as_manager()

    class Meta:
        verbose_name = _("CLV model fit")
        verbose_name_plural = _("CLV model fits")

    def __str__(self) -> str:
        return f"CLV fit {self.fitted_at:%Y-%m-%d %H:%M}"


class CustomerPrediction(models.Model):
    """A customer's predicted lifetime value from the latest :class:`ClvFit`.

    ``frequency`` (repeat purchase days), ``recency_days`` and ``age_days`` are the RFM
    summary the models read; ``expected_purchases`` and ``clv`` cover ``fit.horizon_days``.
    """

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="prediction"
    )
    fit = models.ForeignKey(ClvFit, on_delete=models.CASCADE, related_name="predictions")
    frequency = models.PositiveIntegerField(default=0)
    recency_days = models.FloatField(default=0)
    age_days = models.FloatField(default=0)
    monetary = models.DecimalField(max_digits=14, decimal_places=0, default=0)
    p_alive = models.FloatField(_("P(alive)"), db_index=True)
    expected_purchases = models.FloatField(_("expected purchases"))
    expected_value = models.DecimalField(
        _("expected order value"), max_digits=14, decimal_places=0, default=0
    )
    clv = models.DecimalField(
        _("predicted value"), max_digits=14, decimal_places=0, default=0, db_index=True
    )

    class Meta:
        verbose_name = _("customer prediction")
        verbose_name_plural = _("customer predictions")

    def __str__(self) -> str:
        return f"{self.customer_id}: P(alive) {self.p_alive:.2f}"


class ReportSubscription(models.Model):
    """A staff member's weekly e-mail of the four-circle overview."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions"
    )
    department = models.ForeignKey(
        Department,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("Empty: every department the recipient can see."),
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), default=0, help_text=_("0 = Monday … 6 = Sunday, in Japan time.")
    )
    hour = models.PositiveSmallIntegerField(_("hour"), default=8)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)
    last_period = models.CharField(
        max_length=20,
        blank=True,
        help_text=_("The ISO week last sent, so a task that runs twice sends once."),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="uniq_report_subscription")
        ]
        verbose_name = _("report subscription")
        verbose_name_plural = _("report subscriptions")

    def __str__(self) -> str:
        return f"{self.user} ({self.department or '-'})"


# --- Customer-level read models (the customers and CLV reports) -----------------------------
# The raw rows behind these pages are one per customer (CustomerMetrics, CustomerPrediction):
# 1M rows at the large company, seconds per aggregate. The aggregates are kept here instead,
# rebuilt whole by ``reports.customer_rollups`` (the 15-minute schedule, ``rollups_rebuild``)
# and, for CLV, with each refit; report pages read a few dozen rows.


class RfmCell(models.Model):
    """Customers with orders and their lifetime revenue per (recency, frequency) score, as
    ``reports.selectors.rfm.rfm_grid`` computes them over every buyer, at ``computed_at``."""

    recency = models.PositiveSmallIntegerField()
    frequency = models.PositiveSmallIntegerField()
    customers = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=0, default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recency", "frequency"], name="uniq_rfm_cell")
        ]
        verbose_name = _("RFM cell")
        verbose_name_plural = _("RFM cells")

    def __str__(self) -> str:
        return f"R{self.recency} F{self.frequency}: {self.customers}"


class DormancyDay(models.Model):
    """Dormancy and churn measured at the end of one local day (``as_of``) over every
    buyer; its rows per month of first order are :class:`DormancyMonth`. A day without
    rows was computed and had no buyers."""

    as_of = models.DateField(unique=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("dormancy day")
        verbose_name_plural = _("dormancy days")

    def __str__(self) -> str:
        return f"dormancy at {self.as_of}"


class DormancyMonth(models.Model):
    """Buyers, dormant and churned customers at the end of ``day.as_of`` whose first
    completed order fell in ``month`` (local month, first day); months with buyers only."""

    day = models.ForeignKey(DormancyDay, on_delete=models.CASCADE, related_name="months")
    month = models.DateField()
    buyers = models.PositiveIntegerField(default=0)
    dormant = models.PositiveIntegerField(default=0)
    churned = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "month"], name="uniq_dormancy_month")]
        verbose_name = _("dormancy month")
        verbose_name_plural = _("dormancy months")

    def __str__(self) -> str:
        return f"{self.day_id} {self.month:%Y-%m}: {self.buyers}"


class ClvSummary(models.Model):
    """The aggregates of one fit's predictions over every customer, stored with the
    predictions (``reports.predictions.predictions_store``): the CLV report's totals and
    its two histograms (``[one_time, repeat, clv]`` per bin, ``clv`` as a string)."""

    fit = models.OneToOneField(ClvFit, on_delete=models.CASCADE, related_name="summary")
    customers = models.PositiveIntegerField(default=0)
    repeat_buyers = models.PositiveIntegerField(default=0)
    mean_p_alive = models.FloatField(null=True, blank=True)
    expected_purchases = models.FloatField(default=0)
    clv = models.DecimalField(max_digits=18, decimal_places=0, default=0)
    likely_lapsed = models.PositiveIntegerField(default=0)
    p_alive_bins = models.JSONField(default=list)
    value_bins = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)
    segments_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the per-segment values were last computed.")
    )

    class Meta:
        verbose_name = _("CLV summary")
        verbose_name_plural = _("CLV summaries")

    def __str__(self) -> str:
        return f"summary of {self.fit_id}"


class ClvSegmentValue(models.Model):
    """One segment's predicted value under a fit: its members (as of the summary's
    ``segments_at``), those with a prediction, their mean P(alive), expected purchases and
    summed CLV. Rows exist for segments with members."""

    summary = models.ForeignKey(ClvSummary, on_delete=models.CASCADE, related_name="segments")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    members = models.PositiveIntegerField(default=0)
    predicted = models.PositiveIntegerField(default=0)
    mean_p_alive = models.FloatField(null=True, blank=True)
    expected_purchases = models.FloatField(default=0)
    clv = models.DecimalField(max_digits=18, decimal_places=0, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["summary", "segment"], name="uniq_clv_segment_value")
        ]
        verbose_name = _("CLV of a segment")
        verbose_name_plural = _("CLV of segments")

    def __str__(self) -> str:
        return f"{self.summary_id}/{self.segment_id}: {self.clv}"


class HeadlineSnapshot(models.Model):
    """A circle's headline figures as computed at ``computed_at`` (``data``: plain JSON),
    for headlines whose live query reads too many rows per page view (the strategy circle:
    NPS and LTV over the last 12 months; the customer circle: counts over every profile).
    Rewritten by ``reports.customer_rollups``."""

    name = models.CharField(max_length=40, primary_key=True)
    computed_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("headline snapshot")
        verbose_name_plural = _("headline snapshots")

    def __str__(self) -> str:
        return f"{self.name} at {self.computed_at}"
