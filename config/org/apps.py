from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    """Departments, memberships, sharing and the audit log: who may see and change what."""

    name = "config.org"
    label = "org"
    verbose_name = _("Organisation")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in, user_logged_out
        from django.db.models.signals import post_save, pre_save

        from config import security
        from config.org.api import refuse_numbers_as_text

        refuse_numbers_as_text()

        # The register of signed-in sessions (config/security.py), so all can be ended.
        user_logged_in.connect(security.on_user_logged_in, dispatch_uid="circle-login-session")
        user_logged_out.connect(security.on_user_logged_out, dispatch_uid="circle-logout-session")
        user = get_user_model()
        pre_save.connect(security.on_user_pre_save, sender=user, dispatch_uid="circle-user-pre")
        post_save.connect(security.on_user_post_save, sender=user, dispatch_uid="circle-user-post")
