"""Circle ① pages: preferences."""

from __future__ import annotations

urlpatterns: list = []
