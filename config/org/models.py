"""Who works here: users, departments, memberships, sharing between departments, audit log."""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.fields import GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer")
    EDITOR = "editor", _("Editor")
    MANAGER = "manager", _("Manager")


ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.MANAGER: 3}


class DepartmentRoles:
    """Role checks over ``roles_by_department`` (department id → role).

    Shared by staff users and integration tokens (``config.org.authentication``), so every
    "may this caller edit here?" question is answered by the same three methods.
    """

    roles_by_department: dict[int, str]

    @property
    def department_ids(self) -> list[int]:
        return list(self.roles_by_department)

    def has_role(self, department_id: int, role: str) -> bool:
        """True if the caller holds ``role`` or a higher one in the department."""
        held = self.roles_by_department.get(department_id)
        return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]

    def department_ids_with_role(self, role: str) -> list[int]:
        """The departments where the caller holds ``role`` or a higher one."""
        return [
            pk
            for pk, held in self.roles_by_department.items()
            if ROLE_RANK[held] >= ROLE_RANK[role]
        ]


class User(DepartmentRoles, AbstractUser):
    """A staff member; what they see follows from their department memberships."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @cached_property
    def roles_by_department(self) -> dict[int, str]:
        """Department id → role, loaded once per request (the user object lives per request)."""
        return dict(self.memberships.values_list("department_id", "role"))


class Department(models.Model):
    """A team that owns data and shares it with other teams on purpose."""

    class Kind(models.TextChoices):
        ADVERTISING = "advertising", _("Advertising & promotion")
        CRM_DIGITAL = "crm_digital", _("CRM & digital marketing")
        SALES_PLANNING = "sales_planning", _("Sales planning")
        ANALYTICS = "analytics", _("Analytics")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    description = models.TextField(_("description"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="departments"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one department; a person may belong to several."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="uniq_membership"),
        ]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.department} ({self.get_role_display()})"


class Share(models.Model):
    """One department-owned record shared with another department, to view or to co-edit.

    A single generic table serves every department-owned model, so sharing, its audit and
    the ``visible_to`` query are one mechanism rather than one M2M table per model.
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="shares")
    can_edit = models.BooleanField(_("can edit"), default=False)
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    shared_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "department"], name="uniq_share"
            ),
        ]
        indexes = [models.Index(fields=["content_type", "department", "object_id"])]
        verbose_name = _("share")
        verbose_name_plural = _("shares")

    def __str__(self) -> str:
        return f"{self.content_type.model}#{self.object_id} → {self.department}"


class DepartmentOwnedQuerySet(models.QuerySet):
    """Scoping that a view cannot forget: every read of department data starts here."""

    def visible_to(self, user) -> DepartmentOwnedQuerySet:
        """Records owned by, or shared with, one of the user's departments."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self._owned_or_shared(user.department_ids, edit_only=False)

    def editable_by(self, user) -> DepartmentOwnedQuerySet:
        """Records the user may change: editor or manager in the owner or an edit-share."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        ids = [
            dept_id
            for dept_id, role in user.roles_by_department.items()
            if ROLE_RANK[role] >= ROLE_RANK[Role.EDITOR]
        ]
        return self._owned_or_shared(ids, edit_only=True)

    def visible_to_department(self, department_id: int) -> DepartmentOwnedQuerySet:
        """Records a department owns or that were shared with it (to view or to edit)."""
        return self._owned_or_shared([department_id], edit_only=False)

    def _owned_or_shared(self, department_ids: list[int], *, edit_only: bool):
        shares = Share.objects.filter(
            content_type=ContentType.objects.get_for_model(self.model),
            object_id=OuterRef("pk"),
            department_id__in=department_ids,
        )
        if edit_only:
            shares = shares.filter(can_edit=True)
        return self.filter(Q(owner_department_id__in=department_ids) | Q(Exists(shares)))


class DepartmentOwned(models.Model):
    """Base for records a department owns and may share (segments, campaigns, personas…)."""

    owner_department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("owner department"),
    )
    shares = GenericRelation(Share)

    objects = DepartmentOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class AuditLog(models.Model):
    """Append-only record of sensitive actions: unmasked views, exports, merges, sharing…"""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(_("action"), max_length=60, db_index=True)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["department", "at"]),
        ]
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action}"


class LoginSession(models.Model):
    """One signed-in browser session of a user, so that all of them can be ended at once.

    Written when a user logs in and removed when the session ends; deactivating a user (or
    ``config.security.sessions_end``) deletes the sessions listed here.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("login session")
        verbose_name_plural = _("login sessions")

    def __str__(self) -> str:
        return f"{self.user} {self.started_at:%Y-%m-%d %H:%M}"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A key an integration (web shop, app, store system, DMP) uses to call the API.

    Tied to one department (the owner of the data it sends) and one ``source`` name (the
    namespace of its ``event_id``s). Only a SHA-256 digest of the secret is stored: the
    secret is shown once, at creation. ``prefix`` (the first characters of the key, kept in
    clear) finds the row and tells staff which key is which; revoking is a timestamp, so
    what a key did stays attributable.
    """

    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        verbose_name=_("department"),
    )
    source = models.SlugField(
        _("source"),
        max_length=50,
        help_text=_("Name of the sending system, e.g. web-shop; event IDs are unique per source."),
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["department", "name"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
