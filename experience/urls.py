"""Circle ② URLs, gathered from the topic modules of ``experience.views``."""

from experience.views import commerce, events, situations, surveys, touchpoints

app_name = "experience"
urlpatterns = [
    *touchpoints.urlpatterns,
    *events.urlpatterns,
    *commerce.urlpatterns,
    *surveys.urlpatterns,
    *situations.urlpatterns,
]
