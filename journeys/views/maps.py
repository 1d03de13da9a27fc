"""Circle ③ journey maps: the stages × lanes grid that marketing and sales edit together.

Every cell edits in place (htmx) through one generic ``cell`` view that carries the version
the editor rendered: the services decide whether the save conflicts, and a conflict answers
409 with both texts and a merge box instead of overwriting. The open page polls ``live``
every 1.5 s (paused while the tab is hidden): the answer holds only out-of-band fragments —
who is here and in which cell, the cells others changed, the new ``since`` revision id.
Polling rather than server-sent events keeps to plain WSGI requests (no long-lived
connections per open tab, no extra server) and still shows changes well within 2 s.

Reads are scoped through ``journeys.maps.selectors`` (another department's record is a 404);
every write asks ``can_edit`` on the server first (403), whatever the page showed.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.org.models import Membership, Role
from config.org.selectors import departments_where
from config.org.services import audit_record
from config.spreadsheets import csv_text
from customers.models import Segment
from experience.models import ExperienceValue, Touchpoint
from journeys.charts import emotion_curve_figure
from journeys.forms import add_service_errors
from journeys.maps import cells as map_cells
from journeys.maps import discussion, presence
from journeys.maps import selectors as map_selectors
from journeys.maps import services as map_services
from journeys.models import Journey, Persona, Revision, Stage

PERIODS = (30, 90, 365)
DEFAULT_PERIOD = 90
HISTORY_PAGE_SIZE = 50
HEADER_FIELDS = ("name", "kind")
RELATION_KINDS = ("user", "segment", "persona", "touchpoints", "values")
TEXT_KINDS = ("line", "text")
LAYOUT_ACTIONS = (
    Revision.Action.CREATE,
    Revision.Action.MOVE,
    Revision.Action.DELETE,
    Revision.Action.DUPLICATE,
)


# --- cells: display values and template context ------------------------------------------


def _kind_of(record) -> str:
    return map_cells.record_kind(record)


def _value_display(kind: str, record, field: str, spec) -> str:
    """The cell's human text, from relations already loaded where the page prefetched them."""
    if spec.kind in ("touchpoints", "values"):
        related = getattr(record, field).all()
        if spec.kind == "values":
            return ", ".join(str(value.get_code_display()) for value in related)
        return ", ".join(touchpoint.name for touchpoint in related)
    if spec.kind == "user":
        person = getattr(record, field)
        return (person.get_full_name() or person.get_username()) if person else ""
    if spec.kind in ("segment", "persona"):
        target = getattr(record, field)
        return target.name if target else ""
    if spec.kind == "choice":
        return str(getattr(record, f"get_{field}_display")())
    if spec.kind in TEXT_KINDS or spec.kind == "color":
        return getattr(record, field) or ""
    return map_cells.cell_display(kind, field, map_cells.cell_value(record, field))


def cell_context(record, field: str, *, can_edit: bool, comment_counts: dict[str, int]) -> dict:
    """Everything ``journeys/maps/_cell.html`` needs to show one cell (also for the persona
    page): pass ``comment_counts`` from ``discussion.comment_counts(record)`` once per page."""
    kind = _kind_of(record)
    spec = map_cells.CELLS[kind][field]
    cell = map_cells.cell_id(record, field)
    return {
        "record": record,
        "kind": kind,
        "field": field,
        "spec": spec,
        "cell": cell,
        "value_display": _value_display(kind, record, field, spec),
        "version": record.versions.get(field, 0),
        "can_edit": can_edit,
        "comment_count": comment_counts.get(cell, 0),
    }


def _spec_or_404(kind: str, field: str):
    try:
        return map_cells.CELLS[kind][field]
    except KeyError as exc:
        raise Http404 from exc


def _options(record, field: str, spec, user) -> list[tuple[str, str]]:
    """(value, label) choices of the select-like editors."""
    if spec.kind == "choice":
        return [(str(value), str(label)) for value, label in record._meta.get_field(field).choices]
    if spec.kind == "emotion":
        return [(str(value), f"{value:+d}" if value else "0") for value in range(2, -3, -1)]
    if spec.kind == "segment":
        rows = Segment.objects.visible_to(user).order_by("name").values_list("pk", "name")
    elif spec.kind == "persona":
        rows = Persona.objects.visible_to(user).order_by("name").values_list("pk", "name")
    elif spec.kind == "touchpoints":
        rows = Touchpoint.objects.visible_to(user).order_by("name").values_list("pk", "name")
    elif spec.kind == "values":
        return [
            (str(value.pk), str(value.get_code_display()))
            for value in ExperienceValue.objects.all()
        ]
    elif spec.kind == "user":
        staff = (
            get_user_model()
            .objects.filter(is_active=True)
            .filter(Exists(Membership.objects.filter(user=OuterRef("pk"))))
            .order_by("username")
        )
        return [
            (str(person.pk), person.get_full_name() or person.get_username()) for person in staff
        ]
    else:
        return []
    return [(str(pk), name) for pk, name in rows]


def _form_values(value) -> list[str]:
    """A JSON cell value as the posted ``value`` field(s) that ``cell_input`` reads back."""
    if value is None:
        return [""]
    if isinstance(value, bool):
        return ["1"] if value else [""]
    if isinstance(value, list):
        return [str(item) for item in value] or [""]
    return [str(value)]


def _editor_response(request, record, field: str, spec, *, value, version, error="", status=200):
    kind = _kind_of(record)
    cell = map_cells.cell_id(record, field)
    room = presence.room_for(record)
    selected = set(_form_values(value))
    context = {
        "record": record,
        "kind": kind,
        "field": field,
        "spec": spec,
        "cell": cell,
        "value": "" if value is None else value,
        "selected": selected,
        "version": version,
        "options": _options(record, field, spec, request.user),
        "error": error,
        "others_editing": presence.editors_of(room, cell, exclude_user=request.user),
    }
    return render(request, "journeys/maps/_cell_editor.html", context, status=status)


def _display_response(request, record, field: str, *, status=200):
    editable = map_selectors.can_edit(request.user, record)
    counts = discussion.comment_counts(record)
    context = cell_context(record, field, can_edit=editable, comment_counts=counts)
    return render(request, "journeys/maps/_cell.html", context, status=status)


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages) or gettext("This value is not valid.")


def _conflict_response(request, record, field: str, spec, conflict):
    kind = _kind_of(record)
    theirs_text = map_cells.cell_display(kind, field, conflict.theirs)
    mine_text = map_cells.cell_display(kind, field, conflict.mine)
    mergeable = spec.kind in TEXT_KINDS
    merged = ""
    if mergeable:
        base = conflict.base if isinstance(conflict.base, str) else ""
        merged = map_cells.text_merge(base, conflict.theirs or "", conflict.mine or "")
    author = ""
    if conflict.their_revision is not None and conflict.their_revision.author is not None:
        who = conflict.their_revision.author
        author = who.get_full_name() or who.get_username()
    context = {
        "record": record,
        "kind": kind,
        "field": field,
        "spec": spec,
        "cell": map_cells.cell_id(record, field),
        "theirs": theirs_text,
        "mine": mine_text,
        "mine_values": _form_values(conflict.mine),
        "diff": map_cells.diff_html(theirs_text, mine_text),
        "mergeable": mergeable,
        "merged": merged,
        "current_version": conflict.current_version,
        "author": author,
        "their_revision": conflict.their_revision,
    }
    return render(request, "journeys/maps/_cell_conflict.html", context, status=409)


@require_http_methods(["GET", "POST"])
def cell(request, kind: str, pk: int, field: str):
    """One cell: GET shows it (``?edit=1``: the editor); POST saves ``value`` at ``version``.

    Answers 403 to people who may only look, 422 with the editor for a bad value, and 409
    with both versions when someone else saved the same cell meanwhile (nothing is saved).
    """
    user = request.user
    record = map_selectors.get_record_for(user, kind, pk)
    spec = _spec_or_404(kind, field)
    room = presence.room_for(record)
    if request.method == "GET":
        if request.GET.get("edit"):
            if not map_selectors.can_edit(user, record):
                raise PermissionDenied
            presence.presence_touch(room=room, user=user, cell=map_cells.cell_id(record, field))
            return _editor_response(
                request,
                record,
                field,
                spec,
                value=map_cells.cell_value(record, field),
                version=record.versions.get(field, 0),
            )
        return _display_response(request, record, field)

    if not map_selectors.can_edit(user, record):
        raise PermissionDenied
    raw = map_cells.cell_input(spec, request.POST)
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        return _editor_response(
            request,
            record,
            field,
            spec,
            value=raw,
            version=record.versions.get(field, 0),
            error=gettext("The form lost its version number: reload the page and try again."),
            status=422,
        )
    try:
        value = map_cells.cell_clean(record, field, raw, user=user)
        map_services.cell_save(
            record=record, field=field, value=value, base_version=version, by=user
        )
    except map_services.CellConflict as conflict:
        return _conflict_response(request, record, field, spec, conflict)
    except ValidationError as exc:
        return _editor_response(
            request,
            record,
            field,
            spec,
            value=raw,
            version=version,
            error=_error_text(exc),
            status=422,
        )
    presence.presence_touch(room=room, user=user, cell="")
    record = map_selectors.get_record_for(user, kind, pk)
    if not request.htmx:
        return redirect(discussion.record_path(record))
    return _display_response(request, record, field)


# --- live: presence and others' changes -------------------------------------------------


def _changed_cells(
    record, revisions, *, editing: str, user
) -> tuple[list[dict], list[str], bool, bool]:
    """Cells to re-render from the revisions since the client's ``since``, notices for the
    cell the client is typing in, and whether the layout or an emotion changed."""
    kind = _kind_of(record)
    wanted: dict[tuple[str, int], set[str]] = {}
    notices: list[str] = []
    layout = emotion = False
    for revision in revisions:
        if revision.stage_id is None and revision.stage_name:
            layout = True  # a stage that no longer exists
            continue
        cell_kind, cell_pk = (
            ("stage", revision.stage_id) if revision.stage_id else (kind, record.pk)
        )
        if revision.action in LAYOUT_ACTIONS or revision.field not in map_cells.CELLS[cell_kind]:
            layout = layout or cell_kind == "stage"
            continue
        if revision.field == "emotion":
            emotion = True
        cell = f"{cell_kind}-{cell_pk}-{revision.field}"
        if cell == editing:
            if revision.author_id != user.pk:
                who = revision.author.get_username() if revision.author else gettext("someone")
                notices.append(
                    gettext(
                        "%(who)s just saved the cell you are editing; "
                        "when you save, you will see both versions."
                    )
                    % {"who": who}
                )
            continue
        wanted.setdefault((cell_kind, cell_pk), set()).add(revision.field)
    if not wanted:
        return [], notices, layout, emotion
    records: dict[tuple[str, int], object] = {}
    stage_ids = [pk for cell_kind, pk in wanted if cell_kind == "stage"]
    if stage_ids:
        stages = (
            Stage.objects.filter(pk__in=stage_ids, journey_id=record.pk)
            .select_related("owner")
            .prefetch_related("touchpoints", "experience_values")
        )
        records.update({("stage", stage.pk): stage for stage in stages})
    if (kind, record.pk) in wanted:
        records[(kind, record.pk)] = record
    editable = map_selectors.can_edit(user, record)
    counts = discussion.comment_counts(record)
    changed = []
    for key, fields in wanted.items():
        target = records.get(key)
        if target is None:
            continue
        for field in sorted(fields):
            changed.append(cell_context(target, field, can_edit=editable, comment_counts=counts))
    return changed, notices, layout, emotion


def _safe_cell(value: str) -> str:
    try:
        map_cells.parse_cell_id(value)
    except (ValueError, KeyError):
        return ""
    return value[:80]


@require_POST
def live(request, kind: str, pk: int):
    """The poll of an open journey or persona page: out-of-band swaps only."""
    if kind not in ("journey", "persona"):
        raise Http404
    user = request.user
    record = map_selectors.get_record_for(user, kind, pk)
    try:
        since = max(int(request.POST.get("since", "0")), 0)
    except ValueError:
        since = 0
    editing = _safe_cell(request.POST.get("editing", ""))
    room = presence.room_for(record)
    presence.presence_touch(room=room, user=user, cell=editing)
    revisions = presence.changes_since(record, after_id=since)
    changed, notices, layout, emotion = _changed_cells(
        record, revisions, editing=editing, user=user
    )
    grid = {}
    if layout and kind == "journey" and not editing:
        # Stages were added, moved or deleted: redraw the whole grid for this reader.
        editable = map_selectors.can_edit(user, record)
        stages = map_selectors.journey_stages(record, user=user)
        grid = _grid_context(
            stages, can_edit=editable, comment_counts=discussion.comment_counts(record)
        )
    elif layout:
        notices.append(
            gettext("Stages were added, moved or deleted: reload the page to see the new layout.")
        )
    context = {
        **grid,
        "redraw_grid": bool(grid),
        "room_kind": kind,
        "record": record,
        "since": max([since, *(revision.pk for revision in revisions)]),
        "visitors": presence.presence_list(room),
        "changed": changed,
        "notices": notices,
        "layout_changed": layout and not grid,
        # The curve comes with the overlay, which is too slow for a poll: ask for it apart.
        "refresh_overlay": (emotion or bool(grid)) and kind == "journey",
        "default_days": DEFAULT_PERIOD,
    }
    return render(request, "journeys/maps/_live_poll.html", context)


# --- journey page ----------------------------------------------------------------------


def _period(value) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def _chart_json(stages, overlay) -> str:
    reach = (
        [overlay[stage.pk].reach if stage.pk in overlay else None for stage in stages]
        if overlay
        else None
    )
    figure = emotion_curve_figure(
        [stage.name for stage in stages], [stage.emotion for stage in stages], reach
    )
    # plotly escapes <, > and / in its JSON, so it is safe inside a <script> element.
    return figure.to_json()


def _lane_fields() -> list[str]:
    return [field for field in map_cells.CELLS["stage"] if field not in HEADER_FIELDS]


def _grid_context(stages: list[Stage], *, can_edit: bool, comment_counts: dict) -> dict:
    """The stages × lanes grid (the page's ``grid`` partial), for the page and the poll."""

    def context_for(record, field):
        return cell_context(record, field, can_edit=can_edit, comment_counts=comment_counts)

    return {
        "stages": stages,
        "can_edit": can_edit,
        "stage_headers": [
            {"stage": stage, "cells": [context_for(stage, field) for field in HEADER_FIELDS]}
            for stage in stages
        ],
        "rows": [
            {
                "spec": map_cells.CELLS["stage"][field],
                "cells": [context_for(stage, field) for stage in stages],
            }
            for field in _lane_fields()
        ],
    }


def _htmx_partial(request, template: str, partial: str, context: dict):
    if request.htmx and not request.htmx.history_restore_request:
        template += f"#{partial}"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def journey_detail(request, pk: int):
    """The map: stage headers, one row per lane, the data overlay and the emotion curve.

    The overlay scans the event log, so the page does not wait for it: htmx fetches it
    (``?days=``) right after the grid shows, and its answer brings the emotion curve with
    each stage's reach. Without JavaScript, ``?days=`` renders it inline.
    """
    user = request.user
    journey = map_selectors.get_journey_for(user, pk)
    days = _period(request.GET.get("days"))
    stages = map_selectors.journey_stages(journey, user=user)
    with_overlay = "days" in request.GET
    overlay_context = {
        "journey": journey,
        "stages": stages,
        "days": days,
        "periods": PERIODS,
        "with_overlay": with_overlay,
    }
    if with_overlay:
        overlay = map_selectors.stage_overlay_recent(journey, days=days)
        overlay_context["overlay_rows"] = [overlay.get(stage.pk) for stage in stages]
        overlay_context["chart_json"] = _chart_json(stages, overlay) if stages else ""
        if request.htmx:
            return _htmx_partial(
                request, "journeys/maps/journey_detail.html", "overlay", overlay_context
            )
    editable = map_selectors.can_edit(user, journey)
    counts = discussion.comment_counts(journey)
    room = presence.room_for(journey)
    presence.presence_touch(room=room, user=user)
    return render(
        request,
        "journeys/maps/journey_detail.html",
        {
            **overlay_context,
            **_grid_context(stages, can_edit=editable, comment_counts=counts),
            "active_circle": "platform",
            "section": "index",
            "record": journey,
            "room_kind": "journey",
            "journey_cells": [
                cell_context(journey, field, can_edit=editable, comment_counts=counts)
                for field in map_cells.CELLS["journey"]
            ],
            "since": presence.latest_revision_id(journey),
            "visitors": presence.presence_list(room),
            "stage_kinds": Stage.Kind.choices,
        },
    )


# --- new, duplicate --------------------------------------------------------------------


class JourneyNewForm(forms.Form):
    persona = forms.ModelChoiceField(label=_("Persona"), queryset=Persona.objects.none())
    name = forms.CharField(label=_("Name"), max_length=200)
    owner_department = forms.ModelChoiceField(
        label=_("Department"), queryset=Journey.objects.none()
    )
    template = forms.ModelChoiceField(
        label=_("Start from template"),
        queryset=Journey.objects.none(),
        required=False,
        empty_label=_("The five standard stages"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["persona"].queryset = Persona.objects.visible_to(user).order_by("name")
        self.fields["owner_department"].queryset = departments_where(user, Role.EDITOR).order_by(
            "name"
        )
        self.fields["template"].queryset = (
            Journey.objects.visible_to(user).filter(is_template=True).order_by("name")
        )


class JourneyDuplicateForm(forms.Form):
    name = forms.CharField(label=_("Name of the copy"), max_length=200)
    owner_department = forms.ModelChoiceField(
        label=_("Department"), queryset=Journey.objects.none()
    )
    as_template = forms.BooleanField(label=_("Offer it as a template"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner_department"].queryset = departments_where(user, Role.EDITOR).order_by(
            "name"
        )


@require_http_methods(["GET", "POST"])
def journey_new(request):
    """A new journey for a persona: the five standard stages, or a template's stages."""
    user = request.user
    if not departments_where(user, Role.EDITOR).exists():
        raise PermissionDenied
    initial = {}
    if request.GET.get("template", "").isdigit():
        initial["template"] = request.GET["template"]
    if request.GET.get("persona", "").isdigit():
        initial["persona"] = request.GET["persona"]
    form = JourneyNewForm(request.POST or None, user=user, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                journey = map_services.journey_create(
                    by=user,
                    owner_department=data["owner_department"],
                    persona=data["persona"],
                    name=data["name"],
                    template=data["template"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, gettext("Journey created."))
                return redirect("journeys:journey_detail", pk=journey.pk)
        status = 400
    return render(
        request,
        "journeys/maps/journey_form.html",
        {"active_circle": "platform", "section": "index", "form": form, "journey": None},
        status=status,
    )


@require_http_methods(["GET", "POST"])
def journey_duplicate(request, pk: int):
    """A copy of a journey (all stages and cells) for one of the user's departments."""
    user = request.user
    journey = map_selectors.get_journey_for(user, pk)
    if not departments_where(user, Role.EDITOR).exists():
        raise PermissionDenied
    form = JourneyDuplicateForm(
        request.POST or None,
        user=user,
        initial={"name": gettext("Copy of %(name)s") % {"name": journey.name}},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                copy = map_services.journey_duplicate(
                    journey=journey,
                    by=user,
                    owner_department=data["owner_department"],
                    name=data["name"],
                    as_template=data["as_template"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, gettext("Journey duplicated."))
                return redirect("journeys:journey_detail", pk=copy.pk)
        status = 400
    return render(
        request,
        "journeys/maps/journey_form.html",
        {"active_circle": "platform", "section": "index", "form": form, "journey": journey},
        status=status,
    )


# --- stages ----------------------------------------------------------------------------


def _editable_journey(request, pk: int) -> Journey:
    journey = map_selectors.get_journey_for(request.user, pk)
    if not map_selectors.can_edit(request.user, journey):
        raise PermissionDenied
    return journey


def _editable_stage(request, pk: int) -> Stage:
    stage = map_selectors.get_stage_for(request.user, pk)
    if not map_selectors.can_edit(request.user, stage):
        raise PermissionDenied
    return stage


def _position(value) -> int | None:
    try:
        position = int(value)
    except (TypeError, ValueError):
        return None
    return position if position >= 1 else None


def _service_error(request, exc: ValidationError) -> None:
    messages.error(request, _error_text(exc))


@require_POST
def stage_add(request, pk: int):
    """A new stage, last unless a position is given."""
    journey = _editable_journey(request, pk)
    name = request.POST.get("name", "").strip()
    kind = request.POST.get("kind") or Stage.Kind.CUSTOM
    if not name:
        messages.error(request, gettext("Name the new stage."))
    elif kind not in Stage.Kind.values:
        messages.error(request, gettext("Unknown stage kind: %(kind)s.") % {"kind": kind})
    else:
        try:
            map_services.stage_add(
                journey=journey,
                by=request.user,
                name=name[:100],
                kind=kind,
                position=_position(request.POST.get("position")),
            )
        except ValidationError as exc:
            _service_error(request, exc)
        else:
            messages.success(request, gettext("Stage added."))
    return redirect("journeys:journey_detail", pk=journey.pk)


@require_POST
def stage_move(request, pk: int):
    """The stage to another 1-based position; the others shift."""
    stage = _editable_stage(request, pk)
    position = _position(request.POST.get("position"))
    if position is None:
        messages.error(request, gettext("The position must be a whole number from 1."))
    else:
        try:
            map_services.stage_move(stage=stage, position=position, by=request.user)
        except ValidationError as exc:
            _service_error(request, exc)
        else:
            messages.success(request, gettext("Stage moved."))
    return redirect("journeys:journey_detail", pk=stage.journey_id)


@require_POST
def stage_delete(request, pk: int):
    """Deletes a stage; its history keeps it, so it can be restored."""
    stage = _editable_stage(request, pk)
    journey_id = stage.journey_id
    try:
        map_services.stage_delete(stage=stage, by=request.user)
    except ValidationError as exc:
        _service_error(request, exc)
    else:
        messages.success(request, gettext("Stage deleted. Its history can bring it back."))
    return redirect("journeys:journey_detail", pk=journey_id)


# --- export and print ------------------------------------------------------------------


@require_GET
def journey_export_csv(request, pk: int):
    """The grid as CSV (UTF-8 with BOM for Excel; formula-looking cells neutralised)."""
    journey = map_selectors.get_journey_for(request.user, pk)
    days = _period(request.GET.get("days"))
    table = map_selectors.journey_table(journey, user=request.user, days=days)
    audit_record(
        actor=request.user,
        action="journey.export",
        target=journey,
        department=journey.owner_department,
        detail={"format": "csv", "days": days},
        ip_address=request.META.get("REMOTE_ADDR"),
    )
    response = HttpResponse(csv_text(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="journey-{journey.pk}.csv"'
    return response


@require_GET
def journey_print(request, pk: int):
    """The grid on paper: no navigation, landscape, every cell's full text."""
    journey = map_selectors.get_journey_for(request.user, pk)
    table = map_selectors.journey_table(
        journey, user=request.user, days=_period(request.GET.get("days"))
    )
    return render(
        request,
        "journeys/maps/journey_print.html",
        {"journey": journey, "header": table[0] if table else [], "body": table[1:]},
    )


# --- history and restore ---------------------------------------------------------------


def _history_rows(revisions, *, owner_kind: str) -> list[dict]:
    rows = []
    for revision in revisions:
        kind = "stage" if (revision.stage_id or revision.stage_name) else owner_kind
        spec = map_cells.CELLS[kind].get(revision.field)
        row = {
            "revision": revision,
            "kind": kind,
            "label": spec.label if spec else revision.field,
            "is_cell": spec is not None and revision.action not in LAYOUT_ACTIONS,
            "before": "",
            "after": "",
            "diff": "",
        }
        if row["is_cell"]:
            row["before"] = map_cells.cell_display(kind, revision.field, revision.before)
            row["after"] = map_cells.cell_display(kind, revision.field, revision.after)
            row["diff"] = map_cells.diff_html(row["before"], row["after"])
        rows.append(row)
    return rows


def _history_page(request, record, revisions, *, owner_kind: str):
    page_obj = Paginator(revisions, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "journeys/maps/history.html",
        {
            "active_circle": "platform",
            "section": "index",
            "record": record,
            "owner_kind": owner_kind,
            "record_url": discussion.record_path(record),
            "page_obj": page_obj,
            "rows": _history_rows(page_obj.object_list, owner_kind=owner_kind),
            "can_edit": map_selectors.can_edit(request.user, record),
        },
    )


@require_GET
def journey_history(request, pk: int):
    """Every change to the journey and its stages, newest first, with restore buttons."""
    journey = map_selectors.get_journey_for(request.user, pk)
    return _history_page(
        request, journey, map_selectors.revision_history(journey=journey), owner_kind="journey"
    )


@require_GET
def persona_history(request, pk: int):
    """Every change to the persona, newest first, with restore buttons."""
    persona = map_selectors.get_persona_for(request.user, pk)
    return _history_page(
        request, persona, map_selectors.revision_history(persona=persona), owner_kind="persona"
    )


@require_POST
def revision_restore(request, pk: int):
    """Brings a stage/journey/persona (``scope=record``) or one cell back to a revision."""
    user = request.user
    revision = map_selectors.get_revision_for(user, pk)
    record = revision.journey or revision.persona
    if not map_selectors.can_edit(user, record):
        raise PermissionDenied
    scope = request.POST.get("scope", "record")
    if scope not in ("record", "cell"):
        raise Http404
    try:
        restored = map_services.revision_restore(revision=revision, by=user, scope=scope)
    except ValidationError as exc:
        _service_error(request, exc)
    else:
        if restored:
            messages.success(
                request, gettext("Restored: the change is in the history as a new revision.")
            )
        else:
            messages.info(request, gettext("Nothing to restore: it already reads like that."))
    name = "journeys:journey_history" if revision.journey_id else "journeys:persona_history"
    return redirect(name, pk=record.pk)


urlpatterns = [
    path("journeys/new/", journey_new, name="journey_new"),
    path("journeys/<int:pk>/", journey_detail, name="journey_detail"),
    path("journeys/<int:pk>/duplicate/", journey_duplicate, name="journey_duplicate"),
    path("journeys/<int:pk>/export.csv", journey_export_csv, name="journey_export_csv"),
    path("journeys/<int:pk>/print/", journey_print, name="journey_print"),
    path("journeys/<int:pk>/history/", journey_history, name="journey_history"),
    path("journeys/<int:pk>/stages/", stage_add, name="stage_add"),
    path("stages/<int:pk>/move/", stage_move, name="stage_move"),
    path("stages/<int:pk>/delete/", stage_delete, name="stage_delete"),
    path("personas/<int:pk>/history/", persona_history, name="persona_history"),
    path("revisions/<int:pk>/restore/", revision_restore, name="revision_restore"),
    path("cells/<str:kind>/<int:pk>/<str:field>/", cell, name="cell"),
    path("live/<str:kind>/<int:pk>/", live, name="live"),
]
