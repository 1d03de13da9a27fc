"""Circle ① pages: segments — list, visual rule builder with a live count, detail, sharing.

The builder posts the rule tree as flat form fields and the server rebuilds it, so the page
needs no JavaScript beyond htmx. Encoding: the root group has the prefix ``r``; a node with
prefix ``p`` has ``p-node`` ("group" or "condition") and ``p-not`` (negated); a group has
``p-op`` ("and"/"or") and children ``p-0``, ``p-1``…; a condition has ``p-type`` and one
field per parameter, ``p-<param>`` (lists are comma-separated). Groups nest one level
below the root in the builder (the JSON accepts deeper trees). Buttons post
``action=add:<group>``, ``action=group:<group>``, ``action=remove:<node>`` or
``action=json`` (replace the tree with the JSON of the power-user text area).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.org.models import Department
from config.org.selectors import get_visible_or_404
from config.org.services import audit_record
from customers.exports import export_response
from customers.models import AttributeDefinition, Customer, Segment, SegmentMembership
from customers.segments import (
    SegmentInUse,
    SegmentRuleError,
    condition_choices,
    condition_types,
    describe_rules,
    editable_department_choices,
    path_label,
    referenced_segment_ids,
    segment_can_edit,
    segment_can_share,
    segment_count,
    segment_create,
    segment_delete,
    segment_refresh,
    segment_share,
    segment_unshare,
    segment_update,
    validate_rules,
)
from customers.selectors import can_view_pii

PAGE_SIZE = 50
ROOT = "r"
MAX_BUILDER_DEPTH = 2  # the root group and one level of nested groups


# --------------------------------------------------------------------------------------------
# Rule tree ⇄ builder rows
# --------------------------------------------------------------------------------------------


def _draft_from_rules(node: dict) -> dict:
    """A normalised rule tree as builder rows: groups and conditions, NOT as a flag."""
    negated = False
    if node.get("op") == "not" and node["child"].get("op") != "not":
        negated, node = True, node["child"]
    if "type" in node:
        params = {k: v for k, v in node.items() if k != "type"}
        return {"kind": "condition", "type": node["type"], "params": params, "negated": negated}
    if node.get("op") == "not":  # a double negation stays a group of one
        return {
            "kind": "group",
            "op": "and",
            "negated": True,
            "children": [_draft_from_rules(node["child"])],
        }
    return {
        "kind": "group",
        "op": node.get("op", "and"),
        "negated": negated,
        "children": [_draft_from_rules(child) for child in node.get("children", [])],
    }


def _rules_from_draft(draft: dict) -> dict:
    if draft["kind"] == "condition":
        node = {"type": draft["type"], **draft["params"]}
    else:
        node = {"op": draft["op"], "children": [_rules_from_draft(c) for c in draft["children"]]}
    return {"op": "not", "child": node} if draft["negated"] else node


def _coerce(raw: str, spec: dict) -> Any:
    """A form string as the JSON type the schema asks for; left as is when it does not parse,
    so that validation names the field."""
    kind = spec.get("type")
    raw = raw.strip()
    if kind == "integer" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return float(raw) if "." in raw else int(raw)
    if kind == "boolean":
        return raw.lower() in {"1", "true", "on", "yes"}
    if kind == "array":
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _coerce_attribute_value(raw: str, op: str, definition: AttributeDefinition | None) -> Any:
    items = [item.strip() for item in raw.split(",")] if op == "in" else [raw.strip()]
    kind = definition.type if definition else AttributeDefinition.Type.TEXT
    coerced = []
    for item in items:
        if kind == AttributeDefinition.Type.NUMBER:
            item = _coerce(item, {"type": "number"})
        elif kind == AttributeDefinition.Type.BOOLEAN:
            item = item.lower() in {"1", "true", "on", "yes"}
        coerced.append(item)
    return [c for c in coerced if c != ""] if op == "in" else coerced[0]


def _draft_from_form(data, prefix: str, attributes: dict, depth: int = 1) -> dict:
    negated = bool(data.get(f"{prefix}-not"))
    if prefix != ROOT and data.get(f"{prefix}-node") == "condition":
        type_name = data.get(f"{prefix}-type", "")
        condition = condition_types().get(type_name)
        params: dict[str, Any] = {}
        properties = condition.schema.get("properties", {}) if condition else {}
        for name, spec in properties.items():
            raw = data.get(f"{prefix}-{name}", "")
            if raw == "" and spec.get("type") != "boolean":
                continue
            if type_name == "attribute" and name == "value":
                key = data.get(f"{prefix}-key", "")
                op = data.get(f"{prefix}-op", "eq")
                params[name] = _coerce_attribute_value(raw, op, attributes.get(key))
            else:
                params[name] = _coerce(raw, spec)
        return {"kind": "condition", "type": type_name, "params": params, "negated": negated}
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-node$")
    indexes = sorted(int(m.group(1)) for key in data if (m := pattern.match(key)))
    return {
        "kind": "group",
        "op": "or" if data.get(f"{prefix}-op") == "or" else "and",
        "negated": negated,
        "children": [
            _draft_from_form(data, f"{prefix}-{i}", attributes, depth + 1) for i in indexes
        ],
    }


def _node_at(draft: dict, prefix: str) -> tuple[dict | None, int | None, dict | None]:
    """The node named by a prefix such as ``r-1-0``, with its parent and index."""
    parts = prefix.split("-")
    if parts[0] != ROOT or not all(p.isdigit() for p in parts[1:]):
        return None, None, None
    parent, index, node = None, None, draft
    for part in parts[1:]:
        children = node.get("children") if node.get("kind") == "group" else None
        if children is None or int(part) >= len(children):
            return None, None, None
        parent, index, node = node, int(part), children[int(part)]
    return node, index, parent


def _new_condition(type_name: str, user) -> dict:
    """A condition of the type with sensible first values, so it counts at once."""
    condition = condition_types().get(type_name)
    if condition is None:
        return {"kind": "condition", "type": type_name, "params": {}, "negated": False}
    dynamic = condition_choices(condition, user)
    params: dict[str, Any] = {}
    for name in condition.schema.get("required", []):
        spec = condition.schema["properties"][name]
        options = [value for value, _label in dynamic.get(name, [])] or spec.get("enum")
        if options:
            params[name] = options[0]
        elif spec.get("type") in {"integer", "number"}:
            params[name] = spec.get("minimum", 1)
    for name, spec in condition.schema.get("properties", {}).items():
        if "default" in spec and name not in params:
            params[name] = spec["default"]
    defaults = {
        "metric": {"field": "order_count", "op": "gte", "value": 1},
        "attribute": {"op": "eq"},
        "profile": {"field": "lifecycle_stage", "value": ["repeat"]},
    }
    params.update(defaults.get(type_name, {}))
    return {"kind": "condition", "type": type_name, "params": params, "negated": False}


def _apply_action(draft: dict, action: str, data, user) -> str | None:
    """Change the draft as a builder button asks; returns an error message or ``None``."""
    verb, _sep, target = action.partition(":")
    if verb == "json":
        try:
            tree = validate_rules(data.get("rules_json", "") or "{}", user=user)
        except SegmentRuleError as exc:
            return gettext("JSON not applied — %(error)s") % {"error": exc}
        draft.clear()
        draft.update(_draft_from_rules(tree))
        return None
    node, index, parent = _node_at(draft, target)
    if node is None:
        return None
    if verb == "add" and node["kind"] == "group":
        node["children"].append(_new_condition(data.get(f"{target}-new", "consent"), user))
    elif verb == "group" and node["kind"] == "group" and target.count("-") < MAX_BUILDER_DEPTH - 1:
        node["children"].append({"kind": "group", "op": "or", "negated": False, "children": []})
    elif verb == "remove" and parent is not None:
        del parent["children"][index]
    return None


def _rows(draft: dict, prefix: str, user, depth: int = 1) -> dict:
    """Builder rows with prefixes, labels and the inputs each condition's schema asks for."""
    row = {**draft, "prefix": prefix, "depth": depth, "nested": depth > 1}
    if draft["kind"] == "group":
        row["can_nest"] = depth < MAX_BUILDER_DEPTH
        row["children"] = [
            _rows(child, f"{prefix}-{i}", user, depth + 1)
            for i, child in enumerate(draft["children"])
        ]
        return row
    condition = condition_types().get(draft["type"])
    row["fields"] = []
    if condition is None:
        return row
    dynamic = condition_choices(condition, user)
    required = set(condition.schema.get("required", []))
    for name, spec in condition.schema.get("properties", {}).items():
        value = draft["params"].get(name)
        choices = dynamic.get(name)
        if choices is None and spec.get("enum") and spec.get("type") != "array":
            choices = [(option, option.replace("_", " ")) for option in spec["enum"]]
        if spec.get("type") == "boolean":
            choices = [(True, gettext("yes")), (False, gettext("no"))]
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value)
        elif value is None:
            shown = ""
        else:
            shown = str(value)
        row["fields"].append(
            {
                "name": f"{prefix}-{name}",
                "label": spec.get("title", name),
                "value": shown,
                "choices": [(str(v), label) for v, label in choices] if choices else None,
                "required": name in required,
                "number": spec.get("type") in {"integer", "number"},
                "list": spec.get("type") == "array"
                or (name == "value" and draft["type"] == "attribute"),
            }
        )
    return row


def _builder_context(draft: dict, user, segment: Segment | None) -> dict:
    rules = _rules_from_draft(draft)
    return {
        "root": _rows(draft, ROOT, user),
        "condition_types": [(name, c.label) for name, c in condition_types().items()],
        "rules_json": json.dumps(rules, ensure_ascii=False, indent=2),
        "segment": segment,
        **_count_context(rules, user, segment),
    }


def _count_context(rules: dict, user, segment: Segment | None) -> dict:
    try:
        tree = validate_rules(rules, user=user, segment=segment)
    except SegmentRuleError as exc:
        return {
            "count": None,
            "count_error": gettext("%(where)s: %(message)s")
            % {"where": path_label(exc.path).capitalize(), "message": exc.message},
        }
    return {"count": segment_count(tree), "count_error": None}


def _posted_draft(request: HttpRequest) -> dict:
    attributes = {a.key: a for a in AttributeDefinition.objects.all()}
    return _draft_from_form(request.POST, ROOT, attributes)


def _posted_segment(request: HttpRequest) -> Segment | None:
    """The segment being edited, for the cycle check; only one the user may see."""
    pk = request.POST.get("segment", "")
    if not pk.isdigit():
        return None
    return Segment.objects.visible_to(request.user).filter(pk=int(pk)).first()


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=Segment.Kind.choices,
        initial=Segment.Kind.DYNAMIC,
        help_text=_("Dynamic segments follow the data; static ones keep their first snapshot."),
    )
    owner_department = forms.ModelChoiceField(
        label=_("Owner department"), queryset=Department.objects.none()
    )

    def __init__(self, *args, user, segment: Segment | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if segment is None:
            self.fields["owner_department"].queryset = editable_department_choices(user)
        else:
            del self.fields["owner_department"]


def segment_list(request: HttpRequest) -> HttpResponse:
    """Segments the user's departments own or that were shared with them."""
    user = request.user
    segments = (
        Segment.objects.visible_to(user)
        .select_related("owner_department")
        .annotate(share_count=Count("shares"))
        .order_by("name", "pk")
    )
    return render(
        request,
        "customers/segments/list.html",
        {
            "active_circle": "customer",
            "segments": segments,
            "own_department_ids": set(user.department_ids),
            "can_create": user.is_superuser or editable_department_choices(user).exists(),
        },
    )


def _form_page(request: HttpRequest, *, segment: Segment | None) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = SegmentForm(request.POST, user=user, segment=segment)
        draft = _posted_draft(request)
        action = request.POST.get("action", "")
        builder_error = _apply_action(draft, action, request.POST, user) if action else None
        if not action and form.is_valid():
            data = form.cleaned_data
            try:
                if segment is None:
                    saved = segment_create(
                        name=data["name"],
                        description=data["description"],
                        kind=data["kind"],
                        rules=_rules_from_draft(draft),
                        owner_department=data["owner_department"],
                        by=user,
                    )
                else:
                    saved = segment_update(
                        segment=segment,
                        by=user,
                        name=data["name"],
                        description=data["description"],
                        kind=data["kind"],
                        rules=_rules_from_draft(draft),
                    )
            except SegmentRuleError as exc:
                builder_error = gettext("%(where)s: %(message)s") % {
                    "where": path_label(exc.path).capitalize(),
                    "message": exc.message,
                }
            else:
                messages.success(request, gettext("Segment saved."))
                return redirect("customers:segment_detail", pk=saved.pk)
    else:
        initial = (
            {"name": segment.name, "description": segment.description, "kind": segment.kind}
            if segment
            else {}
        )
        form = SegmentForm(initial=initial, user=user, segment=segment)
        try:
            rules = validate_rules(segment.rules if segment else {}, user=user, segment=segment)
        except SegmentRuleError:
            rules = {}
        draft = _draft_from_rules(rules)
        builder_error = None
    return render(
        request,
        "customers/segments/form.html",
        {
            "active_circle": "customer",
            "form": form,
            "builder_error": builder_error,
            **_builder_context(draft, user, segment),
        },
    )


def segment_create_view(request: HttpRequest) -> HttpResponse:
    """The rule builder for a new segment."""
    if not editable_department_choices(request.user).exists():
        raise PermissionDenied
    return _form_page(request, segment=None)


def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The rule builder for a segment the user may edit (viewers answer 403)."""
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    if not segment_can_edit(segment=segment, user=request.user):
        raise PermissionDenied
    return _form_page(request, segment=segment)


@require_POST
def segment_builder(request: HttpRequest) -> HttpResponse:
    """htmx: apply one builder action and answer the rule rows (and the count, out of band)."""
    draft = _posted_draft(request)
    segment = _posted_segment(request)
    error = _apply_action(draft, request.POST.get("action", ""), request.POST, request.user)
    context = {**_builder_context(draft, request.user, segment), "builder_error": error}
    builder = render_to_string("customers/segments/form.html#builder", context, request)
    count = render_to_string("customers/segments/form.html#count", {**context, "oob": True})
    return HttpResponse(builder + count)


@require_POST
def segment_count_preview(request: HttpRequest) -> HttpResponse:
    """htmx: the live count of the rules being edited, or the error naming the condition."""
    draft = _posted_draft(request)
    context = _count_context(_rules_from_draft(draft), request.user, _posted_segment(request))
    return render(request, "customers/segments/form.html#count", context)


def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Rules in plain language, membership with its time, members, export and sharing."""
    user = request.user
    segment = get_visible_or_404(
        Segment.objects.select_related("owner_department", "created_by"), user, pk=pk
    )
    members = (
        SegmentMembership.objects.filter(segment=segment)
        .select_related("customer")
        .order_by("customer_id")
    )
    page_obj = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    show_names = can_view_pii(user)
    if show_names and page_obj.object_list:
        audit_record(
            actor=user,
            action="segment.members_view_pii",
            target=segment,
            department=segment.owner_department,
            detail={"via": "web", "customers": [row.customer_id for row in page_obj]},
            ip_address=request.META.get("REMOTE_ADDR"),
        )
    context = {"segment": segment, "page_obj": page_obj, "show_names": show_names}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "customers/segments/detail.html#members", context)
    shares = list(segment.shares.select_related("department").order_by("department__name"))
    for share in shares:
        share.unshare_url = reverse(
            "customers:segment_unshare", args=[segment.pk, share.department_id]
        )
    can_share = segment_can_share(segment=segment, user=user)
    shared_ids = {share.department_id for share in shares} | {segment.owner_department_id}
    referenced = dict(
        Segment.objects.visible_to(user)
        .filter(pk__in=referenced_segment_ids(segment.rules))
        .values_list("pk", "name")
    )
    return render(
        request,
        "customers/segments/detail.html",
        {
            **context,
            "active_circle": "customer",
            "rules_text": describe_rules(segment.rules, segment_names=referenced),
            "rules_json": json.dumps(segment.rules, ensure_ascii=False, indent=2),
            "can_edit": segment_can_edit(segment=segment, user=user),
            "can_share": can_share,
            "shares": shares,
            "share_targets": Department.objects.exclude(pk__in=shared_ids) if can_share else [],
        },
    )


def segment_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The segment's computed members as CSV or XLSX (masked without ``view_pii``, audited)."""
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    members = Customer.objects.filter(
        pk__in=SegmentMembership.objects.filter(segment=segment).values("customer_id")
    ).order_by("pk")
    return export_response(
        members,
        fmt=request.GET.get("format", "csv"),
        user=request.user,
        description=f"segment #{segment.pk} {segment.name}",
        target=segment,
    )


@require_POST
def segment_refresh_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Recompute the membership now (editors); answers with the detail page."""
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    if not segment_can_edit(segment=segment, user=request.user):
        raise PermissionDenied
    count = segment_refresh(segment=segment)
    messages.success(
        request, gettext("Membership computed: %(count)s customers.") % {"count": count}
    )
    return redirect("customers:segment_detail", pk=segment.pk)


@require_POST
def segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    try:
        segment_delete(segment=segment, by=request.user)
    except SegmentInUse:
        messages.error(request, gettext("Campaigns target this segment; change them first."))
        return redirect("customers:segment_detail", pk=pk)
    messages.success(request, gettext("Segment deleted."))
    return redirect("customers:segment_list")


@require_POST
def segment_share_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Share with another department, to view or to edit (managers of the owner)."""
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    raw = request.POST.get("department", "")
    department = get_object_or_404(Department, pk=int(raw) if raw.isdigit() else 0)
    try:
        segment_share(
            segment=segment,
            department=department,
            can_edit=request.POST.get("can_edit") == "on",
            by=request.user,
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("customers:segment_detail", pk=pk)


@require_POST
def segment_unshare_view(request: HttpRequest, pk: int, department_id: int) -> HttpResponse:
    segment = get_visible_or_404(Segment.objects, request.user, pk=pk)
    department = get_object_or_404(Department, pk=department_id)
    segment_unshare(segment=segment, department=department, by=request.user)
    return redirect("customers:segment_detail", pk=pk)


urlpatterns = [
    path("segments/", segment_list, name="segment_list"),
    path("segments/new/", segment_create_view, name="segment_create"),
    path("segments/builder/", segment_builder, name="segment_builder"),
    path("segments/count/", segment_count_preview, name="segment_count_preview"),
    path("segments/<int:pk>/", segment_detail, name="segment_detail"),
    path("segments/<int:pk>/edit/", segment_edit, name="segment_edit"),
    path("segments/<int:pk>/refresh/", segment_refresh_view, name="segment_refresh"),
    path("segments/<int:pk>/delete/", segment_delete_view, name="segment_delete"),
    path("segments/<int:pk>/share/", segment_share_view, name="segment_share"),
    path(
        "segments/<int:pk>/unshare/<int:department_id>/",
        segment_unshare_view,
        name="segment_unshare",
    ),
    path("segments/<int:pk>/export/", segment_export, name="segment_export"),
]
