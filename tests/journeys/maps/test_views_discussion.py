"""Comment panels, the notification list and sharing personas and journeys, through the views."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from config.org.models import AuditLog, Role, Share
from config.org.services import share_grant
from journeys.maps.discussion import comment_add
from journeys.models import Comment, Notification
from tests.factories import JourneyFactory, PersonaFactory, StageFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def persona(crm):
    return PersonaFactory(owner_department=crm, name="Gift-giving regular")


@pytest.fixture
def journey(crm, persona):
    return JourneyFactory(persona=persona, owner_department=crm, name="Anniversary gift")


def comments_url(kind: str, record, field: str = "") -> str:
    url = reverse("journeys:comments", args=[kind, record.pk])
    return f"{url}?field={field}" if field else url


# --- comment panels -------------------------------------------------------------------------


def test_a_viewer_reads_and_adds_comments_with_mentions_highlighted_and_escaped(
    client, crm_viewer, crm_editor, persona
):
    client.force_login(crm_viewer)

    response = client.post(
        comments_url("persona", persona),
        {"body": "@crm-editor look <script>alert(1)</script>"},
        **HTMX,
    )

    html = response.content.decode()
    comment = Comment.objects.get()
    assert response.status_code == 200
    assert (comment.persona, comment.author, comment.field) == (persona, crm_viewer, "")
    assert list(comment.mentions.all()) == [crm_editor]
    assert '<mark class="mention">@crm-editor</mark>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert Notification.objects.filter(recipient=crm_editor, kind="mention").exists()


def test_the_panel_of_one_cell_shows_and_takes_that_cells_comments(client, crm_editor, persona):
    comment_add(by=crm_editor, body="About the goals", persona=persona, field="goals")
    comment_add(by=crm_editor, body="About the pains", persona=persona, field="pains")
    client.force_login(crm_editor)

    panel = client.get(comments_url("persona", persona, "goals"), **HTMX).content.decode()
    client.post(comments_url("persona", persona, "goals"), {"body": "Second"}, **HTMX)

    assert "About the goals" in panel
    assert "About the pains" not in panel
    assert Comment.objects.filter(persona=persona, field="goals").count() == 2


def test_a_reply_joins_the_thread_and_notifies_its_author(client, crm_editor, crm_viewer, persona):
    first = comment_add(by=crm_viewer, body="Is this still true?", persona=persona, field="goals")
    client.force_login(crm_editor)

    response = client.post(
        comments_url("persona", persona), {"body": "Yes, checked.", "parent": first.pk}, **HTMX
    )

    reply = Comment.objects.get(parent=first)
    assert response.status_code == 200
    assert (reply.author, reply.field) == (crm_editor, "goals")
    assert "Yes, checked." in response.content.decode()
    assert Notification.objects.filter(recipient=crm_viewer, comment=reply, kind="reply").exists()


def test_an_empty_comment_is_refused_with_the_reason(client, crm_editor, persona):
    client.force_login(crm_editor)

    response = client.post(comments_url("persona", persona), {"body": "   "}, **HTMX)

    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert not Comment.objects.exists()


def test_a_post_without_htmx_goes_back_to_the_page(client, crm_editor, persona):
    client.force_login(crm_editor)

    response = client.post(comments_url("persona", persona, "goals"), {"body": "Plain form"})

    assert response.status_code == 302
    assert response.url == (
        reverse("journeys:persona_detail", args=[persona.pk]) + f"#cell-persona-{persona.pk}-goals"
    )


def test_stage_comments_hang_on_the_stage_and_its_journey(client, crm_editor, journey):
    stage = StageFactory(journey=journey, owner=crm_editor)
    client.force_login(crm_editor)

    client.post(comments_url("stage", stage, "actions"), {"body": "Check this"}, **HTMX)
    journey_panel = client.get(comments_url("journey", journey), **HTMX).content.decode()

    comment = Comment.objects.get()
    assert (comment.journey, comment.stage, comment.field) == (journey, stage, "actions")
    assert "Check this" in journey_panel
    assert "Awareness · " in journey_panel


def test_a_reply_to_another_records_comment_is_not_found(client, crm, crm_editor, persona):
    other = PersonaFactory(owner_department=crm)
    foreign = comment_add(by=crm_editor, body="Elsewhere", persona=other)
    client.force_login(crm_editor)

    response = client.post(
        comments_url("persona", persona), {"body": "Hi", "parent": foreign.pk}, **HTMX
    )

    assert response.status_code == 404
    assert Comment.objects.count() == 1


def test_another_department_can_neither_read_nor_comment(client, sales_editor, crm_editor, persona):
    comment_add(by=crm_editor, body="Internal", persona=persona)
    client.force_login(sales_editor)

    assert client.get(comments_url("persona", persona), **HTMX).status_code == 404
    assert client.post(comments_url("persona", persona), {"body": "Hi"}).status_code == 404
    assert client.get(comments_url("nonsense", persona)).status_code == 404
    assert Comment.objects.count() == 1


def test_a_panel_about_a_cell_that_does_not_exist_is_not_found(client, crm_editor, persona):
    client.force_login(crm_editor)

    assert client.get(comments_url("persona", persona, "kpi"), **HTMX).status_code == 404
    response = client.post(comments_url("persona", persona, "nope"), {"body": "Hi"}, **HTMX)
    assert response.status_code == 404
    assert not Comment.objects.exists()


def test_anonymous_visitors_cannot_read_comments(client, persona):
    response = client.get(comments_url("persona", persona))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_editors_and_authors_resolve_threads_and_other_viewers_cannot(
    client, crm, crm_editor, crm_viewer, persona
):
    other_viewer = UserFactory(department=crm, department__role=Role.VIEWER)
    by_viewer = comment_add(by=crm_viewer, body="Mine", persona=persona)
    by_editor = comment_add(by=crm_editor, body="An editor's", persona=persona)

    def resolve(comment):
        url = reverse("journeys:comment_resolve", args=["persona", persona.pk, comment.pk])
        return client.post(url, **HTMX)

    client.force_login(other_viewer)
    assert resolve(by_viewer).status_code == 403
    client.force_login(crm_viewer)
    assert resolve(by_viewer).status_code == 200
    assert resolve(by_editor).status_code == 403
    client.force_login(crm_editor)
    response = resolve(by_editor)

    assert response.status_code == 200
    assert "Resolved by crm-editor" in response.content.decode()
    assert Comment.objects.filter(resolved_at__isnull=False).count() == 2


# --- notifications --------------------------------------------------------------------------


def test_the_list_shows_only_the_users_notifications_newest_first_with_links(
    client, crm_editor, crm_viewer, crm_manager, persona, journey
):
    stage = StageFactory(journey=journey)
    comment_add(by=crm_manager, body="@crm-editor persona", persona=persona, field="goals")
    comment_add(by=crm_manager, body="@crm-editor stage", stage=stage, field="actions")
    comment_add(by=crm_manager, body="@crm-viewer for someone else", persona=persona)
    client.force_login(crm_editor)

    html = client.get(reverse("journeys:notifications")).content.decode()

    assert "for someone else" not in html
    assert html.index("stage</") < html.index("persona</")
    assert f"#cell-persona-{persona.pk}-goals" in html
    assert (
        reverse("journeys:journey_detail", args=[journey.pk]) + f"#cell-stage-{stage.pk}-actions"
        in html
    )
    assert html.count('class="notification unread"') == 2


def test_marking_one_and_then_all_read(client, crm_editor, crm_manager, persona):
    first = comment_add(by=crm_manager, body="@crm-editor one", persona=persona)
    comment_add(by=crm_manager, body="@crm-editor two", persona=persona)
    comment_add(by=crm_manager, body="@crm-editor three", persona=persona)
    notification = Notification.objects.get(comment=first)
    client.force_login(crm_editor)

    client.post(reverse("journeys:notifications_read"), {"id": notification.pk})
    badge_after_one = client.get(reverse("journeys:notifications_badge")).content.decode()
    client.post(reverse("journeys:notifications_read"))
    badge_after_all = client.get(reverse("journeys:notifications_badge")).content.decode()

    assert "2 unread" in badge_after_one
    assert "unread" not in badge_after_all
    assert not Notification.objects.filter(recipient=crm_editor, read_at__isnull=True).exists()


def test_nobody_marks_someone_elses_notification_read(client, crm_viewer, crm_manager, persona):
    comment_add(by=crm_manager, body="@crm-viewer yours", persona=persona)
    notification = Notification.objects.get()
    intruder = UserFactory(username="intruder")
    client.force_login(intruder)

    response = client.post(reverse("journeys:notifications_read"), {"id": notification.pk})

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_anonymous_visitors_have_no_notifications(client):
    for name in ("journeys:notifications", "journeys:notifications_badge"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_the_header_loads_the_badge_lazily(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(reverse("journeys:notifications")).content.decode()

    assert f'data-badge-url="{reverse("journeys:notifications_badge")}"' in html
    assert '<span id="notifications-badge"></span>' in html


# --- sharing --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["persona", "journey"])
def test_a_manager_shares_and_unshares_with_a_department(
    client, kind, sales, crm_manager, persona, journey
):
    record = persona if kind == "persona" else journey
    client.force_login(crm_manager)

    shared = client.post(
        reverse("journeys:share", args=[kind, record.pk]),
        {"department": sales.pk, "can_edit": "on"},
        follow=True,
    )
    share = Share.objects.get(
        content_type=ContentType.objects.get_for_model(record), object_id=record.pk
    )
    unshared = client.post(
        reverse("journeys:unshare", args=[kind, record.pk, sales.pk]), follow=True
    )

    assert (share.department, share.can_edit) == (sales, True)
    assert "Shared with Sales planning: they may edit." in shared.content.decode()
    assert "No longer shared with Sales planning." in unshared.content.decode()
    assert not Share.objects.exists()
    assert AuditLog.objects.filter(action="share.grant").exists()


def test_the_persona_page_offers_sharing_to_managers_only(
    client, sales, crm_manager, crm_editor, persona
):
    client.force_login(crm_manager)
    manager_html = client.get(reverse("journeys:persona_detail", args=[persona.pk])).content
    client.force_login(crm_editor)
    editor_html = client.get(reverse("journeys:persona_detail", args=[persona.pk])).content

    share_url = reverse("journeys:share", args=["persona", persona.pk]).encode()
    assert share_url in manager_html
    assert share_url not in editor_html


def test_editors_cannot_share_or_unshare(client, sales, crm_editor, crm_manager, persona):
    share_grant(obj=persona, department=sales, can_edit=False, by=crm_manager)
    client.force_login(crm_editor)

    share = client.post(
        reverse("journeys:share", args=["persona", persona.pk]),
        {"department": sales.pk, "can_edit": "on"},
    )
    unshare = client.post(reverse("journeys:unshare", args=["persona", persona.pk, sales.pk]))

    assert (share.status_code, unshare.status_code) == (403, 403)
    assert Share.objects.get().can_edit is False


def test_another_departments_manager_gets_404(client, sales, crm, persona):
    sales_manager = UserFactory(department=sales, department__role=Role.MANAGER)
    client.force_login(sales_manager)

    response = client.post(
        reverse("journeys:share", args=["persona", persona.pk]), {"department": crm.pk}
    )

    assert response.status_code == 404
    assert not Share.objects.exists()


def test_stages_are_not_shared_on_their_own(client, crm_manager, sales, journey):
    stage = StageFactory(journey=journey)
    client.force_login(crm_manager)

    response = client.post(
        reverse("journeys:share", args=["stage", stage.pk]), {"department": sales.pk}
    )

    assert response.status_code == 404


def test_anonymous_visitors_cannot_share(client, sales, persona):
    response = client.post(
        reverse("journeys:share", args=["persona", persona.pk]), {"department": sales.pk}
    )

    assert response.status_code == 302
    assert not Share.objects.exists()
