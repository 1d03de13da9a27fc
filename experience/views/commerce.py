"""Circle ② pages: commerce."""

urlpatterns: list = []
