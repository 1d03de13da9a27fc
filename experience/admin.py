"""Admin of circle ②: touchpoints, the event log, the catalogue, orders and surveys."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from config.org.admin import DepartmentScopedAdmin, ReadOnlyAdmin
from experience.commerce import clean_product_fields, product_update
from experience.models import (
    Cart,
    CartItem,
    Event,
    EventFollowUp,
    EventType,
    ExperienceValue,
    Favorite,
    Order,
    OrderLine,
    Product,
    ProductChange,
    SituationRule,
    Survey,
    SurveyInvitation,
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


class EventTypeAdminForm(forms.ModelForm):
    """Checks the property schema, so the admin cannot store one ingestion would trip on."""

    class Meta:
        model = EventType
        fields = ["name", "description", "owner_department", "property_schema"]

    def clean_property_schema(self):
        from experience.event_types import validate_schema

        schema = self.cleaned_data.get("property_schema") or {}
        validate_schema(schema)
        return schema


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    form = EventTypeAdminForm
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


EDITABLE_PRODUCT_FIELDS = ("name", "category", "price", "stock", "is_active")


class ProductAdminForm(forms.ModelForm):
    """The catalogue rules of ``experience.commerce`` (price ≥ 0, stock ≥ 0…) in the admin."""

    def clean(self):
        cleaned = super().clean()
        fields = {name: cleaned[name] for name in EDITABLE_PRODUCT_FIELDS if name in cleaned}
        for name, reason in clean_product_fields(fields)[1].items():
            self.add_error(name, reason)
        return cleaned


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Changes go through ``product_update`` so price and stock changes are recorded."""

    form = ProductAdminForm
    list_display = ["sku", "name", "category", "price", "stock", "is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["sku", "name"]

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        if "sku" in form.changed_data:
            Product.objects.filter(pk=obj.pk).update(sku=obj.sku)
        product_update(
            product=obj,
            source="admin",
            by=request.user,
            **{name: getattr(obj, name) for name in EDITABLE_PRODUCT_FIELDS},
        )


@admin.register(EventFollowUp)
class EventFollowUpAdmin(ReadOnlyAdmin):
    """Follow-up work owed for stored events, drained by the worker."""

    list_display = ["pk", "created_at", "queued"]
    list_filter = ["queued"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(ProductChange)
class ProductChangeAdmin(ReadOnlyAdmin):
    """The recorded price and stock changes: read-only history."""

    list_display = ["product", "field", "old_value", "new_value", "changed_at", "source"]
    list_filter = ["field", "source"]
    search_fields = ["product__sku", "product__name"]
    list_select_related = ["product"]
    date_hierarchy = "changed_at"
    show_full_result_count = False


class CartItemInline(admin.TabularInline):
    model = CartItem
    fields = ["product", "quantity", "unit_price", "added_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    """Carts are rebuilt from cart events; the admin shows them, it does not edit them."""

    inlines = [CartItemInline]
    list_display = ["customer", "item_count", "value", "updated_at", "converted_at", "touchpoint"]
    list_filter = ["touchpoint"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "touchpoint"]
    readonly_fields = ["updated_at", "item_count", "value", "converted_at"]
    date_hierarchy = "updated_at"
    show_full_result_count = False


@admin.register(CartItem)
class CartItemAdmin(admin.ModelAdmin):
    list_display = ["cart", "product", "quantity", "unit_price", "added_at"]
    raw_id_fields = ["cart"]
    autocomplete_fields = ["product"]
    list_select_related = ["cart", "product"]
    show_full_result_count = False


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
    fields = [
        "name",
        "kind",
        "question",
        "question_en",
        "choices",
        "attribute",
        "touchpoint",
        "is_active",
        "owner_department",
    ]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    staff_may_use = False  # rows about people: personal data
    scoped_through = "survey"
    list_display = ["survey", "customer", "score", "touchpoint", "answered_at"]
    raw_id_fields = ["customer"]
    list_select_related = ["survey", "customer", "touchpoint"]
    date_hierarchy = "answered_at"
    show_full_result_count = False


@admin.register(SurveyInvitation)
class SurveyInvitationAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    """Invitations are written only by ``experience.surveys``: read-only here."""

    staff_may_use = False  # rows about people: personal data

    scoped_through = "survey"
    list_display = ["survey", "customer", "created_at", "expires_at", "answered_at"]
    raw_id_fields = ["customer", "order"]
    list_select_related = ["survey", "customer"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SituationRule)
class SituationRuleAdmin(DepartmentScopedAdmin, admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "event_type",
        "property",
        "operator",
        "value",
        "min_count",
        "window_days",
        "confidence",
        "is_active",
        "owner_department",
    ]
    list_filter = ["kind", "is_active", "owner_department"]
    search_fields = ["name", "value"]
    list_select_related = ["event_type", "owner_department"]
