"""REST API v1: each circle contributes its routes; schema and docs by drf-spectacular.

Every app's ``api.py`` exposes ``register(router)``; adding a circle's endpoints is one line
in ``REGISTRARS``. The schema and its docs are for signed-in staff only, like the data.
"""

from csp.constants import NONCE
from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from config.org import api as org_api
from customers import api as customers_api
from customers import api_imports, api_segments
from experience import api as experience_api
from experience import api_events
from journeys import api as journeys_api
from reports import api as reports_api


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def api_not_found(request: Request) -> Response:
    """No such endpoint or record: a path like ``/api/v1/customers/x.y/`` matches no route."""
    raise NotFound


REGISTRARS = [
    customers_api.register,
    api_segments.register,
    api_imports.register,
    experience_api.register,
    journeys_api.register,
]

router = DefaultRouter()
# No ``/customers.json`` twins: the Accept header picks the format, and the twins answered
# 500 on every @action (their methods take no ``format`` argument).
router.include_format_suffixes = False
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
        # Swagger UI under the Content-Security-Policy: its init script is a separate file
        # (the split view), and its one <style> element carries the nonce, allowed here only.
        csp_update({"style-src": [NONCE]}, REPORT_ONLY=True)(
            csp_update({"style-src": [NONCE]})(
                SpectacularSwaggerSplitView.as_view(
                    url_name="api-schema", permission_classes=[IsAuthenticated]
                )
            )
        ),
        name="api-docs",
    ),
    # Stage cells and revision restores: detail-only endpoints, outside the router.
    *journeys_api.urlpatterns,
    path("reports/", reports_api.report_list, name="api-reports"),
    path("reports/<slug:slug>/", reports_api.report_detail, name="api-report"),
    *router.urls,
    # Anything else under /api/v1/ is a JSON 404 for API clients, never the HTML error page.
    re_path(r"^[\s\S]*$", api_not_found, name="api-not-found"),
]
