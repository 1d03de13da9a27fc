from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExperienceConfig(AppConfig):
    """Circle ②: touchpoints where behaviour data is born: events, orders, surveys."""

    name = "experience"
    verbose_name = _("② Experience")

    def ready(self) -> None:
        # Circle ① cannot import this app; this app plugs its data into ①'s registries:
        # importers (orders, offline events, products, DMP signals), customer metrics,
        # event conditions of segments, the 360 timeline and 360 panels (cart and
        # favourites, surveys, "record a visit, call or meeting").
        from customers.services import register_profile_change_listener
        from experience import (  # noqa: F401
            activity_panel,
            commerce_panel,
            importers,
            importers_dmp,
            importers_events,
            importers_products,
            metrics,
            segment_conditions,
            surveys,
            timeline,
        )
        from experience.situations import moving_from_address_change

        # A changed address on a profile that had one is a move (a life situation).
        register_profile_change_listener(moving_from_address_change)
