"""Circle ② pages: the event type registry.

Every member reads the registry (names, owners, property schemas, volume in the last 30
days): integrations and analysts need the same vocabulary. Editors of the owning
department change an owned type; any editor may add a type or change an unowned one (the
shared vocabulary such as page_view), and only for departments they edit may they set an
owner. The administrator changes anything. Types are never deleted here: events keep
pointing at them.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from config.org.models import Role
from config.org.selectors import departments_where
from experience.event_types import (
    can_edit_event_type,
    event_type_save,
    event_types_with_volume,
    validate_schema,
)
from experience.models import EventType


class EventTypeForm(forms.Form):
    name = forms.SlugField(
        label=_("Name"),
        max_length=60,
        help_text=_("What integrations send as “type”, e.g. product_view."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    owner_department = forms.ModelChoiceField(
        label=_("Owner department"),
        queryset=None,
        required=False,
        empty_label=_("Company-wide (any editor may change it)"),
    )
    property_schema = forms.JSONField(
        label=_("Property schema"),
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            'Property name → type, e.g. {"sku": "string", "price": "number"}. Types: string, '
            "number, integer, boolean, datetime, object, array. Properties not listed are "
            "accepted and stored as sent."
        ),
    )

    def __init__(self, *args, user, instance: EventType | None = None, **kwargs) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "description": instance.description,
                "owner_department": instance.owner_department_id,
                "property_schema": instance.property_schema,
            }
        super().__init__(*args, **kwargs)
        self.fields["owner_department"].queryset = departments_where(user, Role.EDITOR)
        if instance is not None:
            self.fields["name"].disabled = True

    def clean_property_schema(self):
        schema = self.cleaned_data.get("property_schema") or {}
        validate_schema(schema)
        return schema


def _page(request, *, form, editing: EventType | None = None, status: int = 200):
    user = request.user
    types = event_types_with_volume()
    for event_type in types:
        event_type.user_can_edit = can_edit_event_type(user, event_type)
    context = {
        "active_circle": "experience",
        "event_types": types,
        "form": form if can_edit_event_type(user, editing) else None,
        "editing": editing,
    }
    return render(request, "experience/event_types.html", context, status=status)


def _require_membership(user) -> None:
    if not (user.is_superuser or user.roles_by_department):
        raise PermissionDenied


def _save(request, *, instance: EventType | None):
    form = EventTypeForm(request.POST, user=request.user, instance=instance)
    if form.is_valid():
        data = form.cleaned_data
        try:
            event_type_save(
                event_type=instance,
                name=instance.name if instance else data["name"],
                description=data["description"],
                owner_department=data["owner_department"],
                property_schema=data["property_schema"],
                by=request.user,
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, messages in errors.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return redirect("experience:event_types")
    return _page(request, form=form, editing=instance, status=400)


@require_http_methods(["GET", "POST"])
def event_type_list(request: HttpRequest) -> HttpResponse:
    """The registry; POST adds an event type."""
    _require_membership(request.user)
    if request.method == "POST":
        if not can_edit_event_type(request.user, None):
            raise PermissionDenied
        return _save(request, instance=None)
    return _page(request, form=EventTypeForm(user=request.user))


@require_http_methods(["GET", "POST"])
def event_type_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an event type's description, owner and property schema."""
    _require_membership(request.user)
    event_type = get_object_or_404(EventType, pk=pk)  # the registry is company-wide
    if not can_edit_event_type(request.user, event_type):
        raise PermissionDenied
    if request.method == "POST":
        return _save(request, instance=event_type)
    return _page(
        request, form=EventTypeForm(user=request.user, instance=event_type), editing=event_type
    )


urlpatterns = [
    path("event-types/", event_type_list, name="event_types"),
    path("event-types/<int:pk>/edit/", event_type_edit, name="event_type_edit"),
]
