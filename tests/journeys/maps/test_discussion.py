"""Comments, @mentions, notifications and mention e-mails on personas and journey maps."""

from __future__ import annotations

import smtplib

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError

from config.org.models import Role
from config.org.services import share_grant
from journeys.maps.discussion import (
    comment_add,
    comment_counts,
    comment_resolve,
    comment_threads,
    mentioned_users,
    notifications_for,
    notifications_mark_read,
    notifications_unread_count,
)
from journeys.maps.tasks import mention_emails_send
from journeys.models import Comment, Notification
from tests.factories import (
    DepartmentFactory,
    JourneyFactory,
    PersonaFactory,
    StageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def journey(crm):
    return JourneyFactory(persona=PersonaFactory(owner_department=crm))


@pytest.fixture
def stage(journey):
    return StageFactory(journey=journey, name="Purchase")


def kinds(comment) -> dict[str, str]:
    return dict(comment.notifications.values_list("recipient__username", "kind"))


# --- mentions -------------------------------------------------------------------------------


def test_mentions_are_parsed_and_unknown_or_outside_names_ignored(crm, sales):
    UserFactory(username="hanako.sato", department=crm)
    UserFactory(username="ken-ito", department=sales)
    UserFactory(username="gone", department=crm, is_active=False)
    UserFactory(username="nobody")  # no department: not staff of any team

    users = mentioned_users(
        "Thanks @hanako.sato. Ask @Ken-Ito, @ghost, @gone and @nobody; mail a@b.jp @hanako.sato"
    )

    assert [u.username for u in users] == ["hanako.sato", "ken-ito"]
    assert mentioned_users("no mentions here") == []


def test_comment_stores_its_mentions_even_of_people_who_cannot_see_it(
    journey, crm_editor, sales_editor
):
    comment = comment_add(by=crm_editor, journey=journey, body="@sales-editor @crm-editor look")

    assert set(comment.mentions.values_list("username", flat=True)) == {
        "sales-editor",
        "crm-editor",
    }
    assert kinds(comment) == {}  # sales cannot see the journey; the author is never notified


def test_mention_notifies_people_who_can_see_the_record(journey, crm, crm_editor, sales_editor):
    share_grant(obj=journey, department=sales_editor.departments.get(), can_edit=False, by=None)
    viewer = UserFactory(username="crm-viewer", department=crm, department__role=Role.VIEWER)

    comment = comment_add(by=crm_editor, journey=journey, body="@sales-editor @crm-viewer ok?")

    assert kinds(comment) == {"sales-editor": "mention", "crm-viewer": "mention"}
    note = Notification.objects.get(recipient=viewer)
    assert (note.actor, note.comment, note.read_at) == (crm_editor, comment, None)


# --- adding comments ------------------------------------------------------------------------


def test_comment_on_a_stage_cell_belongs_to_the_journey_too(stage, crm_editor):
    comment = comment_add(by=crm_editor, stage=stage, field="actions", body="  Visits twice  ")

    assert (comment.journey, comment.stage, comment.persona) == (stage.journey, stage, None)
    assert (comment.field, comment.body, comment.author) == ("actions", "Visits twice", crm_editor)


def test_a_viewer_may_comment_discussion_is_not_editing(journey, crm_viewer):
    comment = comment_add(by=crm_viewer, journey=journey, field="description", body="Unclear")
    assert comment.pk


def test_another_department_cannot_comment(journey, sales_editor):
    with pytest.raises(PermissionDenied):
        comment_add(by=sales_editor, journey=journey, body="Hello")
    with pytest.raises(PermissionDenied):
        comment_add(by=sales_editor, persona=journey.persona, body="Hello")
    with pytest.raises(PermissionDenied):
        comment_add(by=AnonymousUser(), journey=journey, body="Hello")
    assert not Comment.objects.exists()


def test_empty_body_and_unknown_cell_are_refused_by_name(journey, stage, crm_editor):
    with pytest.raises(ValidationError) as empty:
        comment_add(by=crm_editor, journey=journey, body="   ")
    assert "body" in empty.value.message_dict
    with pytest.raises(ValidationError) as unknown:
        comment_add(by=crm_editor, stage=stage, field="password", body="Hi")
    assert "password" in unknown.value.message_dict["field"][0]
    with pytest.raises(ValidationError):  # a persona cell is not a journey cell
        comment_add(by=crm_editor, journey=journey, field="goals", body="Hi")
    with pytest.raises(ValidationError):
        comment_add(by=crm_editor, journey=journey, body="x" * 5001)
    assert not Comment.objects.exists()


def test_a_comment_is_about_exactly_one_record(journey, stage, crm_editor):
    with pytest.raises(ValidationError):
        comment_add(by=crm_editor, body="Hi")
    with pytest.raises(ValidationError):
        comment_add(by=crm_editor, persona=journey.persona, journey=journey, body="Hi")
    with pytest.raises(ValidationError):
        comment_add(
            by=crm_editor, journey=JourneyFactory(persona=journey.persona), stage=stage, body="Hi"
        )


def test_replies_join_the_first_comment_of_the_thread(stage, crm_editor, crm_viewer):
    first = comment_add(by=crm_editor, stage=stage, field="thoughts", body="Is this right?")
    reply = comment_add(by=crm_viewer, stage=stage, parent=first, body="Yes")
    # replying to a reply, and from the journey's panel, lands in the same thread and cell
    again = comment_add(by=crm_editor, journey=stage.journey, parent=reply, body="Thanks")

    assert reply.parent == first
    assert (again.parent, again.stage, again.field) == (first, stage, "thoughts")


def test_a_reply_to_another_records_thread_is_refused(journey, crm_editor):
    elsewhere = comment_add(by=crm_editor, persona=journey.persona, body="On the persona")
    with pytest.raises(ValidationError) as error:
        comment_add(by=crm_editor, journey=journey, parent=elsewhere, body="Hi")
    assert "parent" in error.value.message_dict


# --- notifications --------------------------------------------------------------------------


def test_reply_notifies_the_thread_participants_but_not_the_author(stage, crm, crm_editor):
    anna = UserFactory(username="anna", department=crm)
    ben = UserFactory(username="ben", department=crm)
    first = comment_add(by=anna, stage=stage, body="Start")
    comment_add(by=ben, stage=stage, parent=first, body="Me too")

    reply = comment_add(by=crm_editor, stage=stage, parent=first, body="Noted")
    answer = comment_add(by=anna, stage=stage, parent=first, body="Thanks")

    assert kinds(reply) == {"anna": "reply", "ben": "reply"}
    assert kinds(answer) == {"ben": "reply", "crm-editor": "reply"}


def test_comment_on_a_stage_notifies_its_owner(stage, crm, crm_editor):
    owner = UserFactory(username="owner", department=crm)
    stage.owner = owner
    stage.save()

    comment = comment_add(by=crm_editor, stage=stage, field="kpi", body="Which KPI?")
    own = comment_add(by=owner, stage=stage, body="Mine")

    assert kinds(comment) == {"owner": "comment"}
    assert kinds(own) == {}


def test_stage_owner_outside_the_journeys_departments_is_not_notified(stage, crm_editor):
    stage.owner = UserFactory(username="outsider", department=DepartmentFactory())
    stage.save()
    assert kinds(comment_add(by=crm_editor, stage=stage, body="Hi")) == {}


def test_one_notification_per_person_mention_wins(stage, crm, crm_editor):
    owner = UserFactory(username="owner", department=crm)
    stage.owner = owner
    stage.save()
    first = comment_add(by=owner, stage=stage, body="Start")

    reply = comment_add(by=crm_editor, stage=stage, parent=first, body="@owner @owner see")
    plain = comment_add(by=crm_editor, stage=stage, parent=first, body="and again")

    assert kinds(reply) == {"owner": "mention"}
    assert kinds(plain) == {"owner": "reply"}
    assert Notification.objects.filter(recipient=owner).count() == 2


def test_unread_count_and_list_are_the_users_own_newest_first(journey, crm, crm_editor):
    me = UserFactory(username="me", department=crm)
    other = UserFactory(username="other", department=crm)
    first = comment_add(by=crm_editor, journey=journey, body="@me one")
    second = comment_add(by=crm_editor, journey=journey, body="@me @other two")

    assert [n.comment for n in notifications_for(me)] == [second, first]
    assert notifications_unread_count(me) == 2
    assert notifications_unread_count(other) == 1
    assert notifications_unread_count(crm_editor) == 0


def test_mark_read_touches_only_the_users_own_notifications(journey, crm, crm_editor):
    me = UserFactory(username="me", department=crm)
    other = UserFactory(username="other", department=crm)
    comment_add(by=crm_editor, journey=journey, body="@me @other one")
    comment_add(by=crm_editor, journey=journey, body="@me two")
    others = Notification.objects.get(recipient=other)
    mine = list(Notification.objects.filter(recipient=me).order_by("pk"))

    assert notifications_mark_read(user=me, ids=[others.pk]) == 0
    assert notifications_mark_read(user=me, ids=[mine[0].pk]) == 1
    assert notifications_unread_count(me) == 1
    assert [n.pk for n in notifications_for(me, unread_only=True)] == [mine[1].pk]
    assert notifications_mark_read(user=me) == 1
    assert notifications_mark_read(user=me) == 0
    assert notifications_unread_count(me) == 0
    others.refresh_from_db()
    assert others.read_at is None
    assert notifications_unread_count(other) == 1


def test_marking_read_twice_keeps_the_first_read_time(journey, crm, crm_editor):
    me = UserFactory(username="me", department=crm)
    comment_add(by=crm_editor, journey=journey, body="@me hi")
    note = Notification.objects.get(recipient=me)
    notifications_mark_read(user=me, ids=[note.pk])
    note.refresh_from_db()
    first_read = note.read_at

    assert notifications_mark_read(user=me, ids=[note.pk]) == 1
    note.refresh_from_db()
    assert note.read_at == first_read


def test_notifications_of_a_record_no_longer_shared_disappear(journey, crm_editor, sales_editor):
    sales = sales_editor.departments.get()
    share_grant(obj=journey, department=sales, can_edit=True, by=None)
    comment_add(by=crm_editor, journey=journey, body="@sales-editor hi")
    assert notifications_unread_count(sales_editor) == 1

    journey.shares.all().delete()

    assert notifications_unread_count(sales_editor) == 0
    assert list(notifications_for(sales_editor)) == []


def test_notification_list_is_one_query_whatever_its_length(
    journey, stage, crm, crm_editor, django_assert_num_queries
):
    me = UserFactory(username="me", department=crm)
    comment_add(by=crm_editor, journey=journey, body="@me a")
    comment_add(by=crm_editor, stage=stage, body="@me b")
    comment_add(by=crm_editor, persona=journey.persona, body="@me c")
    me = type(me).objects.get(pk=me.pk)
    with django_assert_num_queries(2):  # memberships (once per request), then the list
        rows = [
            (n.actor.username, str(n.comment.stage or n.comment.journey or n.comment.persona))
            for n in notifications_for(me)
        ]
    assert len(rows) == 3


# --- resolving, threads, counts ------------------------------------------------------------


def test_editors_and_the_author_may_resolve_viewers_may_not(journey, crm, crm_editor, crm_viewer):
    other_viewer = UserFactory(username="v2", department=crm, department__role=Role.VIEWER)
    by_viewer = comment_add(by=crm_viewer, journey=journey, body="Question")
    by_editor = comment_add(by=crm_editor, journey=journey, body="Other question")

    with pytest.raises(PermissionDenied):
        comment_resolve(comment=by_viewer, by=other_viewer)
    with pytest.raises(PermissionDenied):
        comment_resolve(comment=by_editor, by=crm_viewer)

    resolved = comment_resolve(comment=by_viewer, by=crm_viewer)
    assert (resolved.resolved_by, resolved.resolved_at is not None) == (crm_viewer, True)
    assert comment_resolve(comment=by_editor, by=crm_editor).resolved_by == crm_editor


def test_another_department_cannot_resolve(journey, crm_editor, sales_editor):
    comment = comment_add(by=crm_editor, journey=journey, body="Question")
    with pytest.raises(PermissionDenied):
        comment_resolve(comment=comment, by=sales_editor)


def test_resolving_a_reply_resolves_its_thread_once(journey, crm_editor, crm_manager):
    first = comment_add(by=crm_editor, journey=journey, body="Question")
    reply = comment_add(by=crm_manager, journey=journey, parent=first, body="Answer")

    assert comment_resolve(comment=reply, by=crm_editor) == first
    first.refresh_from_db()
    assert first.resolved_by == crm_editor
    comment_resolve(comment=first, by=crm_manager)
    first.refresh_from_db()
    assert first.resolved_by == crm_editor


def test_threads_with_their_replies_in_two_queries(
    journey, stage, crm_editor, django_assert_num_queries
):
    first = comment_add(by=crm_editor, stage=stage, field="actions", body="A")
    comment_add(by=crm_editor, stage=stage, parent=first, body="A1")
    comment_add(by=crm_editor, stage=stage, parent=first, body="A2")
    record_level = comment_add(by=crm_editor, journey=journey, body="B")
    named = comment_add(by=crm_editor, journey=journey, field="name", body="C")
    comment_add(by=crm_editor, stage=stage, field="name", body="D")
    comment_add(by=crm_editor, journey=JourneyFactory(persona=journey.persona), body="elsewhere")

    with django_assert_num_queries(2):
        threads = comment_threads(stage=stage, field="actions")
        assert [
            (t.body, t.author.username, [r.body for r in t.replies.all()]) for t in threads
        ] == [("A", "crm-editor", ["A1", "A2"])]
    everything = comment_threads(journey=journey)
    assert [t.body for t in everything] == ["A", "B", "C", "D"]
    assert comment_threads(journey=journey, field="") == [record_level]
    assert comment_threads(journey=journey, field="name") == [named]


def test_comment_counts_are_open_threads_per_cell(journey, stage, crm_editor):
    first = comment_add(by=crm_editor, stage=stage, field="actions", body="A")
    comment_add(by=crm_editor, stage=stage, parent=first, body="A1")
    comment_add(by=crm_editor, stage=stage, field="actions", body="B")
    done = comment_add(by=crm_editor, stage=stage, field="emotion", body="C")
    comment_resolve(comment=done, by=crm_editor)
    comment_add(by=crm_editor, journey=journey, field="description", body="D")
    comment_add(by=crm_editor, journey=journey, body="E")
    comment_add(by=crm_editor, persona=journey.persona, field="goals", body="F")

    assert comment_counts(journey) == {
        f"stage-{stage.pk}-actions": 2,
        f"journey-{journey.pk}-description": 1,
        f"journey-{journey.pk}": 1,
    }
    assert comment_counts(stage) == {f"stage-{stage.pk}-actions": 2}
    assert comment_counts(journey.persona) == {f"persona-{journey.persona_id}-goals": 1}


# --- mention e-mails -----------------------------------------------------------------------


def test_mentions_are_emailed_after_commit_through_the_smtp_server(
    journey,
    stage,
    crm,
    crm_editor,
    smtp_server,
    settings,
    tasks_inline,
    django_capture_on_commit_callbacks,
):
    settings.SITE_URL = "https://circle.example.com"
    UserFactory(username="hanako", email="hanako@example.jp", department=crm)
    UserFactory(username="outsider", email="out@example.jp", department=DepartmentFactory())
    crm_editor.first_name, crm_editor.last_name = "Aiko", "Mori"
    crm_editor.save()

    with django_capture_on_commit_callbacks(execute=True):
        comment_add(
            by=crm_editor, stage=stage, field="actions", body="@hanako @outsider can you check?"
        )

    assert [m.rcpt_tos for m in smtp_server.messages] == [["hanako@example.jp"]]
    mail = smtp_server.messages[0]
    assert (
        str(mail.message["Subject"]).strip()
        == f"Aiko Mori mentioned you on “{journey.name} · Purchase”"
    )
    assert "@hanako @outsider can you check?" in mail.text
    link = (
        f"https://circle.example.com/platform/journeys/{journey.pk}/#cell-stage-{stage.pk}-actions"
    )
    assert link in mail.text


def test_no_email_without_a_mention_or_when_rolled_back(
    journey, crm, crm_editor, smtp_server, tasks_inline, django_capture_on_commit_callbacks
):
    owner = UserFactory(username="hanako", email="hanako@example.jp", department=crm)
    first = comment_add(by=owner, journey=journey, body="Start")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        comment_add(by=crm_editor, journey=journey, parent=first, body="A reply, no mention")
    assert callbacks == []
    assert smtp_server.messages == []


def test_mention_email_task_skips_deleted_comments_and_missing_addresses(
    journey, crm, crm_editor, smtp_server
):
    silent = UserFactory(username="silent", email="", department=crm)
    comment = comment_add(by=crm_editor, persona=journey.persona, body="@silent hello")
    assert mention_emails_send(comment.pk, [silent.pk]) == 0
    comment.delete()
    assert mention_emails_send(comment.pk, [silent.pk]) == 0
    assert smtp_server.messages == []


def test_a_mention_email_task_that_runs_twice_sends_once(journey, crm, crm_editor, smtp_server):
    hanako = UserFactory(username="hanako", email="hanako@example.jp", department=crm)
    comment = comment_add(by=crm_editor, journey=journey, body="@hanako have a look")

    assert mention_emails_send(comment.pk, [hanako.pk]) == 1
    assert mention_emails_send(comment.pk, [hanako.pk]) == 0
    assert len(smtp_server.messages) == 1


def test_a_refused_mention_email_is_released_for_the_retry(journey, crm, crm_editor, smtp_server):
    hanako = UserFactory(username="hanako", email="hanako@example.jp", department=crm)
    comment = comment_add(by=crm_editor, journey=journey, body="@hanako have a look")
    smtp_server.refuse("hanako@example.jp")

    with pytest.raises(smtplib.SMTPException):
        mention_emails_send(comment.pk, [hanako.pk])

    notification = Notification.objects.get(comment=comment, recipient=hanako)
    assert notification.emailed_at is None
    smtp_server.handler.refuse.clear()
    assert mention_emails_send(comment.pk, [hanako.pk]) == 1
    notification.refresh_from_db()
    assert notification.emailed_at is not None
