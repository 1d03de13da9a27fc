"""Reads about who works here, and the one way to fetch a record scoped to the asking user."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from django.http import Http404

from config.org.models import Department, DepartmentOwnedQuerySet, Membership


def memberships_for(user) -> QuerySet[Membership]:
    """The user's memberships with their departments, for menus and profile pages."""
    return Membership.objects.filter(user=user).select_related("department")


def departments_visible_to(user) -> QuerySet[Department]:
    """Every department is listed to staff: sharing needs to name the other teams."""
    if not user.is_authenticated:
        return Department.objects.none()
    return Department.objects.all()


def departments_where(user, role: str) -> QuerySet[Department]:
    """Departments where the user holds ``role`` or a higher one; all for the administrator."""
    if not (user and user.is_authenticated):
        return Department.objects.none()
    if user.is_superuser:
        return Department.objects.all()
    return Department.objects.filter(pk__in=user.department_ids_with_role(role))


def has_role_anywhere(user, role: str) -> bool:
    """True for the administrator and for holders of ``role`` (or higher) in any department."""
    if not (user and user.is_authenticated):
        return False
    return user.is_superuser or bool(user.department_ids_with_role(role))


def get_visible_or_404(queryset: DepartmentOwnedQuerySet, user, **lookup) -> Model:
    """Fetch one department-owned record the user may see.

    Missing and not-yours answer the same 404, so ids of other departments' records leak
    nothing.
    """
    try:
        return queryset.visible_to(user).get(**lookup)
    except queryset.model.DoesNotExist as exc:
        raise Http404 from exc
