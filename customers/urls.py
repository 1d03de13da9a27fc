"""Circle ① URLs, gathered from the topic modules of ``customers.views``."""

from customers.views import imports, merges, preferences, privacy, profiles, segments

app_name = "customers"
urlpatterns = [
    *profiles.urlpatterns,
    *segments.urlpatterns,
    *imports.urlpatterns,
    *merges.urlpatterns,
    *preferences.urlpatterns,
    *privacy.urlpatterns,
]
