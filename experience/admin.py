"""Admin of circle ②: touchpoints, the event log, the catalogue, orders and surveys."""

from __future__ import annotations

from django.contrib import admin

from config.org.admin import DepartmentScopedAdmin
from experience.models import (
    Event,
    EventType,
    ExperienceValue,
    Favorite,
    Order,
    OrderLine,
    Product,
    Survey,
    SurveyResponse,
    Touchpoint,
)


@admin.register(ExperienceValue)
class ExperienceValueAdmin(admin.ModelAdmin):
    list_display = ["code", "__str__", "position"]
    list_editable = ["position"]


@admin.register(Touchpoint)
class TouchpointAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "code", "channel", "kind", "is_active", "owner_department"]
    list_filter = ["channel", "kind", "is_active", "owner_department"]
    search_fields = ["code", "name"]
    list_select_related = ["owner_department"]
    filter_horizontal = ["experience_values"]


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "owner_department"]
    list_filter = ["owner_department"]
    search_fields = ["name", "description"]
    list_select_related = ["owner_department"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The raw behaviour log: the biggest table, so no full counts and no customer select."""

    list_display = ["id", "event_type", "customer", "touchpoint", "occurred_at", "source"]
    list_filter = ["event_type", "touchpoint"]
    raw_id_fields = ["customer"]
    list_select_related = ["event_type", "customer", "touchpoint"]
    readonly_fields = ["received_at"]
    show_full_result_count = False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "price", "stock", "is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["sku", "name"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["product", "quantity", "unit_price"]
    autocomplete_fields = ["product"]
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    inlines = [OrderLineInline]
    list_display = ["number", "customer", "ordered_at", "status", "total", "touchpoint", "source"]
    list_filter = ["status", "touchpoint"]
    search_fields = ["=number"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "touchpoint"]
    date_hierarchy = "ordered_at"
    show_full_result_count = False


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ["order", "product", "quantity", "unit_price"]
    raw_id_fields = ["order"]
    autocomplete_fields = ["product"]
    list_select_related = ["order", "product"]
    show_full_result_count = False


@admin.register(Favorite)
class FavoriteAdmin(admin.ModelAdmin):
    list_display = ["customer", "product", "created_at"]
    raw_id_fields = ["customer"]
    autocomplete_fields = ["product"]
    list_select_related = ["customer", "product"]
    show_full_result_count = False


@admin.register(Survey)
class SurveyAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "kind", "touchpoint", "is_active", "owner_department"]
    list_filter = ["kind", "is_active", "owner_department"]
    search_fields = ["name"]
    list_select_related = ["touchpoint", "owner_department"]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    scoped_through = "survey"
    list_display = ["survey", "customer", "score", "touchpoint", "answered_at"]
    raw_id_fields = ["customer"]
    list_select_related = ["survey", "customer", "touchpoint"]
    date_hierarchy = "answered_at"
    show_full_result_count = False
