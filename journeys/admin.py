"""Admin of circle ③: personas, journeys with stages, campaigns with steps, deliveries."""

from __future__ import annotations

from django.contrib import admin

from config.org.admin import DepartmentScopedAdmin
from journeys.models import (
    Campaign,
    CampaignStep,
    Comment,
    Delivery,
    Journey,
    Persona,
    StaffTask,
    Stage,
)


@admin.register(Persona)
class PersonaAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "initials", "segment", "owner_department", "updated_at"]
    list_filter = ["owner_department"]
    search_fields = ["name"]
    list_select_related = ["segment", "owner_department"]
    filter_horizontal = ["experience_values"]


class StageInline(admin.StackedInline):
    model = Stage
    fields = [
        ("position", "name", "emotion"),
        "customer_goal",
        "pain_points",
        "opportunities",
        ("kpi", "owner"),
    ]
    autocomplete_fields = ["owner"]
    show_change_link = True
    extra = 0


@admin.register(Journey)
class JourneyAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    inlines = [StageInline]
    list_display = ["name", "persona", "owner_department", "updated_at"]
    list_filter = ["owner_department"]
    search_fields = ["name", "persona__name"]
    list_select_related = ["persona", "owner_department"]


@admin.register(Stage)
class StageAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "journey"
    list_display = ["name", "journey", "position", "emotion", "owner", "version"]
    search_fields = ["name", "journey__name"]
    list_select_related = ["journey", "owner"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["touchpoints", "experience_values"]
    readonly_fields = ["version"]


@admin.register(Comment)
class CommentAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "journey"
    list_display = ["__str__", "journey", "stage", "author", "created_at"]
    search_fields = ["body"]
    list_select_related = ["journey", "stage__journey", "author"]
    raw_id_fields = ["stage"]
    autocomplete_fields = ["author"]


class CampaignStepInline(admin.TabularInline):
    model = CampaignStep
    fields = ["position", "wait_days", "subject", "body"]
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    inlines = [CampaignStepInline]
    list_display = ["name", "kind", "channel", "status", "segment", "starts_at", "owner_department"]
    list_filter = ["status", "channel", "kind", "owner_department"]
    search_fields = ["name"]
    list_select_related = ["segment", "owner_department"]
    raw_id_fields = ["journey_stage"]
    autocomplete_fields = ["created_by"]
    filter_horizontal = ["experience_values"]
    readonly_fields = ["approved_by", "approved_at", "created_at"]
    date_hierarchy = "created_at"


@admin.register(CampaignStep)
class CampaignStepAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "campaign"
    list_display = ["__str__", "campaign", "position", "wait_days", "subject"]
    search_fields = ["subject", "campaign__name"]
    list_select_related = ["campaign"]


@admin.register(Delivery)
class DeliveryAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "campaign"
    list_display = ["id", "campaign", "step__position", "customer", "occurrence", "status"]
    list_filter = ["status"]
    raw_id_fields = ["customer", "step"]
    list_select_related = ["campaign", "step", "customer"]
    readonly_fields = ["created_at"]
    show_full_result_count = False


@admin.register(StaffTask)
class StaffTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "customer", "assignee", "store", "status", "due_at"]
    list_filter = ["status", "store"]
    search_fields = ["title"]
    raw_id_fields = ["customer", "campaign"]
    autocomplete_fields = ["assignee"]
    list_select_related = ["customer", "assignee", "store"]
