from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    """Departments, memberships, sharing and the audit log: who may see and change what."""

    name = "config.org"
    label = "org"
    verbose_name = _("Organisation")
