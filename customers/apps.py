from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    """Circle ①: one unified profile per person, with identities, consent and segments."""

    name = "customers"
    verbose_name = _("① Customer")
