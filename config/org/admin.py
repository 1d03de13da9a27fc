"""Admin of the organisation, and the mixins every circle's admin uses for scoping.

``DepartmentScopedAdmin`` is the admin's ``visible_to``: a staff user sees the records of
their departments (and what is shared with them) and changes only what ``editable_by``
allows. The administrator (superuser) sees and changes everything.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.utils.translation import gettext_lazy as _

from config.org.models import (
    ApiToken,
    AuditLog,
    Department,
    LoginSession,
    Membership,
    Role,
    Share,
    User,
)
from config.org.selectors import departments_where, has_role_anywhere

admin.site.site_header = _("Customer Circle administration")
admin.site.site_title = _("Customer Circle administration")
admin.site.index_title = _("Data of the four circles")


def _is_department_owned(model) -> bool:
    return hasattr(model._default_manager, "visible_to")


class DepartmentScopedAdmin:
    """Mixin for ModelAdmins of department-owned records and of their child rows.

    Without ``scoped_through`` the model itself is department-owned (segments, campaigns…).
    With ``scoped_through = "campaign"`` the model is a child (steps, deliveries…) and is
    scoped through that foreign key (or a path of them, ``"step__campaign"``) to its
    department-owned parent. Model permissions still
    apply on top: this only narrows what they reach.

    ``staff_may_use`` opens the admin to staff at all (``config/admin_site.py``); an admin of
    rows about people (deliveries, answers, memberships…) sets it back to ``False``: their
    pages show personal data unmasked, which is the administrator's alone.
    """

    scoped_through: str | None = None
    staff_may_use = True

    def _owner_model(self):
        model = self.model
        for name in self.scoped_through.split("__") if self.scoped_through else ():
            model = model._meta.get_field(name).related_model
        return model

    def _scope(self, queryset: QuerySet, user, *, edit: bool) -> QuerySet:
        if self.scoped_through is None:
            return queryset.editable_by(user) if edit else queryset.visible_to(user)
        owners = self._owner_model()._default_manager
        owned = owners.editable_by(user) if edit else owners.visible_to(user)
        return queryset.filter(**{f"{self.scoped_through}__in": owned.values("pk")})

    def get_queryset(self, request):
        return self._scope(super().get_queryset(request), request.user, edit=False)

    def _may_edit(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        rows = self.model._default_manager.filter(pk=obj.pk)
        return self._scope(rows, request.user, edit=True).exists()

    def has_add_permission(self, request, *args):
        allowed = super().has_add_permission(request, *args)
        return allowed and has_role_anywhere(request.user, Role.EDITOR)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self._may_edit(request, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or self._may_edit(request, obj))

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and self.scoped_through is None and not request.user.is_superuser:
            # Moving a record to another department is the administrator's decision.
            fields = (*fields, "owner_department")
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Offer only departments the user edits for, and only records they may see."""
        related = db_field.related_model
        user = request.user
        if db_field.name == "owner_department" and not user.is_superuser:
            kwargs["queryset"] = departments_where(user, Role.EDITOR)
        elif db_field.name == self.scoped_through:
            kwargs["queryset"] = related._default_manager.editable_by(user)
        elif _is_department_owned(related):
            kwargs["queryset"] = related._default_manager.visible_to(user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if _is_department_owned(related):
            kwargs["queryset"] = related._default_manager.visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records and read models: shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fields = ["department", "role", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


class DepartmentMembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [UserMembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_superuser"]
    list_filter = [*DjangoUserAdmin.list_filter, "memberships__department", "memberships__role"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    inlines = [DepartmentMembershipInline]
    list_display = ["name", "slug", "kind", "member_count"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "department", "role", "created_at"]
    list_filter = ["department", "role"]
    search_fields = ["user__username", "user__email", "department__name"]
    list_select_related = ["user", "department"]
    autocomplete_fields = ["user"]


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    list_display = ["__str__", "content_type", "object_id", "department", "can_edit", "shared_at"]
    list_filter = ["content_type", "department", "can_edit"]
    list_select_related = ["content_type", "department", "shared_by"]
    search_fields = ["=object_id"]
    autocomplete_fields = ["shared_by"]
    readonly_fields = ["shared_at"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "department", "target_type", "target_id"]
    list_filter = ["action", "department", "at"]
    list_select_related = ["actor", "department", "target_type"]
    search_fields = ["action", "=target_id", "actor__username"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(LoginSession)
class LoginSessionAdmin(ReadOnlyAdmin):
    """Who is signed in where; sessions end on logout, timeout or deactivation of the user."""

    list_display = ["user", "started_at", "ip_address"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed and revoked here; they are created on /settings/tokens/, where the
    secret is shown once (the admin never sees or stores a secret)."""

    list_display = [
        "name",
        "prefix",
        "department",
        "source",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["department", "source", "revoked_at"]
    list_select_related = ["department", "created_by"]
    search_fields = ["name", "=prefix", "source"]
    fields = [
        "name",
        "department",
        "source",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        from config.org.tokens import token_departments_managed_by

        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(department__in=token_departments_managed_by(request.user))

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        from config.org.tokens import api_token_revoke, can_manage_tokens

        for token in queryset.filter(revoked_at__isnull=True).select_related("department"):
            if can_manage_tokens(request.user, token.department):
                api_token_revoke(token=token, by=request.user)
