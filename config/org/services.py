"""Writes of the organisation: audit entries and sharing between departments."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model

from config.org.models import AuditLog, Department, Share


def audit_record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    department: Department | None = None,
    detail: dict | None = None,
    ip_address: str | None = None,
) -> AuditLog:
    """Append one audit entry; never updated or deleted afterwards."""
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        department=department,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        detail=detail or {},
        ip_address=ip_address,
    )


@transaction.atomic
def share_grant(*, obj: Model, department: Department, can_edit: bool, by) -> Share:
    """Share a department-owned record with another department (or change its rights)."""
    share, _created = Share.objects.update_or_create(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=obj.pk,
        department=department,
        defaults={"can_edit": can_edit, "shared_by": by},
    )
    audit_record(
        actor=by,
        action="share.grant",
        target=obj,
        department=department,
        detail={"can_edit": can_edit},
    )
    return share


@transaction.atomic
def share_revoke(*, obj: Model, department: Department, by) -> None:
    """Stop sharing a record with a department."""
    Share.objects.filter(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=obj.pk,
        department=department,
    ).delete()
    audit_record(actor=by, action="share.revoke", target=obj, department=department)
