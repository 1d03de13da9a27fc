"""Comment threads on personas, journeys and their cells, @mentions and the notification list.

Discussion is not editing: whoever can see a record may comment on it. Notifications go
only to people who can see the record (a mention of someone outside is stored with the
comment but tells them nothing), never to the author, and at most one per person and
comment — a mention outranks a reply, which outranks a comment on one's stage. Mentioned
people also get an e-mail, sent by a q2 task once the comment is committed.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.tasks import queue_task
from journeys.maps.cells import CELLS
from journeys.maps.selectors import can_edit, on_visible_maps
from journeys.models import Comment, Journey, Notification, Persona, Stage

# Django's username characters (letters, digits and @ . + - _), not ending in a dot so that
# "thanks @hanako." mentions hanako; not preceded by a username character so that e-mail
# addresses ("a@b.jp") mention nobody.
MENTION = re.compile(r"(?<![\w.@+-])@([\w.@+-]+[\w+-]|[\w+-])")
BODY_MAX_LENGTH = 5000
# A notification kind's rank: one notification per person and comment, the strongest wins.
KIND_RANK = {
    Notification.Kind.MENTION: 3,
    Notification.Kind.REPLY: 2,
    Notification.Kind.COMMENT: 1,
}


# --- mentions and visibility ------------------------------------------------------------


def mentioned_names(body: str) -> list[str]:
    """The ``@names`` written in a comment, in order, without repeats (case-insensitive)."""
    seen: dict[str, str] = {}
    for name in MENTION.findall(body):
        seen.setdefault(name.casefold(), name)
    return list(seen.values())


def mentioned_users(body: str) -> list:
    """The active staff (members of any department) named with ``@username``; unknown names
    are ignored. Usernames match case-insensitively; one query."""
    names = [name.lower() for name in mentioned_names(body)]
    if not names:
        return []
    User = get_user_model()
    return list(
        User.objects.annotate(username_lower=Lower("username"))
        .filter(username_lower__in=names, is_active=True, memberships__isnull=False)
        .distinct()
        .order_by("username")
    )


def _owner_of(record) -> Persona | Journey:
    """The department-owned record that decides who sees a comment: a stage's journey."""
    return record.journey if isinstance(record, Stage) else record


def _can_see(user, owner: Persona | Journey) -> bool:
    if not (user and user.is_authenticated):
        return False
    return type(owner).objects.visible_to(user).filter(pk=owner.pk).exists()


def _users_who_see(owner: Persona | Journey, user_ids) -> set[int]:
    """Of these users, the active ones who may see the record (set-based, two queries)."""
    user_ids = {pk for pk in user_ids if pk}
    if not user_ids:
        return set()
    departments = [owner.owner_department_id, *owner.shares.values_list("department_id", flat=True)]
    User = get_user_model()
    return set(
        User.objects.filter(pk__in=user_ids, is_active=True)
        .filter(Q(is_superuser=True) | Q(memberships__department_id__in=departments))
        .values_list("pk", flat=True)
        .distinct()
    )


# --- comments ---------------------------------------------------------------------------


def _target(*, persona, journey, stage) -> tuple[str, Persona | Journey | Stage]:
    """The record a comment is about and its kind; exactly one persona or journey/stage."""
    if stage is not None:
        if journey is not None and journey.pk != stage.journey_id:
            raise ValidationError({"stage": [_("This stage belongs to another journey.")]})
        journey = stage.journey
    if (persona is None) == (journey is None):
        raise ValidationError(
            _("A comment is about one persona or one journey (or one of its stages).")
        )
    if stage is not None:
        return "stage", stage
    return ("persona", persona) if persona is not None else ("journey", journey)


def _check_field(kind: str, field: str) -> None:

    if field and field not in CELLS[kind]:
        raise ValidationError(
            {
                "field": [
                    _("“%(field)s” is not a cell of a %(kind)s.") % {"field": field, "kind": kind}
                ]
            }
        )


def _thread_root(parent: Comment, *, owner: Persona | Journey) -> Comment:
    """The first comment of the parent's thread, which must be about the same persona or
    journey (a reply posted from the journey's panel to a stage's thread joins that thread)."""
    root = parent.parent if parent.parent_id else parent
    if isinstance(owner, Persona):
        same = root.persona_id == owner.pk and root.journey_id is None
    else:
        same = root.journey_id == owner.pk
    if not same:
        raise ValidationError({"parent": [_("The comment replied to is about another record.")]})
    return root


@transaction.atomic
def comment_add(
    *,
    by,
    body: str,
    persona: Persona | None = None,
    journey: Journey | None = None,
    stage: Stage | None = None,
    field: str = "",
    parent: Comment | None = None,
) -> Comment:
    """Comment on a record or one of its cells, or reply to a thread; notify who should know.

    Whoever can see the record may comment (PermissionDenied otherwise). A reply joins the
    thread of its parent's first comment and is about the same cell. Mentions are stored as
    written; MENTION notifications go to mentioned people who can see the record, REPLY to
    the thread's earlier authors, COMMENT to the stage's owner — never to the author, one per
    person. Mentioned people are e-mailed once the comment is committed.
    """
    kind, record = _target(persona=persona, journey=journey, stage=stage)
    owner = _owner_of(record)
    if not _can_see(by, owner):
        raise PermissionDenied(_("You cannot see this record."))
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write something first.")]})
    if len(body) > BODY_MAX_LENGTH:
        raise ValidationError(
            {
                "body": [
                    _("A comment has at most %(max)d characters (this one has %(length)d).")
                    % {"max": BODY_MAX_LENGTH, "length": len(body)}
                ]
            }
        )
    root = None
    if parent is not None:
        root = _thread_root(parent, owner=owner)
        field = root.field
        if root.stage_id:
            kind, record = "stage", root.stage
        else:
            kind, record = ("persona", owner) if isinstance(owner, Persona) else ("journey", owner)
    else:
        _check_field(kind, field)

    comment = Comment.objects.create(
        persona=record if kind == "persona" else None,
        journey=owner if kind != "persona" else None,
        stage=record if kind == "stage" else None,
        field=field,
        parent=root,
        author=by,
        body=body,
    )
    mentioned = mentioned_users(body)
    if mentioned:
        comment.mentions.set(mentioned)
    _notify(
        comment,
        owner=owner,
        root=root,
        stage=record if kind == "stage" else None,
        by=by,
        mentioned=mentioned,
    )
    return comment


def _notify(
    comment: Comment, *, owner, root: Comment | None, stage: Stage | None, by, mentioned: list
) -> list[Notification]:
    """One notification per person who should know, the strongest kind winning."""
    wanted: dict[int, str] = {}

    def want(user_id: int | None, kind: str) -> None:
        if user_id and user_id != by.pk and KIND_RANK[kind] > KIND_RANK.get(wanted.get(user_id), 0):
            wanted[user_id] = kind

    if stage is not None:
        want(stage.owner_id, Notification.Kind.COMMENT)
    if root is not None:
        participants = Comment.objects.filter(Q(pk=root.pk) | Q(parent=root)).exclude(pk=comment.pk)
        for author_id in participants.values_list("author_id", flat=True).distinct():
            want(author_id, Notification.Kind.REPLY)
    for user in mentioned:
        want(user.pk, Notification.Kind.MENTION)

    allowed = _users_who_see(owner, wanted)
    notifications = Notification.objects.bulk_create(
        Notification(
            recipient_id=user_id,
            actor=by,
            kind=kind,
            comment=comment,
            created_at=comment.created_at,
        )
        for user_id, kind in sorted(wanted.items())
        if user_id in allowed
    )
    emailed = [n.recipient_id for n in notifications if n.kind == Notification.Kind.MENTION]
    if emailed:
        queue_task(
            "journeys.maps.tasks.mention_emails_send",
            comment.pk,
            emailed,
            task_name=f"journeys: mention e-mails for comment #{comment.pk}",
        )
    return notifications


@transaction.atomic
def comment_resolve(*, comment: Comment, by) -> Comment:
    """Mark a thread resolved (a reply resolves its thread): its record's editors or the
    author may; resolving twice keeps the first resolution."""

    root = comment.parent if comment.parent_id else comment
    record = root.stage or root.journey or root.persona
    allowed = (root.author_id is not None and root.author_id == by.pk) or can_edit(by, record)
    if not (allowed and _can_see(by, _owner_of(record))):
        raise PermissionDenied(_("Only the record's editors and the author may resolve this."))
    root = Comment.objects.select_for_update().get(pk=root.pk)
    if root.resolved_at is None:
        root.resolved_at = timezone.now()
        root.resolved_by = by
        root.save(update_fields=["resolved_at", "resolved_by"])
    return root


def _record_comments(*, persona=None, journey=None, stage=None) -> QuerySet[Comment]:
    if stage is not None:
        return Comment.objects.filter(stage=stage)
    if journey is not None:
        return Comment.objects.filter(journey=journey)
    if persona is not None:
        return Comment.objects.filter(persona=persona)
    raise ValueError("comments of what? Pass persona, journey or stage.")


def comment_threads(
    *, persona=None, journey=None, stage=None, field: str | None = None
) -> list[Comment]:
    """A record's threads, oldest first: first comments with ``.replies`` prefetched (oldest
    first) and authors selected; two queries.

    ``field=None``: every thread — for a journey, its stages' threads too (the whole page's
    discussion); a field name (or "" for the record as a whole): only that cell's threads,
    and a journey's cells exclude its stages' cells of the same name.
    """
    threads = _record_comments(persona=persona, journey=journey, stage=stage).filter(
        parent__isnull=True
    )
    if field is not None:
        threads = threads.filter(field=field)
        if stage is None and journey is not None:
            threads = threads.filter(stage__isnull=True)
    replies = Comment.objects.select_related("author").order_by("created_at", "pk")
    return list(
        threads.select_related("author", "resolved_by", "stage")
        .prefetch_related(Prefetch("replies", queryset=replies))
        .order_by("created_at", "pk")
    )


def comment_counts(record) -> dict[str, int]:
    """Open threads per cell id (``"stage-12-actions"``), for the badges on the grid; a
    journey's include its stages'. Whole-record threads count under ``"journey-5"``. One query."""
    if isinstance(record, Persona):
        rows = Comment.objects.filter(persona=record)
    elif isinstance(record, Journey):
        rows = Comment.objects.filter(journey=record)
    elif isinstance(record, Stage):
        rows = Comment.objects.filter(stage=record)
    else:
        raise TypeError(f"No comments on {type(record).__name__}.")
    rows = (
        rows.filter(parent__isnull=True, resolved_at__isnull=True)
        .values("persona_id", "journey_id", "stage_id", "field")
        .annotate(open=Count("pk"))
        .order_by()
    )
    counts: dict[str, int] = {}
    for row in rows:
        if row["stage_id"]:
            prefix = f"stage-{row['stage_id']}"
        elif row["journey_id"]:
            prefix = f"journey-{row['journey_id']}"
        else:
            prefix = f"persona-{row['persona_id']}"
        key = f"{prefix}-{row['field']}" if row["field"] else prefix
        counts[key] = counts.get(key, 0) + row["open"]
    return counts


# --- notifications ----------------------------------------------------------------------


def _inbox(user) -> QuerySet[Notification]:
    """The user's notifications about records they can still see (a share may be revoked)."""
    if not (user and user.is_authenticated):
        return Notification.objects.none()
    rows = Notification.objects.filter(recipient=user)
    if user.is_superuser:
        return rows
    return rows.filter(on_visible_maps(user, "comment__"))


def notifications_for(user, *, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first, with what a list needs selected."""
    rows = _inbox(user)
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows.select_related(
        "comment",
        "comment__persona",
        "comment__journey",
        "comment__stage",
        "comment__stage__journey",
        "actor",
    ).order_by("-created_at", "-pk")


def notifications_unread_count(user) -> int:
    """How many of the user's notifications are unread (the header badge)."""
    return _inbox(user).filter(read_at__isnull=True).count()


def notifications_mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read — these ``ids`` (others' ids change nothing) or all
    unread ones. Returns how many of the user's notifications matched; already-read ones keep
    their first read time."""
    if not (user and user.is_authenticated):
        return 0
    rows = Notification.objects.filter(recipient=user)
    now = timezone.now()
    if ids is None:
        return rows.filter(read_at__isnull=True).update(read_at=now)
    ids = [int(pk) for pk in ids]
    if not ids:
        return 0
    return rows.filter(pk__in=ids).update(read_at=Coalesce(F("read_at"), Value(now)))


def comment_path(comment: Comment) -> str:
    """Where a comment is read: its record's page, at its cell when it is about one."""
    if comment.stage_id:
        kind, pk = "stage", comment.stage_id
        url = reverse("journeys:journey_detail", args=[comment.journey_id])
    elif comment.journey_id:
        kind, pk = "journey", comment.journey_id
        url = reverse("journeys:journey_detail", args=[comment.journey_id])
    else:
        kind, pk = "persona", comment.persona_id
        url = reverse("journeys:persona_detail", args=[comment.persona_id])
    if comment.field:
        return f"{url}#cell-{kind}-{pk}-{comment.field}"
    return f"{url}#comments-{kind}-{pk}"


def record_path(record, field: str = "") -> str:
    """The page that shows a record, with the anchor of one of its cells when given."""
    if isinstance(record, Persona):
        url = reverse("journeys:persona_detail", args=[record.pk])
        kind = "persona"
    elif isinstance(record, Stage):
        url = reverse("journeys:journey_detail", args=[record.journey_id])
        kind = "stage"
    else:
        url = reverse("journeys:journey_detail", args=[record.pk])
        kind = "journey"
    if field:
        url += f"#cell-{kind}-{record.pk}-{field}"
    return url
