from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    """Circle ④: the reports from which strategy is decided."""

    name = "reports"
    verbose_name = _("④ Strategy")

    def ready(self) -> None:
        from reports import pages  # noqa: F401  (registers the reports of the catalogue)
