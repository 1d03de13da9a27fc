"""Settings pages of the organisation (mounted under ``/settings/``)."""

from config.org.views import urlpatterns as _views
from config.org.views_audit import urlpatterns as _audit

app_name = "org"
urlpatterns = [*_views, *_audit]
