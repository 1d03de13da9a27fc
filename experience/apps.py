from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExperienceConfig(AppConfig):
    """Circle ②: touchpoints where behaviour data is born: events, orders, surveys."""

    name = "experience"
    verbose_name = _("② Experience")

    def ready(self) -> None:
        # Circle ① cannot import this app; this app plugs its data into ①'s registries:
        # order imports, customer metrics, event conditions of segments, the 360 timeline.
        from experience import importers, metrics, segment_conditions, timeline  # noqa: F401
