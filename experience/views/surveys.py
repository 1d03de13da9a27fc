"""Circle ② pages: surveys."""

urlpatterns: list = []
