"""The admin site: the administrator's tool, with one narrow door for department staff.

A staff user (``is_staff`` plus model permissions the administrator grants) reaches only the
admins that declare ``staff_may_use = True`` — the department-scoped configuration records
(``config.org.admin.DepartmentScopedAdmin``: segments, campaigns, personas, touchpoints…),
narrowed to what their departments see. Every other admin — people, identifiers, events,
orders, deliveries, consents, users, the audit log, the task queue, third-party models — is
for the superuser alone, whatever permissions a staff user holds: those pages show personal
data unmasked or reach across departments. The rule is applied here, at registration, so a
new admin is closed unless it says otherwise.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class SuperuserOnlyAdmin:
    """Mixed in by :class:`CircleAdminSite` into every admin not open to staff."""

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class CircleAdminSite(admin.AdminSite):
    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not getattr(admin_class, "staff_may_use", False):
            admin_class = type(
                admin_class.__name__,
                (SuperuserOnlyAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)


class CircleAdminConfig(AdminConfig):
    default_site = "config.admin_site.CircleAdminSite"
