from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExperienceConfig(AppConfig):
    """Circle ②: touchpoints where behaviour data is born: events, orders, surveys."""

    name = "experience"
    verbose_name = _("② Experience")
