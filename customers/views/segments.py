"""Circle ① pages: segments."""

from __future__ import annotations

urlpatterns: list = []
