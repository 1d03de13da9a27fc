"""Template context every page needs: the user's departments, for the header."""

from __future__ import annotations

from config.org.selectors import memberships_for


def membership(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_memberships": memberships_for(user)}
