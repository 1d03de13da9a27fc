"""Circle ③ people pages: comment threads on personas, journeys and their cells, the
notification list, and sharing personas and journeys with other departments.

Every record named in a URL is fetched through ``journeys.maps.selectors.get_record_for``
(another department's record answers 404 like a missing one). Discussion is not editing:
whoever can see a record may comment on it; resolving is for its editors and the author
(``comment_resolve`` decides, 403 otherwise); sharing is for managers of the owner
department (``can_share``, 403 otherwise). The comment panel is one partial template,
served to htmx and embedded in the persona and journey pages.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.org.models import Department
from journeys.maps.cells import CELLS
from journeys.maps.discussion import (
    MENTION,
    comment_add,
    comment_path,
    comment_resolve,
    comment_threads,
    notifications_for,
    notifications_mark_read,
    notifications_unread_count,
    record_path,
)
from journeys.maps.selectors import can_edit, can_share, get_record_for
from journeys.maps.services import map_share, map_unshare
from journeys.models import Comment

PAGE_SIZE = 50
SHARE_KINDS = ("persona", "journey")


# --- shared helpers -------------------------------------------------------------------------


def highlight_mentions(body: str) -> SafeString:
    """The comment escaped, with each ``@username`` wrapped in ``<mark class="mention">``."""
    parts: list[str] = []
    position = 0
    for match in MENTION.finditer(body):
        parts.append(escape(body[position : match.start()]))
        parts.append(f'<mark class="mention">{escape(match.group(0))}</mark>')
        position = match.end()
    parts.append(escape(body[position:]))
    return mark_safe("".join(parts))  # every piece is escaped above


def _record_for(user, kind: str, pk: int, field: str = ""):
    """The record the user may see (404 otherwise), checking that ``field`` is one of its
    cells so that a panel is never about a cell that does not exist."""
    record = get_record_for(user, kind, pk)
    if field and field not in CELLS[kind]:
        raise Http404
    return record


def _record_filter(kind: str, record) -> dict:
    """Lookup of the comments that belong to a record (a journey's include its stages')."""
    return {kind: record}


def _threads(kind: str, record, field: str | None) -> list[Comment]:
    if kind == "persona":
        threads = comment_threads(persona=record, field=field)
    elif kind == "stage":
        threads = comment_threads(journey=record.journey, stage=record, field=field)
    else:
        threads = comment_threads(journey=record, field=field)
    for thread in threads:
        spec = CELLS["stage" if thread.stage_id else kind].get(thread.field)
        label = str(spec.label) if spec else ""
        if thread.stage_id and kind == "journey":
            label = " · ".join(part for part in (thread.stage.name, label) if part)
        thread.cell_label = label
        thread.body_html = highlight_mentions(thread.body)
        for reply in thread.replies.all():
            reply.body_html = highlight_mentions(reply.body)
    return threads


def comments_context(user, kind: str, record, field: str = "") -> dict:
    """What ``journeys/maps/_comments.html`` needs: the threads and where to post.

    ``field`` blank: every thread of the record, new comments about the record as a whole;
    a cell name: that cell's threads, new comments about that cell.
    """
    query = f"?{urlencode({'field': field})}" if field else ""
    return {
        "comments_kind": kind,
        "comments_record": record,
        "comments_field": field,
        "comments_cell_label": spec.label if (spec := CELLS[kind].get(field)) else field,
        "comments_dom_id": f"comments-{kind}-{record.pk}" + (f"-{field}" if field else ""),
        "comments_url": reverse("journeys:comments", args=[kind, record.pk]) + query,
        "threads": _threads(kind, record, field or None),
        "can_resolve_all": can_edit(user, record),
    }


def _panel(request, context: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, "journeys/maps/_comments.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- comments -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def comments_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """GET: the thread panel of a record or (``?field=``) one cell. POST: add a comment or,
    with ``parent``, a reply; anyone who can see the record may take part."""
    user = request.user
    field = request.GET.get("field", "")
    record = _record_for(user, kind, pk, field)
    if request.method == "GET":
        return _panel(request, comments_context(user, kind, record, field))
    parent = None
    parent_id = request.POST.get("parent", "")
    if parent_id:
        if not parent_id.isdigit():
            raise Http404
        parent = get_object_or_404(Comment, pk=parent_id, **_record_filter(kind, record))
    targets = {"persona": record} if kind == "persona" else {}
    if kind == "journey":
        targets = {"journey": record}
    elif kind == "stage":
        targets = {"journey": record.journey, "stage": record}
    try:
        comment_add(
            by=user,
            body=request.POST.get("body", ""),
            field=parent.field if parent else field,
            parent=parent,
            **targets,
        )
    except ValidationError as exc:
        if not request.htmx:
            messages.error(request, " · ".join(exc.messages))
            return redirect(record_path(record, field))
        context = comments_context(user, kind, record, field)
        context.update(
            error=" · ".join(exc.messages), body=request.POST.get("body", ""), error_parent=parent
        )
        return _panel(request, context, status=422)
    if not request.htmx:
        messages.success(request, gettext("Comment added."))
        return redirect(record_path(record, field))
    return _panel(request, comments_context(user, kind, record, field))


@require_POST
def comment_resolve_view(request: HttpRequest, kind: str, pk: int, comment_pk: int) -> HttpResponse:
    """Mark a thread resolved (editors of the record or the comment's author; 403 otherwise)."""
    user = request.user
    field = request.GET.get("field", "")
    record = _record_for(user, kind, pk, field)
    comment = get_object_or_404(Comment, pk=comment_pk, **_record_filter(kind, record))
    comment_resolve(comment=comment, by=user)
    if not request.htmx:
        messages.success(request, gettext("Thread resolved."))
        return redirect(record_path(record, field))
    return _panel(request, comments_context(user, kind, record, field))


# --- notifications --------------------------------------------------------------------------


@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first, unread ones highlighted."""
    user = request.user
    page_obj = Paginator(notifications_for(user), PAGE_SIZE).get_page(request.GET.get("page"))
    for notification in page_obj:
        notification.url = comment_path(notification.comment)
        notification.excerpt = highlight_mentions(notification.comment.body)
    return render(
        request,
        "journeys/notifications.html",
        {
            "active_circle": "platform",
            "page_obj": page_obj,
            "unread_count": notifications_unread_count(user),
        },
    )


@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one (``id``) or every notification of the user read; others' ids change nothing."""
    raw = request.POST.get("id", "")
    if raw and not raw.isdigit():
        raise Http404
    count = notifications_mark_read(user=request.user, ids=[int(raw)] if raw else None)
    if not raw:
        messages.success(request, gettext("All notifications marked read."))
    elif not count:
        raise Http404
    return redirect("journeys:notifications")


@require_GET
def notifications_badge(request: HttpRequest) -> HttpResponse:
    """The header's unread count, fetched by htmx after the page so pages stay one query."""
    return render(
        request,
        "journeys/notifications.html#badge",
        {"unread_count": notifications_unread_count(request.user)},
    )


# --- sharing --------------------------------------------------------------------------------


def sharing_context(user, kind: str, record) -> dict:
    """What ``org/_sharing.html`` needs for a persona or a journey."""
    allowed = can_share(user, record)
    shares = list(record.shares.select_related("department").order_by("department__name"))
    for share in shares:
        share.unshare_url = reverse("journeys:unshare", args=[kind, record.pk, share.department_id])
    shared_ids = {share.department_id for share in shares} | {record.owner_department_id}
    return {
        "shares": shares,
        "can_share": allowed,
        "share_url": reverse("journeys:share", args=[kind, record.pk]),
        "share_targets": Department.objects.exclude(pk__in=shared_ids) if allowed else [],
    }


def _shareable(user, kind: str, pk: int):
    if kind not in SHARE_KINDS:
        raise Http404
    record = _record_for(user, kind, pk)
    if not can_share(user, record):
        raise PermissionDenied
    return record


@require_POST
def share_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Share a persona or journey with a department, to view or to co-edit (managers)."""
    record = _shareable(request.user, kind, pk)
    raw = request.POST.get("department", "")
    department = get_object_or_404(Department, pk=raw if raw.isdigit() else 0)
    may_edit = request.POST.get("can_edit") == "on"
    try:
        map_share(record=record, department=department, can_edit=may_edit, by=request.user)
    except ValidationError as exc:
        messages.error(request, " · ".join(exc.messages))
    else:
        text = (
            gettext("Shared with %(department)s: they may edit.")
            if may_edit
            else gettext("Shared with %(department)s: they may view.")
        )
        messages.success(request, text % {"department": department.name})
    return redirect(record_path(record))


@require_POST
def unshare_view(request: HttpRequest, kind: str, pk: int, department_id: int) -> HttpResponse:
    """Stop sharing a persona or journey with a department (managers)."""
    record = _shareable(request.user, kind, pk)
    department = get_object_or_404(Department, pk=department_id)
    map_unshare(record=record, department=department, by=request.user)
    messages.success(
        request,
        gettext("No longer shared with %(department)s.") % {"department": department.name},
    )
    return redirect(record_path(record))


urlpatterns = [
    path("comments/<str:kind>/<int:pk>/", comments_view, name="comments"),
    path(
        "comments/<str:kind>/<int:pk>/resolve/<int:comment_pk>/",
        comment_resolve_view,
        name="comment_resolve",
    ),
    path("notifications/", notifications, name="notifications"),
    path("notifications/read/", notifications_read, name="notifications_read"),
    path("notifications/badge/", notifications_badge, name="notifications_badge"),
    path("share/<str:kind>/<int:pk>/", share_view, name="share"),
    path(
        "share/<str:kind>/<int:pk>/unshare/<int:department_id>/",
        unshare_view,
        name="unshare",
    ),
]
