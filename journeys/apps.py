from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    """Circle ③: personas, journeys and the campaigns that act on them."""

    name = "journeys"
    verbose_name = _("③ Platform")

    def ready(self) -> None:
        # Deliveries and staff tasks appear on circle ①'s customer 360 timeline.
        from journeys import timeline  # noqa: F401
