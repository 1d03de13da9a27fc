"""Reads about who works here, and the one way to fetch a record scoped to the asking user."""

from __future__ import annotations

from django.db.models import Model, Q, QuerySet
from django.http import Http404

from config.org.models import AuditLog, Department, DepartmentOwnedQuerySet, Membership, Role


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


def audit_entries_visible_to(user) -> QuerySet[AuditLog]:
    """Audit entries a user may browse: all for the administrator; for a manager, the
    entries of the departments they manage and those whose actor is a member of one of
    them; none for anyone else.

    An entry recorded without a department (an unmasked profile view, an export) is found
    through its actor, so a manager sees what their own people did with personal data.
    """
    if not (user and user.is_authenticated):
        return AuditLog.objects.none()
    if user.is_superuser:
        return AuditLog.objects.all()
    managed = user.department_ids_with_role(Role.MANAGER)
    if not managed:
        return AuditLog.objects.none()
    members = Membership.objects.filter(department_id__in=managed).values("user_id")
    return AuditLog.objects.filter(Q(department_id__in=managed) | Q(actor_id__in=members))


def audit_entries_page(
    entries: QuerySet[AuditLog], *, before: int | None, size: int
) -> tuple[list[AuditLog], int | None]:
    """Up to ``size`` of ``entries`` older than entry ``before``, newest first, and the id to
    continue from (keyset paging: the log is never counted). The cursor entry is looked up
    among ``entries`` themselves, so it must be one the asker may see."""
    entries = entries.order_by("-at", "-pk")
    if before is not None:
        cursor = entries.filter(pk=before).values_list("at", flat=True).first()
        if cursor is None:
            entries = entries.filter(pk__lt=before)
        else:
            entries = entries.filter(Q(at__lt=cursor) | Q(at=cursor, pk__lt=before))
    page = list(entries[: size + 1])
    return page[:size], (page[size - 1].pk if len(page) > size else None)


def audit_targets_existing(
    entries: list[AuditLog], models: set[tuple[str, str]]
) -> set[tuple[int, str]]:
    """(content type id, target id) of the entries' targets that still exist, among targets
    of the given (app label, model) kinds: one query per kind, not one per entry."""
    wanted: dict[int, tuple[type[Model] | None, set[int]]] = {}
    for entry in entries:
        kind = entry.target_type
        if kind is None or not entry.target_id.isdigit():
            continue
        if (kind.app_label, kind.model) not in models:
            continue
        wanted.setdefault(kind.pk, (kind.model_class(), set()))[1].add(int(entry.target_id))
    found: set[tuple[int, str]] = set()
    for kind_id, (model, ids) in wanted.items():
        if model is not None:
            pks = model._base_manager.filter(pk__in=ids).values_list("pk", flat=True)
            found.update((kind_id, str(pk)) for pk in pks)
    return found
