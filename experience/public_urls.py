"""Public URLs of circle ②, mounted at ``/s/``: survey links customers open without login."""

from django.urls import path

from experience.views import public

app_name = "survey_public"
urlpatterns = [
    path("<str:token>/", public.respond, name="respond"),
    path("<str:token>/thanks/", public.thanks, name="thanks"),
]
