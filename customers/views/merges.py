"""Circle ① pages: merges."""

from __future__ import annotations

urlpatterns: list = []
