"""Settings pages of the organisation (mounted under ``/settings/``)."""

from config.org.views import urlpatterns as _views

app_name = "org"
urlpatterns = [*_views]
