"""django-q2 tasks of personas and journey maps: thin wrappers, ids in, re-fetched here.

``mention_emails_send`` is queued by ``journeys.maps.discussion.comment_add`` once the
comment is committed. q2 delivers at least once, so a rare retry after a mail-server
failure may send a mention twice; a deleted comment sends nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext


def comment_link(comment) -> str:
    """The comment's place on its record's page, absolute with ``SITE_URL`` (e-mails are read
    outside any request), else the path."""
    if comment.persona_id:
        path = reverse("journeys:persona_detail", args=[comment.persona_id])
    else:
        path = reverse("journeys:journey_detail", args=[comment.journey_id])
    if comment.field:
        kind, pk = (
            ("stage", comment.stage_id)
            if comment.stage_id
            else ("journey", comment.journey_id)
            if comment.journey_id
            else ("persona", comment.persona_id)
        )
        path += f"#cell-{kind}-{pk}-{comment.field}"
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else path


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
    from journeys.models import Notification

    rows = list(
        Notification.objects.filter(
            comment_id=comment_id,
            kind=Notification.Kind.MENTION,
            recipient_id__in=recipient_ids,
            recipient__is_active=True,
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
    if not rows:
        return 0
    link = comment_link(rows[0].comment)
    messages = []
    for notification in rows:
        language = getattr(notification.recipient, "language", "") or settings.LANGUAGE_CODE
        with translation.override(language):
            messages.append(_message(notification, link))
    with get_connection() as connection:
        return connection.send_messages(messages) or 0
