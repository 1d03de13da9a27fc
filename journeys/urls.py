"""Circle ③ URLs, gathered from the topic modules of ``journeys.views``."""

from journeys.views import (
    calendar,
    campaigns,
    discussion,
    maps,
    overview,
    personas,
    settings,
    tasks,
)

app_name = "journeys"
urlpatterns = [
    *overview.urlpatterns,
    *campaigns.urlpatterns,
    *calendar.urlpatterns,
    *tasks.urlpatterns,
    *settings.urlpatterns,
    *personas.urlpatterns,
    *discussion.urlpatterns,
    *maps.urlpatterns,
]
