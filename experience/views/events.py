"""Circle ② pages: events."""

urlpatterns: list = []
