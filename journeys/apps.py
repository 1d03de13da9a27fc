from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    """Circle ③: personas, journeys and the campaigns that act on them."""

    name = "journeys"
    verbose_name = _("③ Platform")

    def ready(self) -> None:
        # Deliveries and staff tasks appear on circle ①'s customer 360 timeline.
        # Lead score from the scoring rules (a metric source, applied after circle ②'s);
        # after each ingest: lead stages, then event/situation triggers and conversions.
        from customers.metrics import register_metric_source
        from experience.pipeline import register_events_listener
        from journeys import checks, timeline  # noqa: F401  (system checks, timeline entries)
        from journeys.scoring import lead_score_metrics, lead_stages_on_events
        from journeys.triggers import on_events_stored

        register_metric_source(lead_score_metrics)
        register_events_listener(lead_stages_on_events)
        register_events_listener(on_events_stored)
        self._register_subject_sections()

    @staticmethod
    def _register_subject_sections() -> None:
        """A data-subject request exports this circle's rows of the person; erasure blanks
        addresses, trigger context and staff notes and keeps the send statistics."""
        from customers.privacy import register_model_section
        from journeys.models import Delivery, Enrollment, StaffTask

        register_model_section(
            "enrollments",
            Enrollment,
            fields=[
                "customer_id",
                "campaign_id",
                "campaign__name",
                "occurrence",
                "entered_at",
                "status",
                "is_holdout",
                "exit_reason",
                "context",
            ],
            erase={"context": {}},
        )
        register_model_section(
            "deliveries",
            Delivery,
            fields=[
                "customer_id",
                "campaign_id",
                "campaign__name",
                "step_id",
                "occurrence",
                "status",
                "reason",
                "address",
                "created_at",
                "sent_at",
                "delivered_at",
                "opened_at",
                "clicked_at",
                "converted_at",
                "revenue",
            ],
            erase={"address": "", "error": ""},
        )
        register_model_section(
            "staff_tasks",
            StaffTask,
            fields=[
                "customer_id",
                "campaign__name",
                "title",
                "instructions",
                "due_at",
                "status",
                "outcome_code",
                "outcome",
                "completed_at",
            ],
            erase={"title": "(erased)", "instructions": "", "outcome": ""},
        )
