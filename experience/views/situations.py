"""Circle ② pages: situations."""

urlpatterns: list = []
