"""Root URLs: the four circles, accounts, language switch, admin and the REST API."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from config.security import csp_report
from reports.views import home

urlpatterns = [
    path("", home, name="home"),
    path("customers/", include("customers.urls")),
    path("experience/", include("experience.urls")),
    path("s/", include("experience.public_urls")),
    # Campaign links (open pixel, tracked clicks, unsubscribe): public, signed tokens.
    path("", include("journeys.views.tracking")),
    path("platform/", include("journeys.urls")),
    path("reports/", include("reports.urls")),
    path("settings/", include("config.org.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("csp-report/", csp_report, name="csp_report"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),
]
