"""Admin of circle ③: personas, journeys with stages, campaigns with steps, deliveries."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from config.org.admin import DepartmentScopedAdmin, ReadOnlyAdmin
from journeys.maps.cells import CELLS
from journeys.maps.selectors import on_visible_maps
from journeys.models import (
    Campaign,
    CampaignRun,
    CampaignStep,
    Comment,
    ContactPolicy,
    Delivery,
    Enrollment,
    Journey,
    Notification,
    Persona,
    Presence,
    Revision,
    ScoringRule,
    StaffTask,
    Stage,
    Suppression,
    Variant,
)


class MapRecordAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    """Personas, journeys and stages: created here if need be, but their cells change on the
    map pages only, where every change is versioned, logged and seen live by co-editors."""

    cells_of: str

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if obj is None else (*fields, *CELLS[self.cells_of], "versions")


class PersonaOrJourneyScopedAdmin(admin.ModelAdmin):
    """Rows that hang on a persona or on a journey: visible where that record is visible."""

    staff_may_use = True  # scoped like DepartmentScopedAdmin (config/admin_site.py)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(on_visible_maps(request.user))


@admin.register(Persona)
class PersonaAdmin(MapRecordAdmin):
    cells_of = "persona"
    list_display = ["name", "initials", "segment", "owner_department", "updated_at"]
    list_filter = ["owner_department"]
    search_fields = ["name"]
    list_select_related = ["segment", "owner_department"]
    filter_horizontal = ["experience_values"]


class StageInline(admin.TabularInline):
    model = Stage
    fields = ["position", "kind", "name", "emotion", "owner"]
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Journey)
class JourneyAdmin(MapRecordAdmin):
    cells_of = "journey"
    inlines = [StageInline]
    list_display = ["name", "persona", "owner_department", "updated_at"]
    list_filter = ["owner_department"]
    search_fields = ["name", "persona__name"]
    list_select_related = ["persona", "owner_department"]


@admin.register(Stage)
class StageAdmin(MapRecordAdmin):
    cells_of = "stage"
    scoped_through = "journey"
    list_display = ["name", "journey", "position", "emotion", "owner"]
    search_fields = ["name", "journey__name"]
    list_select_related = ["journey", "owner"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["touchpoints", "experience_values"]


@admin.register(Comment)
class CommentAdmin(PersonaOrJourneyScopedAdmin):
    list_display = ["__str__", "persona", "journey", "stage", "field", "author", "created_at"]
    search_fields = ["body"]
    list_select_related = ["persona", "journey", "stage", "author"]
    raw_id_fields = ["persona", "journey", "stage", "parent"]
    autocomplete_fields = ["author", "mentions", "resolved_by"]

    def has_add_permission(self, request):
        return False  # a comment has an author and notifies people: written on the map pages


@admin.register(Revision)
class RevisionAdmin(PersonaOrJourneyScopedAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "action", "persona", "journey", "stage_name", "field", "author"]
    list_filter = ["action"]
    list_select_related = ["persona", "journey", "author"]
    search_fields = ["field", "stage_name", "persona__name", "journey__name"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "recipient", "kind", "actor", "read_at"]
    list_filter = ["kind"]
    list_select_related = ["recipient", "actor"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows if request.user.is_superuser else rows.filter(recipient=request.user)


@admin.register(Presence)
class PresenceAdmin(ReadOnlyAdmin):
    list_display = ["room", "user", "cell", "seen_at"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


class CampaignStepInline(admin.TabularInline):
    model = CampaignStep
    fields = ["position", "name", "delay_minutes", "condition"]
    show_change_link = True
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    inlines = [CampaignStepInline]
    list_display = [
        "name",
        "kind",
        "channel",
        "status",
        "priority",
        "segment",
        "next_run_at",
        "owner_department",
    ]
    list_filter = ["status", "channel", "kind", "preset", "owner_department"]
    search_fields = ["name"]
    list_select_related = ["segment", "owner_department"]
    raw_id_fields = ["journey_stage", "task_store"]
    autocomplete_fields = ["created_by", "task_assignee"]
    filter_horizontal = ["experience_values"]
    # Typed without a scheme, a webhook URL is https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "approval_requested_at",
        "approved_by",
        "approved_at",
        "next_run_at",
        "created_at",
    ]
    date_hierarchy = "created_at"


class VariantInline(admin.StackedInline):
    model = Variant
    fields = [("label", "weight"), "content"]
    extra = 0


@admin.register(CampaignStep)
class CampaignStepAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "campaign"
    inlines = [VariantInline]
    list_display = ["__str__", "campaign", "position", "name", "delay_minutes"]
    search_fields = ["name", "campaign__name"]
    list_select_related = ["campaign"]


@admin.register(Variant)
class VariantAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "step__campaign"
    list_display = ["__str__", "label", "weight"]
    search_fields = ["step__campaign__name"]
    list_select_related = ["step__campaign"]
    raw_id_fields = ["step"]


@admin.register(CampaignRun)
class CampaignRunAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "campaign"
    list_display = ["campaign", "occurrence", "scheduled_for", "started_at", "enrolled"]
    search_fields = ["campaign__name", "occurrence"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign"]
    readonly_fields = ["started_at"]


@admin.register(Enrollment)
class EnrollmentAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    staff_may_use = False  # rows about people: personal data
    scoped_through = "campaign"
    list_display = [
        "id",
        "campaign",
        "customer",
        "occurrence",
        "status",
        "is_holdout",
        "next_position",
        "next_due_at",
    ]
    list_filter = ["status", "is_holdout"]
    raw_id_fields = ["campaign", "customer"]
    list_select_related = ["campaign", "customer"]
    show_full_result_count = False


@admin.register(Delivery)
class DeliveryAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    staff_may_use = False  # rows about people: personal data
    scoped_through = "campaign"
    list_display = [
        "id",
        "campaign",
        "step__position",
        "customer",
        "occurrence",
        "status",
        "reason",
        "due_at",
        "sent_at",
    ]
    list_filter = ["status", "reason"]
    search_fields = ["=id", "address"]
    raw_id_fields = ["customer", "step", "enrollment", "variant", "order"]
    list_select_related = ["campaign", "step", "customer"]
    readonly_fields = ["created_at", "claim", "claimed_at", "attempts"]
    show_full_result_count = False


@admin.register(StaffTask)
class StaffTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "customer", "assignee", "store", "status", "outcome_code", "due_at"]
    list_filter = ["status", "outcome_code", "department", "store"]
    search_fields = ["title"]
    raw_id_fields = ["customer", "campaign", "delivery"]
    autocomplete_fields = ["assignee", "completed_by"]
    list_select_related = ["customer", "assignee", "store"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["value", "channel", "reason", "created_by", "created_at"]
    list_filter = ["channel", "reason"]
    search_fields = ["value", "note"]
    autocomplete_fields = ["created_by"]


@admin.register(ContactPolicy)
class ContactPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "max_contacts", "window_days", "quiet_start", "quiet_end"]
    readonly_fields = ["updated_by", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return not ContactPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScoringRule)
class ScoringRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "event_type", "points", "decay_percent", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "event_type__name"]
    autocomplete_fields = ["created_by"]
    raw_id_fields = ["event_type"]
