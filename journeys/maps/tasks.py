"""django-q2 tasks of personas and journey maps: thin wrappers, ids in, re-fetched here.

``mention_emails_send`` is queued by ``journeys.maps.discussion.comment_add`` once the
comment is committed. q2 delivers at least once, so each notification is claimed
(``emailed_at``) before its mail goes out and released if sending fails: a task that runs
twice sends each mention once, and a failed one is retried. A deleted comment sends nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone, translation
from django.utils.translation import gettext

from journeys.maps.discussion import comment_path
from journeys.models import Notification


def _message(notification, link: str) -> EmailMessage:
    comment = notification.comment
    author = comment.author
    who = (author.get_full_name().strip() or author.username) if author else gettext("Someone")
    record = comment.persona or comment.journey
    where = str(record)
    if comment.stage_id and comment.stage:
        where = f"{record} · {comment.stage.name}"
    subject = gettext("%(who)s mentioned you on “%(where)s”") % {"who": who, "where": where}
    body = "\n\n".join(
        [
            gettext("%(who)s mentioned you in a comment on “%(where)s”:")
            % {"who": who, "where": where},
            comment.body,
            gettext("Reply or read the thread: %(link)s") % {"link": link},
        ]
    )
    return EmailMessage(subject=subject, body=body, to=[notification.recipient.email])


def mention_emails_send(comment_id: int, recipient_ids: list[int]) -> int:
    """E-mail each mentioned person their MENTION notification of the comment, each in their
    own language if the user model has one, else the site's. Returns how many were sent."""
    rows = list(
        Notification.objects.filter(
            comment_id=comment_id,
            kind=Notification.Kind.MENTION,
            recipient_id__in=recipient_ids,
            recipient__is_active=True,
            emailed_at__isnull=True,
        )
        .exclude(recipient__email="")
        .select_related(
            "recipient",
            "comment",
            "comment__author",
            "comment__persona",
            "comment__journey",
            "comment__stage",
        )
        .order_by("recipient_id")
    )
    claimed = [row for row in rows if _claim(row)]
    if not claimed:
        return 0
    path = comment_path(claimed[0].comment)
    link = f"{settings.SITE_URL}{path}" if settings.SITE_URL else path
    messages = []
    for notification in claimed:
        language = getattr(notification.recipient, "language", "") or settings.LANGUAGE_CODE
        with translation.override(language):
            messages.append(_message(notification, link))
    try:
        with get_connection() as connection:
            return connection.send_messages(messages) or 0
    except Exception:
        Notification.objects.filter(pk__in=[row.pk for row in claimed]).update(emailed_at=None)
        raise


def _claim(notification) -> bool:
    """Mark one notification as e-mailed unless another run already did; True if ours."""
    return bool(
        Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
    )
