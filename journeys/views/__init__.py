"""Circle ③ pages, one module per topic; each exposes ``urlpatterns``, gathered by
journeys/urls.py (the public tracking endpoints of ``tracking`` are wired in config/urls.py)."""
