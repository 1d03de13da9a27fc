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
        from journeys import timeline  # noqa: F401
        from journeys.scoring import lead_score_metrics, lead_stages_on_events
        from journeys.triggers import on_events_stored

        register_metric_source(lead_score_metrics)
        register_events_listener(lead_stages_on_events)
        register_events_listener(on_events_stored)
