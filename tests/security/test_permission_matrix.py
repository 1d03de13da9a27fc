"""Every URL pattern × method × role answers the status the permission matrix says.

One test per role builds the world once and walks every row; each request runs in a
savepoint that is rolled back, so a POST or DELETE never changes what the next row sees.
Mismatches are collected and reported together (``url method role: expected X got Y``).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse

from tests.security.permission_matrix import (
    ADMIN_LOGIN,
    ADMIN_POLICY,
    DEPARTMENT,
    LOGIN,
    ROLES,
    ROWS,
    Lit,
    Row,
    admin_rows,
    url_patterns,
)

pytestmark = pytest.mark.django_db

CELLS_CHECKED: dict[str, int] = {}
ADMIN_CELLS_CHECKED: dict[str, int] = {}


def test_every_url_pattern_has_a_row():
    patterns = url_patterns()
    keys = [pattern.key for pattern in patterns]
    rows = [row.key for row in ROWS]
    duplicate_patterns = sorted({key for key in keys if keys.count(key) > 1})
    duplicate_rows = sorted({key for key in rows if rows.count(key) > 1})
    missing = [f"{p.key} ({p.route})" for p in patterns if p.key not in set(rows)]
    stale = sorted(set(rows) - set(keys))

    assert missing == [], "URL patterns without a row in tests/security/permission_matrix.py"
    assert stale == [], "rows whose URL pattern no longer exists"
    assert duplicate_patterns == [], "two URL patterns share one key"
    assert duplicate_rows == [], "two rows for one URL pattern"


def resolve(values: dict, refs: dict) -> dict:
    """World references (``"segment"``) to their values; :class:`Lit` to itself."""
    return {
        name: value.value if isinstance(value, Lit) else refs[value]
        for name, value in values.items()
    }


def url_for(row: Row, refs: dict) -> str:
    if row.url:
        return row.url
    kwargs = resolve(row.kwargs, refs)
    url = reverse(row.name, kwargs=kwargs or None)
    if row.query:
        url += "?" + "&".join(f"{key}={value}" for key, value in row.query.items())
    return url


def request(client: Client, row: Row, method: str, url: str, refs: dict):
    data = resolve(row.data, refs)
    if row.api:
        body = json.dumps(data) if method != "GET" else None
        return client.generic(
            method,
            url,
            body or "",
            content_type="application/json",
            headers={"accept": "application/json", **row.headers},
        )
    if method == "GET":
        return client.get(url, headers=row.headers)
    return (
        client.generic(
            method, url, "", content_type="application/x-www-form-urlencoded", headers=row.headers
        )
        if not data
        else client.post(url, data, headers=row.headers)
    )


def outcome(response, expected) -> str | None:
    """None when the response is what the matrix expects, else what it was."""
    got = response.status_code
    if expected in (LOGIN, ADMIN_LOGIN):
        login = (
            reverse("admin:login") if expected == ADMIN_LOGIN else resolve_url(settings.LOGIN_URL)
        )
        if got == 302 and response["Location"].startswith(login):
            return None
        return f"{got} {response.get('Location', '')}".strip()
    if got == expected:
        return None
    exc = getattr(response, "exc_info", None)
    return f"{got}" + (f" ({exc[1]!r})" if exc else "")


def run_matrix(user, refs: dict, role: str, *, rows=ROWS) -> tuple[list[str], int]:
    """Every row's methods for one role; the mismatches and the number of cells checked."""
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    mismatches, cells = [], 0
    for row in rows:
        url = url_for(row, refs)
        for method, statuses in row.expect.items():
            expected = statuses[role]
            with transaction.atomic():
                response = request(client, row, method, url, refs)
                transaction.set_rollback(True)
            cells += 1
            if user is not None and "_auth_user_id" not in client.session:
                client.force_login(user)  # the logout row ended the session
            got = outcome(response, expected)
            if got is not None:
                mismatches.append(f"{url} {method} {role}: expected {expected} got {got}")
    return mismatches, cells


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role, role_users, world):
    """Every non-admin row, then every admin row, for one role (one world for both)."""
    user = role_users[role]
    mismatches, cells = run_matrix(user, world.refs, role)
    admin_mismatches, admin_cells = run_matrix(
        user, world.refs, role, rows=admin_rows(admin.site._registry)
    )
    CELLS_CHECKED[role], ADMIN_CELLS_CHECKED[role] = cells, admin_cells
    print(f"permission matrix {role}: {cells} cells, admin {admin_cells} cells")
    assert mismatches + admin_mismatches == [], "\n".join(mismatches + admin_mismatches)


def test_every_admin_model_has_a_policy():
    registered = {model._meta.label_lower for model in admin.site._registry}

    assert sorted(registered - set(ADMIN_POLICY)) == [], "admin models without a policy"
    assert sorted(set(ADMIN_POLICY) - registered) == [], "policies of unregistered models"


def test_admin_policy_is_enforced(crm_editor):
    """A staff user holding EVERY model permission still reaches only department-scoped
    admins; people, identifiers, users, logs and the queue stay the administrator's."""
    crm_editor.is_staff = True
    crm_editor.save(update_fields=["is_staff"])
    crm_editor.user_permissions.add(*Permission.objects.all())
    client = Client()
    client.force_login(crm_editor)
    wrong = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        expected = 200 if ADMIN_POLICY[label] == DEPARTMENT else 403
        status = client.get(url).status_code
        if status != expected:
            wrong.append(f"{label}: expected {expected}, got {status}")

    assert wrong == []
