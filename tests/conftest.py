"""Fixtures shared by every test: departments and staff in each role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import override_settings
from django.utils import translation
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from config.org.models import Department, Role
from tests.factories import DepartmentFactory, UserFactory

# Property tests: no example database in the work tree, no per-example deadline (a database
# round trip is not a performance test); each test sets its own ``max_examples``.
hypothesis_settings.register_profile(
    "customer-circle",
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.load_profile("customer-circle")


@pytest.fixture(autouse=True, scope="session")
def fast_password_hasher():
    """Hundreds of staff users are made; PBKDF2 would spend about 0.3 s on each password.

    No test checks hashing itself; password validation and lockout work the same.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in English: a request in Japanese leaves the thread in Japanese."""
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: no figure computed by another test leaks in."""
    cache.clear()


@pytest.fixture
def tasks_inline(settings):
    """Queued django-q2 tasks run where they are queued (the cluster's sync mode), so
    follow-up work (metrics, segments, sending) is done when its on-commit callback runs."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    """Uploaded files (imports, exports) are written under the test's own temporary folder."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def crm():
    return DepartmentFactory(name="CRM & digital", slug="crm", kind=Department.Kind.CRM_DIGITAL)


@pytest.fixture
def sales():
    return DepartmentFactory(
        name="Sales planning", slug="sales", kind=Department.Kind.SALES_PLANNING
    )


@pytest.fixture
def crm_editor(crm):
    return UserFactory(username="crm-editor", department=crm, department__role=Role.EDITOR)


@pytest.fixture
def crm_viewer(crm):
    return UserFactory(username="crm-viewer", department=crm, department__role=Role.VIEWER)


@pytest.fixture
def crm_manager(crm):
    return UserFactory(username="crm-manager", department=crm, department__role=Role.MANAGER)


@pytest.fixture
def sales_editor(sales):
    return UserFactory(username="sales-editor", department=sales, department__role=Role.EDITOR)


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def crm_pii_viewer(crm):
    """A CRM viewer who may see customers' personal data unmasked (``view_pii``)."""
    user = UserFactory(username="crm-pii-viewer", department=crm, department__role=Role.VIEWER)
    user.user_permissions.add(Permission.objects.get(codename="view_pii"))
    return user


@pytest.fixture
def api():
    """A DRF client; authenticate it with ``api.force_authenticate(user)``."""
    return APIClient()
