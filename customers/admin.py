"""Admin of circle ①: profiles with their identities, consents and dates; segments."""

from __future__ import annotations

from django.contrib import admin

from config.org.admin import DepartmentScopedAdmin, ReadOnlyAdmin
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerMetrics,
    ErasedIdentifier,
    Identity,
    ImportantDate,
    ImportJob,
    ImportRowError,
    LifeEvent,
    Segment,
    SegmentMembership,
)


class IdentityInline(admin.TabularInline):
    model = Identity
    fields = ["kind", "value", "source", "first_seen_at", "last_seen_at"]
    readonly_fields = ["first_seen_at"]
    extra = 0


class ConsentInline(admin.TabularInline):
    """Shown only: consent changes go through the service that writes their history."""

    model = Consent
    fields = ["channel", "status", "source", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ImportantDateInline(admin.TabularInline):
    model = ImportantDate
    fields = ["kind", "label", "month", "day", "year", "self_declared"]
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    inlines = [IdentityInline, ConsentInline, ImportantDateInline]
    list_display = [
        "id",
        "__str__",
        "lifecycle_stage",
        "is_anonymous",
        "prefecture",
        "language",
        "created_at",
    ]
    list_display_links = ["id", "__str__"]
    list_filter = ["lifecycle_stage", "is_anonymous", "language", "gender"]
    search_fields = [
        "=uuid",
        "^family_name_kana",
        "^given_name_kana",
        "^family_name",
        "^given_name",
    ]
    raw_id_fields = ["merged_into"]
    readonly_fields = ["uuid", "created_at", "updated_at"]
    show_full_result_count = False


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "source", "first_seen_at", "last_seen_at"]
    list_filter = ["kind"]
    search_fields = ["=value"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """Read-only: a change made here would bypass the consent history (ConsentChange)."""

    list_display = ["customer", "channel", "status", "source", "updated_at"]
    list_filter = ["channel", "status"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(ConsentChange)
class ConsentChangeAdmin(ReadOnlyAdmin):
    list_display = ["consent", "status", "source", "changed_by", "changed_at"]
    list_filter = ["status"]
    list_select_related = ["consent", "changed_by"]
    date_hierarchy = "changed_at"
    show_full_result_count = False


@admin.register(ImportantDate)
class ImportantDateAdmin(admin.ModelAdmin):
    list_display = ["customer", "kind", "label", "month", "day", "year", "self_declared"]
    list_filter = ["kind", "self_declared", "month"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = ["key", "label", "type", "is_pii", "retention_days", "owner_department"]
    list_filter = ["type", "is_pii", "owner_department"]
    search_fields = ["key", "label"]
    list_select_related = ["owner_department"]


@admin.register(LifeEvent)
class LifeEventAdmin(admin.ModelAdmin):
    list_display = ["customer", "kind", "detected_at", "source", "confidence"]
    list_filter = ["kind"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    date_hierarchy = "detected_at"
    show_full_result_count = False


@admin.register(Segment)
class SegmentAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "kind", "owner_department", "created_by", "updated_at"]
    list_filter = ["kind", "owner_department"]
    search_fields = ["name"]
    list_select_related = ["owner_department", "created_by"]
    autocomplete_fields = ["created_by"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    staff_may_use = False  # rows about people: personal data
    scoped_through = "segment"
    list_display = ["segment", "customer", "added_at"]
    raw_id_fields = ["customer"]
    list_select_related = ["segment", "customer"]
    show_full_result_count = False


@admin.register(CustomerMetrics)
class CustomerMetricsAdmin(ReadOnlyAdmin):
    """A read model kept by ingestion; editing it here would only make it wrong."""

    list_display = [
        "customer",
        "order_count",
        "revenue_total",
        "last_order_at",
        "event_count",
        "last_event_at",
        "last_nps",
    ]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(ErasedIdentifier)
class ErasedIdentifierAdmin(ReadOnlyAdmin):
    """Hashes of erased people's identifiers; they keep those people suppressed."""

    list_display = ["kind", "digest", "erased_at"]
    list_filter = ["kind"]
    search_fields = ["=digest"]
    show_full_result_count = False


@admin.register(CustomerMerge)
class CustomerMergeAdmin(ReadOnlyAdmin):
    """Merges are made and undone through their services, which move the records."""

    list_display = ["merged_at", "loser", "winner", "reason", "merged_by", "undone_at"]
    list_filter = [("undone_at", admin.EmptyFieldListFilter)]
    list_select_related = ["merged_by"]
    raw_id_fields = ["winner", "loser"]
    date_hierarchy = "merged_at"


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    fields = ["row", "column", "value", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(ImportJob)
class ImportJobAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = [
        "original_name",
        "kind",
        "status",
        "total_rows",
        "error_count",
        "owner_department",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status", "owner_department"]
    list_select_related = ["owner_department", "created_by"]
    search_fields = ["original_name", "source"]
    readonly_fields = ["sha256", "status", "total_rows", "processed_rows", "error_count", "result"]
    inlines = [ImportRowErrorInline]


@admin.register(ImportRowError)
class ImportRowErrorAdmin(DepartmentScopedAdmin, ReadOnlyAdmin):
    staff_may_use = False  # rows about people: personal data
    scoped_through = "job"
    list_display = ["job", "row", "column", "reason"]
    list_select_related = ["job"]
