"""Circle ① pages: imports."""

from __future__ import annotations

urlpatterns: list = []
