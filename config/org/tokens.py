"""API tokens of integrations: creating, revoking and checking them (services and selectors).

A secret looks like ``cc_<prefix>_<random>``: the 8-character prefix is stored in clear to
find the row (and to tell staff which key is which), the whole secret only as a SHA-256
digest. The secret is returned once, by :func:`api_token_create`; nobody can read it later.
Managers of a department (and the administrator) create and revoke its tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _t

from config.org.models import ApiToken, Department, Role
from config.org.selectors import departments_where
from config.org.services import audit_record

SECRET_PREFIX = "cc_"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
LAST_USED_EVERY = dt.timedelta(minutes=1)
"""``last_used_at`` is written at most this often, not on every request."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _split(raw: str) -> str | None:
    """The prefix of a well-formed secret, else ``None``."""
    if not raw.startswith(SECRET_PREFIX):
        return None
    prefix, underscore, rest = raw[len(SECRET_PREFIX) :].partition("_")
    if len(prefix) != PREFIX_LENGTH or not underscore or not rest:
        return None
    return prefix


# --------------------------------------------------------------------------- selectors


def token_departments_managed_by(user) -> QuerySet[Department]:
    """Departments whose tokens the user manages: where they are manager (all for admins)."""
    return departments_where(user, Role.MANAGER)


def api_tokens_manageable_by(user) -> QuerySet[ApiToken]:
    """Tokens of the departments the user manages, newest first, with department and creator."""
    return (
        ApiToken.objects.filter(department__in=token_departments_managed_by(user))
        .select_related("department", "created_by")
        .order_by("-created_at", "-pk")
    )


def can_manage_tokens(user, department: Department) -> bool:
    return user.is_authenticated and (
        user.is_superuser or user.has_role(department.pk, Role.MANAGER)
    )


# --------------------------------------------------------------------------- services


@transaction.atomic
def api_token_create(
    *, name: str, department: Department, source: str, by, secret: str | None = None
) -> tuple[ApiToken, str]:
    """A new token of ``department`` for integration ``source``, and its secret (shown once).

    Raises ``PermissionDenied`` unless ``by`` manages the department (``by=None`` is the
    operator at the shell), ``ValidationError`` naming the field for a bad name or source.
    ``secret`` installs a given well-formed secret instead of a random one (the demo's
    published key); a real installation never passes it.
    """
    if by is not None and not can_manage_tokens(by, department):
        raise PermissionDenied
    name = (name or "").strip()
    source = (source or "").strip()
    if not name:
        raise ValidationError({"name": _t("Give the token a name, e.g. “Web shop”.")})
    if len(name) > 100:
        raise ValidationError({"name": _t("At most 100 characters.")})
    if not source or slugify(source) != source or len(source) > 50:
        raise ValidationError(
            {"source": _t("Use lower-case letters, digits and hyphens, e.g. “web-shop”.")}
        )
    if secret is not None:
        prefix = _split(secret)
        if prefix is None or ApiToken.objects.filter(prefix=prefix).exists():
            raise ValidationError({"secret": "not a well-formed, unused secret"})
        raw = secret
    else:
        while True:
            prefix = secrets.token_hex(PREFIX_LENGTH // 2)
            if not ApiToken.objects.filter(prefix=prefix).exists():
                break
        raw = f"{SECRET_PREFIX}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    token = ApiToken.objects.create(
        name=name,
        department=department,
        source=source,
        prefix=prefix,
        digest=_digest(raw),
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    audit_record(
        actor=by,
        action="api_token.create",
        target=token,
        department=department,
        detail={"name": name, "source": source, "prefix": prefix},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by) -> ApiToken:
    """Stop a token from working; revoking twice keeps the first time."""
    if by is not None and not can_manage_tokens(by, token.department):
        raise PermissionDenied
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=by,
            action="api_token.revoke",
            target=token,
            department=token.department,
            detail={"prefix": token.prefix},
        )
    return token


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token this secret belongs to, or ``None`` (unknown, wrong or revoked)."""
    prefix = _split((raw or "").strip())
    if prefix is None:
        return None
    token = ApiToken.objects.select_related("department").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(raw.strip())):
        return None
    if token.revoked_at is not None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        # At most one write a minute per token, conditional so parallel requests write once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token
