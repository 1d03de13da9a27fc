"""REST API v1: each circle contributes its routes; schema and docs by drf-spectacular.

Every app's ``api.py`` exposes ``register(router)``; adding a circle's endpoints is one line
in ``REGISTRARS``. The schema and its docs are for signed-in staff only, like the data.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from config.org import api as org_api
from customers import api as customers_api
from customers import api_imports, api_segments
from experience import api as experience_api
from experience import api_events
from journeys import api as journeys_api
from reports import api as reports_api

REGISTRARS = [
    customers_api.register,
    api_segments.register,
    api_imports.register,
    experience_api.register,
    journeys_api.register,
]

router = DefaultRouter()
for register in REGISTRARS:
    register(router)

urlpatterns = [
    path("me/", org_api.me, name="api-me"),
    # Integrations post batches here with an API token; with or without the slash.
    path("events", api_events.events_create, name="api-events"),
    path("events/", api_events.events_create_slash, name="api-events-slash"),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="api-schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
        name="api-docs",
    ),
    # Stage cells and revision restores: detail-only endpoints, outside the router.
    *journeys_api.urlpatterns,
    path("reports/", reports_api.report_list, name="api-reports"),
    path("reports/<slug:slug>/", reports_api.report_detail, name="api-report"),
    *router.urls,
]
