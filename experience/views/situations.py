"""Circle ② pages: detected life situations (a to-do list per department) and their rules."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.org.models import Role
from config.org.selectors import departments_where, get_visible_or_404
from customers.models import LifeEvent
from customers.selectors import can_view_pii
from experience.models import EventType, SituationRule
from experience.situations import (
    RULE_FIELDS,
    SITUATION_EVENT,
    can_handle_life_event,
    life_event_handle,
    life_events_visible_to,
    rule_detection_counts,
    situation_rule_create,
    situation_rule_preview,
    situation_rule_update,
)

PAGE_SIZE = 50
RECENT_DAYS = 30


class SituationFilterForm(forms.Form):
    """Filters of the detections list, all from the query string."""

    STATES = [
        ("unhandled", _("Not handled yet")),
        ("handled", _("Handled")),
        ("all", _("All")),
    ]
    PERIODS = [
        ("7", _("Last 7 days")),
        ("30", _("Last 30 days")),
        ("90", _("Last 90 days")),
        ("365", _("Last 12 months")),
        ("all", _("Any time")),
    ]

    kind = forms.ChoiceField(
        required=False, label=_("Situation"), choices=[("", _("All situations"))]
    )
    state = forms.ChoiceField(required=False, label=_("Status"), choices=STATES)
    period = forms.ChoiceField(required=False, label=_("Detected"), choices=PERIODS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("All situations")), *LifeEvent.Kind.choices]

    def clean_state(self) -> str:
        return self.cleaned_data["state"] or "unhandled"

    def clean_period(self) -> str:
        return self.cleaned_data["period"] or str(RECENT_DAYS)

    def apply(self, life_events, *, with_kind: bool = True):
        data = self.cleaned_data
        if data["state"] == "unhandled":
            life_events = life_events.filter(handled_at__isnull=True)
        elif data["state"] == "handled":
            life_events = life_events.filter(handled_at__isnull=False)
        if data["period"] != "all":
            since = timezone.now() - dt.timedelta(days=int(data["period"]))
            life_events = life_events.filter(detected_at__gte=since)
        if with_kind and data["kind"]:
            life_events = life_events.filter(kind=data["kind"])
        return life_events

    def query(self) -> str:
        data = self.cleaned_data
        return urlencode([(key, data[key]) for key in ("kind", "state", "period") if data[key]])


def _row_context(request, life_event: LifeEvent) -> dict:
    life_event.can_handle = can_handle_life_event(request.user, life_event)
    return {"life_event": life_event, "show_names": can_view_pii(request.user)}


def situation_list(request):
    """Newly detected situations the user's departments can act on; see
    :func:`experience.situations.life_events_visible_to` for who sees what."""
    form = SituationFilterForm(request.GET)
    status = 200
    visible = life_events_visible_to(request.user)
    if form.is_valid():
        rows = form.apply(visible)
        kind_counts = dict(
            form.apply(visible, with_kind=False)
            .values_list("kind")
            .annotate(n=Count("pk"))
            .order_by()
        )
        filters = form.query()
    else:
        status, rows, kind_counts, filters = 400, visible.none(), {}, ""
    rows = rows.select_related("customer", "department").order_by("-detected_at", "-pk")
    page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    show_names = can_view_pii(request.user)
    for life_event in page_obj:
        life_event.can_handle = can_handle_life_event(request.user, life_event)
    counts = [
        (value, label, kind_counts.get(value, 0))
        for value, label in LifeEvent.Kind.choices
        if kind_counts.get(value)
    ]
    template = "experience/situations/list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(
        request,
        template,
        {
            "active_circle": "experience",
            "form": form,
            "page_obj": page_obj,
            "filters": filters,
            "kind_counts": counts,
            "show_names": show_names,
            "next_url": request.get_full_path(),
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
def situation_handle(request, pk: int):
    """Mark one detection handled; htmx gets the row back, a plain form goes back to the list."""
    life_event = life_events_visible_to(request.user).select_related("customer", "department")
    life_event = get_object_or_404(life_event, pk=pk)
    life_event_handle(life_event=life_event, by=request.user)
    if request.htmx:
        return render(
            request,
            "experience/situations/list.html#row",
            {**_row_context(request, life_event), "next_url": reverse("experience:situations")},
        )
    messages.success(request, gettext("Marked as handled."))
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("experience:situations")
    return redirect(next_url)


# --- rules ------------------------------------------------------------------------------


class SituationRuleForm(forms.ModelForm):
    """The fields of a rule; validation of their combination happens in the service."""

    class Meta:
        model = SituationRule
        fields = list(RULE_FIELDS)
        widgets = {"confidence": forms.NumberInput(attrs={"step": "0.05", "min": 0, "max": 1})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_type"].queryset = EventType.objects.exclude(name=SITUATION_EVENT)
        if self.instance.pk:
            del self.fields["owner_department"]
        else:
            self.fields["owner_department"].queryset = departments_where(user, Role.EDITOR)
        self.fields["property"].help_text = _(
            "A key of the event's properties, e.g. path or signal. Empty: every event counts."
        )

    def _post_clean(self):
        """Model validation runs in the service, which reports every field at once."""


def situation_rule_list(request):
    """Rules the user's departments own or were shared, with their detections of 30 days."""
    rules = list(
        SituationRule.objects.visible_to(request.user)
        .select_related("event_type", "owner_department")
        .order_by("kind", "name")
    )
    editable = (
        set(SituationRule.objects.editable_by(request.user).values_list("pk", flat=True))
        if rules
        else set()
    )
    counts = rule_detection_counts(since=timezone.now() - dt.timedelta(days=RECENT_DAYS))
    for rule in rules:
        rule.recent_detections = counts.get(rule.pk, 0)
        rule.can_edit = rule.pk in editable
    return render(
        request,
        "experience/situations/rules.html",
        {
            "active_circle": "experience",
            "rules": rules,
            "can_create": departments_where(request.user, Role.EDITOR).exists(),
        },
    )


def _save_rule(request, form: SituationRuleForm, rule: SituationRule | None):
    data = {name: value for name, value in form.cleaned_data.items() if name in RULE_FIELDS}
    try:
        if rule is None:
            return situation_rule_create(by=request.user, **data)
        return situation_rule_update(rule=rule, by=request.user, **data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    return None


def situation_rule_create_view(request):
    """A new rule, owned by a department the user edits for."""
    if not departments_where(request.user, Role.EDITOR).exists():
        raise PermissionDenied
    form = SituationRuleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid() and _save_rule(request, form, None) is not None:
        messages.success(request, gettext("Rule created."))
        return redirect("experience:situation_rules")
    return render(
        request,
        "experience/situations/rule_form.html",
        {"active_circle": "experience", "form": form, "rule": None},
        status=400 if form.errors else 200,
    )


def _editable_rule_or_404(request, pk: int) -> SituationRule:
    rule = get_visible_or_404(
        SituationRule.objects.select_related("event_type"), request.user, pk=pk
    )
    if not SituationRule.objects.editable_by(request.user).filter(pk=rule.pk).exists():
        raise PermissionDenied
    return rule


def situation_rule_edit(request, pk: int):
    """Change a rule; shows how many customers it would detect right now."""
    rule = _editable_rule_or_404(request, pk)
    form = SituationRuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST" and form.is_valid() and _save_rule(request, form, rule) is not None:
        messages.success(request, gettext("Rule saved."))
        return redirect("experience:situation_rules")
    rule.refresh_from_db()
    return render(
        request,
        "experience/situations/rule_form.html",
        {
            "active_circle": "experience",
            "form": form,
            "rule": rule,
            "preview": situation_rule_preview(rule),
        },
        status=400 if form.errors else 200,
    )


@require_POST
def situation_rule_toggle(request, pk: int):
    """Switch a rule on or off."""
    rule = _editable_rule_or_404(request, pk)
    situation_rule_update(rule=rule, by=request.user, is_active=not rule.is_active)
    return redirect("experience:situation_rules")


urlpatterns = [
    path("situations/", situation_list, name="situations"),
    path("situations/<int:pk>/handle/", situation_handle, name="situation_handle"),
    path("situations/rules/", situation_rule_list, name="situation_rules"),
    path("situations/rules/new/", situation_rule_create_view, name="situation_rule_create"),
    path("situations/rules/<int:pk>/edit/", situation_rule_edit, name="situation_rule_edit"),
    path("situations/rules/<int:pk>/toggle/", situation_rule_toggle, name="situation_rule_toggle"),
]
