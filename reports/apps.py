from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    """Circle ④: the reports from which strategy is decided."""

    name = "reports"
    verbose_name = _("④ Strategy")

    def ready(self) -> None:
        # The catalogue's reports; the CLV panel of the 360 page and the segment condition
        # "prediction" (circle ① cannot import this app, so it registers into ①'s registries).
        from experience.pipeline import register_events_listener
        from reports import pages, panels, segment_conditions  # noqa: F401
        from reports.rollups import events_rollup_follow

        # New events reach the events rollup seconds after ingestion, not at the next minute.
        register_events_listener(events_rollup_follow)
