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
        self._register_subject_sections()

    @staticmethod
    def _register_subject_sections() -> None:
        """A data-subject request exports this circle's rows of the person; erasure removes
        free text (event properties, survey comments) and keeps types, times and amounts."""
        from customers.privacy import register_model_section
        from experience.models import Event, Favorite, Order, OrderLine, SurveyResponse

        register_model_section(
            "events",
            Event,
            fields=[
                "customer_id",
                "event_type__name",
                "touchpoint__code",
                "occurred_at",
                "source",
                "event_id",
                "properties",
                "value_bits",
            ],
            erase={"properties": {}},
        )
        register_model_section(
            "orders",
            Order,
            fields=[
                "customer_id",
                "id",
                "number",
                "ordered_at",
                "touchpoint__code",
                "status",
                "total",
                "source",
            ],
        )
        register_model_section(
            "order_lines",
            OrderLine,
            customer_field="order__customer",
            fields=["order_id", "product__sku", "product__name", "quantity", "unit_price"],
        )
        register_model_section(
            "survey_responses",
            SurveyResponse,
            fields=[
                "customer_id",
                "survey__name",
                "touchpoint__code",
                "score",
                "choice",
                "comment",
                "answered_at",
            ],
            erase={"comment": ""},
        )
        register_model_section(
            "favorites", Favorite, fields=["customer_id", "product__sku", "created_at"]
        )
