"""Circle ③ persona pages: one persona with its narrative as co-editable cells next to the
live figures of its segment, and the new-persona form.

The page is read through ``journeys.maps.selectors`` (another department's persona is a
404); each narrative section is D's cell partial (``journeys/maps/_cell.html``), which
edits in place through the generic cell view, and the live partial keeps presence and
others' changes fresh. Figures come from ``persona_figures`` in a handful of set-based
queries, whatever the size of the segment.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from config.org.models import Role
from config.org.selectors import departments_where
from customers.models import Segment
from journeys.maps.cells import CELLS, cell_display, cell_id, cell_value
from journeys.maps.discussion import comment_counts
from journeys.maps.presence import latest_revision_id, presence_list, room_for
from journeys.maps.selectors import can_edit, get_persona_for, persona_figures, persona_journeys
from journeys.maps.services import persona_create
from journeys.views.discussion import comments_context, sharing_context

# The cells shown in the persona's header rather than among the narrative sections.
HEADER_CELLS = ("name", "initials", "color")
# The cells that link the persona to data, shown beside the figures.
LINK_CELLS = ("segment", "experience_values")


def _percent(part, whole=1) -> float | None:
    """``part / whole`` as a percentage, or None when there is nothing to divide."""
    if part is None or not whole:
        return None
    return 100 * part / whole


def persona_cells(persona) -> dict[str, list[dict]]:
    """Each cell of the persona with what ``_cell.html`` needs, grouped for the page."""
    counts = comment_counts(persona)
    groups: dict[str, list[dict]] = {"header": [], "narrative": [], "links": []}
    for field, spec in CELLS["persona"].items():
        identifier = cell_id(persona, field)
        cell = {
            "field": field,
            "spec": spec,
            "value_display": cell_display("persona", field, cell_value(persona, field)),
            "version": persona.versions.get(field, 0),
            "comment_count": counts.get(identifier, 0),
        }
        if field in HEADER_CELLS:
            groups["header"].append(cell)
        elif field in LINK_CELLS:
            groups["links"].append(cell)
        else:
            groups["narrative"].append(cell)
    return groups


@require_GET
def persona_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The persona: narrative cells, live segment figures, its journeys, sharing, comments."""
    user = request.user
    persona = get_persona_for(user, pk)
    editable = can_edit(user, persona)
    figures = persona_figures(persona)
    percents = {}
    if figures is not None:
        percents = {
            "share": _percent(figures.share),
            "f2_rate": _percent(figures.f2_rate),
            "promoters": _percent(figures.promoters, figures.nps_responses),
            "passives": _percent(figures.passives, figures.nps_responses),
            "detractors": _percent(figures.detractors, figures.nps_responses),
        }
    return render(
        request,
        "journeys/maps/persona_detail.html",
        {
            "active_circle": "platform",
            "persona": persona,
            "can_edit": editable,
            "cells": persona_cells(persona),
            "figures": figures,
            "percents": percents,
            "journeys": list(persona_journeys(persona, user=user)),
            "room_kind": "persona",
            "since": latest_revision_id(persona),
            "visitors": presence_list(room_for(persona)),
            **sharing_context(user, "persona", persona),
            **comments_context(user, "persona", persona),
        },
    )


class PersonaNewForm(forms.Form):
    """A name, the department that will own the persona, and optionally its segment."""

    name = forms.CharField(label=_("Name"), max_length=200)
    owner_department = forms.ModelChoiceField(
        label=_("Owner department"), queryset=None, empty_label=None
    )
    segment = forms.ModelChoiceField(
        label=_("Segment behind the persona"),
        queryset=None,
        required=False,
        help_text=_("Its live figures appear next to the narrative; you can link one later."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner_department"].queryset = departments_where(user, Role.EDITOR)
        self.fields["segment"].queryset = Segment.objects.visible_to(user).order_by("name")


@require_http_methods(["GET", "POST"])
def persona_new(request: HttpRequest) -> HttpResponse:
    """Start a persona for one of the user's departments (editors and managers)."""
    user = request.user
    if not departments_where(user, Role.EDITOR).exists():
        raise PermissionDenied
    form = PersonaNewForm(request.POST or None, user=user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            cells = {"segment": data["segment"].pk} if data["segment"] else {}
            try:
                persona = persona_create(
                    by=user, owner_department=data["owner_department"], name=data["name"], **cells
                )
            except ValidationError as exc:
                for field, errors in getattr(
                    exc, "message_dict", {"__all__": exc.messages}
                ).items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                return redirect("journeys:persona_detail", pk=persona.pk)
        status = 422
    return render(
        request,
        "journeys/maps/persona_new.html",
        {"active_circle": "platform", "form": form},
        status=status,
    )


urlpatterns = [
    path("personas/new/", persona_new, name="persona_new"),
    path("personas/<int:pk>/", persona_detail, name="persona_detail"),
]
