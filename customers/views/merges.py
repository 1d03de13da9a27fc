"""Circle ① pages: merge candidates for human review, merging, and undoing a merge.

Anyone with a department membership sees the page (names masked without ``view_pii``);
editors and managers of any department merge, only managers undo. Every check is made
here on the server, whatever buttons the page shows.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from customers.identity import merge_candidates
from customers.models import Customer, CustomerMerge
from customers.selectors import can_view_pii
from customers.services import (
    can_merge_customers,
    can_undo_merges,
    customer_merge_undo,
    customers_merge,
)

RECENT_MERGES = 20
CANDIDATES = 50


def _require_membership(user) -> None:
    if not (user.is_superuser or user.roles_by_department):
        raise PermissionDenied


def _board(request, *, notice: str = "", error: str = "", status: int = 200) -> HttpResponse:
    """The page, or only its board when htmx asks after a merge or an undo."""
    context = {
        "active_circle": "customer",
        "candidates": merge_candidates(limit=CANDIDATES),
        # ``moved`` may hold the ids of 100k events: never load it for a list.
        "recent_merges": CustomerMerge.objects.select_related(
            "winner", "loser", "merged_by", "undone_by"
        ).defer("moved")[:RECENT_MERGES],
        "show_names": can_view_pii(request.user),
        "can_merge": can_merge_customers(request.user),
        "can_undo": can_undo_merges(request.user),
        "notice": notice,
        "error": error,
    }
    template = "customers/merges.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#board"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def merge_candidate_list(request):
    """Profiles that look like one person, and the most recent merges."""
    _require_membership(request.user)
    return _board(request)


@require_POST
def merge(request):
    """Merge the second profile into the first (the older one is offered as the winner)."""
    if not can_merge_customers(request.user):
        raise PermissionDenied
    try:
        winner_id = int(request.POST.get("winner", ""))
        loser_id = int(request.POST.get("loser", ""))
    except ValueError:
        return _board(request, error=_("Choose two profiles to merge."), status=400)
    winner = get_object_or_404(Customer, pk=winner_id)
    loser = get_object_or_404(Customer, pk=loser_id)
    reason = request.POST.get("reason", "").strip()[:150] or _("reviewed merge candidate")
    try:
        customers_merge(
            winner=winner, loser=loser, by=request.user, reason=f"{reason} (staff review)"
        )
    except ValidationError as exc:
        return _board(request, error=" ".join(exc.messages), status=400)
    if not request.htmx:
        return redirect(reverse("customers:merge_candidates"))
    return _board(
        request,
        notice=_("Customer #%(loser)s was merged into #%(winner)s.")
        % {"loser": loser.pk, "winner": winner.pk},
    )


@require_POST
def merge_undo(request, pk: int):
    """Split a merge again (managers only)."""
    if not can_undo_merges(request.user):
        raise PermissionDenied
    merge_record = get_object_or_404(CustomerMerge, pk=pk)
    try:
        customer_merge_undo(merge=merge_record, by=request.user)
    except ValidationError as exc:
        return _board(request, error=" ".join(exc.messages), status=400)
    if not request.htmx:
        return redirect(reverse("customers:merge_candidates"))
    return _board(
        request,
        notice=_("The merge of #%(loser)s into #%(winner)s was undone.")
        % {"loser": merge_record.loser_id, "winner": merge_record.winner_id},
    )


urlpatterns = [
    path("merges/", merge_candidate_list, name="merge_candidates"),
    path("merges/merge/", merge, name="merge"),
    path("merges/<int:pk>/undo/", merge_undo, name="merge_undo"),
]
