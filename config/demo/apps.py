from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo company and the one-command local stack (web server plus task worker).

    It lives beside the settings and root URLs because, like them, it composes every circle;
    no circle imports it.
    """

    name = "config.demo"
    label = "demo"
    verbose_name = _("Demo company")
