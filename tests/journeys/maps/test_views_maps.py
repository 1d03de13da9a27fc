"""Journey map pages: the grid, in-place cell edits with conflicts, the live poll, history,
export, print, duplicate and stage operations — and who may do which."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from config.org.models import Role
from config.org.services import share_grant
from journeys.models import Journey, Presence, Revision, Stage
from tests.factories import (
    DepartmentFactory,
    JourneyFactory,
    PersonaFactory,
    StageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def journey(crm, sales, crm_manager):
    """A CRM journey with two stages, shared with sales planning for editing."""
    persona = PersonaFactory(owner_department=crm, name="First-time app buyer")
    journey = JourneyFactory(owner_department=crm, persona=persona, name="First purchase")
    StageFactory(
        journey=journey, position=1, name="Awareness", kind="awareness", actions="Sees an ad"
    )
    StageFactory(journey=journey, position=2, name="Purchase", kind="purchase", emotion=1)
    share_grant(obj=journey, department=sales, can_edit=True, by=crm_manager)
    return journey


def stage(journey, position: int) -> Stage:
    return journey.stages.get(position=position)


def cell_url(kind: str, pk: int, field: str) -> str:
    return reverse("journeys:cell", args=[kind, pk, field])


def live_url(journey) -> str:
    return reverse("journeys:live", args=["journey", journey.pk])


def detail_url(journey) -> str:
    return reverse("journeys:journey_detail", args=[journey.pk])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save(client, record_stage, field, value, version, **extra):
    return client.post(
        cell_url("stage", record_stage.pk, field),
        {"value": value, "version": version},
        **HTMX,
        **extra,
    )


# --- who may see and change what -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("journeys:journey_detail", [1], "get"),
        ("journeys:journey_new", [], "get"),
        ("journeys:journey_duplicate", [1], "get"),
        ("journeys:journey_export_csv", [1], "get"),
        ("journeys:journey_print", [1], "get"),
        ("journeys:journey_history", [1], "get"),
        ("journeys:persona_history", [1], "get"),
        ("journeys:revision_restore", [1], "post"),
        ("journeys:stage_add", [1], "post"),
        ("journeys:stage_move", [1], "post"),
        ("journeys:stage_delete", [1], "post"),
        ("journeys:cell", ["stage", 1, "actions"], "get"),
        ("journeys:cell", ["stage", 1, "actions"], "post"),
        ("journeys:live", ["journey", 1], "post"),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, name, args, method):
    response = getattr(client, method)(reverse(name, args=args))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_another_departments_journey_is_not_found_anywhere(client, journey):
    outsider = UserFactory(department=DepartmentFactory(), department__role=Role.MANAGER)
    client.force_login(outsider)
    first = stage(journey, 1)
    revision = Revision.objects.create(journey=journey, action="edit", field="name", after="x")

    gets = [
        detail_url(journey),
        reverse("journeys:journey_duplicate", args=[journey.pk]),
        reverse("journeys:journey_export_csv", args=[journey.pk]),
        reverse("journeys:journey_print", args=[journey.pk]),
        reverse("journeys:journey_history", args=[journey.pk]),
        reverse("journeys:persona_history", args=[journey.persona_id]),
        cell_url("stage", first.pk, "actions"),
        cell_url("journey", journey.pk, "name"),
    ]
    posts = [
        (cell_url("stage", first.pk, "actions"), {"value": "mine", "version": 0}),
        (live_url(journey), {"since": 0}),
        (reverse("journeys:stage_add", args=[journey.pk]), {"name": "New"}),
        (reverse("journeys:stage_move", args=[first.pk]), {"position": 2}),
        (reverse("journeys:stage_delete", args=[first.pk]), {}),
        (reverse("journeys:revision_restore", args=[revision.pk]), {"scope": "record"}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    first.refresh_from_db()
    assert first.actions == "Sees an ad"
    assert journey.stages.count() == 2


def test_viewer_post_to_edit_a_cell_is_refused_and_changes_nothing(client, journey, crm_viewer):
    client.force_login(crm_viewer)
    first = stage(journey, 1)

    response = save(client, first, "actions", "Overwritten by a viewer", 0)

    assert response.status_code == 403
    first.refresh_from_db()
    assert first.actions == "Sees an ad"
    assert first.versions.get("actions", 0) == 0
    assert not Revision.objects.filter(stage=first).exists()


def test_viewer_cannot_open_an_editor_or_change_the_layout(client, journey, crm_viewer):
    client.force_login(crm_viewer)
    first = stage(journey, 1)

    assert client.get(cell_url("stage", first.pk, "actions") + "?edit=1").status_code == 403
    assert (
        client.post(reverse("journeys:stage_add", args=[journey.pk]), {"name": "X"}).status_code
        == 403
    )
    assert (
        client.post(reverse("journeys:stage_move", args=[first.pk]), {"position": 2}).status_code
        == 403
    )
    assert client.post(reverse("journeys:stage_delete", args=[first.pk])).status_code == 403
    assert journey.stages.count() == 2


def test_viewer_sees_the_grid_read_only(client, journey, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(detail_url(journey))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Sees an ad" in content
    assert "Read only" in content
    assert "?edit=1" not in content
    assert reverse("journeys:stage_add", args=[journey.pk]) not in content


def test_editor_sees_the_grid_with_edit_buttons_presence_and_the_chart(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.get(detail_url(journey))

    content = response.content.decode()
    first = stage(journey, 1)
    assert f'id="cell-stage-{first.pk}-actions"' in content
    assert cell_url("stage", first.pk, "actions") + "?edit=1" in content
    assert f'hx-get="{detail_url(journey)}?days=90" hx-trigger="load"' in content
    assert live_url(journey) in content
    assert 'hx-trigger="every 1500ms" data-poll-when-visible' in content
    assert Presence.objects.filter(room=f"journey-{journey.pk}", user=crm_editor).exists()


def test_sales_editor_of_a_shared_journey_may_edit(client, journey, sales_editor):
    client.force_login(sales_editor)
    first = stage(journey, 1)

    response = save(client, first, "actions", "Asks in the store", 0)

    assert response.status_code == 200
    first.refresh_from_db()
    assert first.actions == "Asks in the store"


def test_journey_page_query_count_is_pinned(client, journey, crm_editor, django_assert_num_queries):
    client.force_login(crm_editor)
    client.get(detail_url(journey))  # creates the presence row

    with django_assert_num_queries(13):
        response = client.get(detail_url(journey))

    assert response.status_code == 200


def test_journey_page_query_count_does_not_grow_with_stages(
    client, journey, crm_editor, django_assert_max_num_queries
):
    for position in range(3, 9):
        StageFactory(journey=journey, position=position, name=f"Stage {position}")
    client.force_login(crm_editor)
    client.get(detail_url(journey))

    with django_assert_max_num_queries(13):
        client.get(detail_url(journey))


def test_overlay_period_answers_the_overlay_partial(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.get(detail_url(journey), {"days": 30}, **HTMX)

    content = response.content.decode()
    assert 'id="map-overlay"' in content
    assert 'value="30" selected' in content
    assert "<html" not in content
    assert 'id="emotion-chart-box" class="map-chart-box" hx-swap-oob="true"' in content
    assert 'data-chart-for="emotion-chart"' in content


def test_without_javascript_the_overlay_renders_inline(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.get(detail_url(journey), {"days": 365})

    content = response.content.decode()
    assert "<html" in content
    assert 'value="365" selected' in content
    assert 'data-chart-for="emotion-chart"' in content
    assert 'hx-swap-oob="true"' not in content


def test_overlay_query_count_is_pinned(client, journey, crm_editor, django_assert_num_queries):
    client.force_login(crm_editor)

    with django_assert_num_queries(13):
        client.get(detail_url(journey), {"days": 90}, **HTMX)


def test_live_poll_asks_for_a_new_curve_when_an_emotion_changes(journey, crm_editor, sales_editor):
    save(client_for(crm_editor), stage(journey, 1), "emotion", "-2", 0)

    response = client_for(sales_editor).post(live_url(journey), {"since": 0}, **HTMX)

    content = response.content.decode()
    assert '<div id="overlay-refresh" hx-swap-oob="true"' in content
    assert 'hx-trigger="load"' in content


# --- cells: edit, conflict, bad values ---------------------------------------------------


def test_editor_partial_has_the_version_and_marks_presence(client, journey, crm_editor):
    client.force_login(crm_editor)
    first = stage(journey, 1)

    response = client.get(cell_url("stage", first.pk, "actions") + "?edit=1", **HTMX)

    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="version" value="0"' in content
    assert "Sees an ad</textarea>" in content
    presence = Presence.objects.get(room=f"journey-{journey.pk}", user=crm_editor)
    assert presence.cell == f"stage-{first.pk}-actions"


def test_editor_is_warned_when_someone_else_edits_the_cell(journey, crm_editor, sales_editor):
    first = stage(journey, 1)
    url = cell_url("stage", first.pk, "actions") + "?edit=1"
    client_for(sales_editor).get(url, **HTMX)

    response = client_for(crm_editor).get(url, **HTMX)

    assert response.status_code == 200
    assert "is editing this cell too" in response.content.decode()


def test_two_editors_on_different_cells_both_save(journey, crm_editor, sales_editor):
    marketer, planner = client_for(crm_editor), client_for(sales_editor)
    first = stage(journey, 1)

    one = save(marketer, first, "actions", "Sees the app ad", 0)
    two = save(planner, first, "pain_points", "Cannot find the size chart", 0)

    assert (one.status_code, two.status_code) == (200, 200)
    first.refresh_from_db()
    assert first.actions == "Sees the app ad"
    assert first.pain_points == "Cannot find the size chart"
    assert first.versions == {"actions": 1, "pain_points": 1}
    assert 'data-version="1"' in two.content.decode()


def test_same_cell_conflicts_shows_both_texts_and_overwrites_nothing(
    journey, crm_editor, sales_editor
):
    marketer, planner = client_for(crm_editor), client_for(sales_editor)
    first = stage(journey, 1)

    saved = save(marketer, first, "actions", "Sees the app ad", 0)
    late = save(planner, first, "actions", "Hears about it in the store", 0)

    assert saved.status_code == 200
    assert late.status_code == 409
    content = late.content.decode()
    assert "Sees the app ad" in content
    assert "Hears about it in the store" in content
    assert 'name="version" value="1"' in content
    first.refresh_from_db()
    assert first.actions == "Sees the app ad"
    assert first.versions == {"actions": 1}
    assert Revision.objects.filter(stage=first, field="actions").count() == 1


def test_after_a_conflict_the_later_editor_can_save_the_merge(journey, crm_editor, sales_editor):
    marketer, planner = client_for(crm_editor), client_for(sales_editor)
    first = stage(journey, 1)
    save(marketer, first, "actions", "Sees the app ad", 0)
    save(planner, first, "actions", "Hears about it in the store", 0)

    response = save(planner, first, "actions", "Sees the app ad\nHears about it in the store", 1)

    assert response.status_code == 200
    first.refresh_from_db()
    assert first.actions == "Sees the app ad\nHears about it in the store"
    assert first.versions == {"actions": 2}


def test_bad_value_answers_422_with_the_editor_and_the_error(client, journey, crm_editor):
    client.force_login(crm_editor)
    first = stage(journey, 1)

    response = save(client, first, "name", "", 0)

    assert response.status_code == 422
    assert 'class="map-cell map-cell-editor"' in response.content.decode()
    first.refresh_from_db()
    assert first.name == "Awareness"


def test_missing_version_answers_422(client, journey, crm_editor):
    client.force_login(crm_editor)
    first = stage(journey, 1)

    response = client.post(cell_url("stage", first.pk, "actions"), {"value": "x"}, **HTMX)

    assert response.status_code == 422
    first.refresh_from_db()
    assert first.actions == "Sees an ad"


def test_unknown_field_is_not_found(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.get(cell_url("stage", stage(journey, 1).pk, "position"))

    assert response.status_code == 404


def test_journey_cells_edit_too(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        cell_url("journey", journey.pk, "description"),
        {"value": "For app buyers", "version": 0},
        **HTMX,
    )

    assert response.status_code == 200
    journey.refresh_from_db()
    assert journey.description == "For app buyers"


# --- live -----------------------------------------------------------------------------


def test_live_poll_returns_the_other_editors_change_and_presence(journey, crm_editor, sales_editor):
    marketer, planner = client_for(crm_editor), client_for(sales_editor)
    first = stage(journey, 1)
    planner.get(detail_url(journey))
    since = (
        Revision.objects.filter(journey=journey)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    save(marketer, first, "actions", "Sees the app ad", 0)
    marketer.post(live_url(journey), {"since": since, "editing": f"stage-{first.pk}-kpi"}, **HTMX)

    response = planner.post(live_url(journey), {"since": since, "editing": ""}, **HTMX)

    content = response.content.decode()
    assert response.status_code == 200
    assert f'id="cell-stage-{first.pk}-actions"' in content
    assert "Sees the app ad" in content
    assert 'hx-swap-oob="true"' in content
    assert 'id="presence-bar"' in content
    assert 'data-name="crm-editor"' in content
    assert f'data-cell="stage-{first.pk}-kpi"' in content
    latest = Revision.objects.filter(journey=journey).latest("id").pk
    assert f'id="live-since" value="{latest}"' in content


def test_live_poll_does_not_replace_the_cell_being_edited(journey, crm_editor, sales_editor):
    marketer, planner = client_for(crm_editor), client_for(sales_editor)
    first = stage(journey, 1)
    save(marketer, first, "actions", "Sees the app ad", 0)

    response = planner.post(
        live_url(journey), {"since": 0, "editing": f"stage-{first.pk}-actions"}, **HTMX
    )

    content = response.content.decode()
    assert f'id="cell-stage-{first.pk}-actions"' not in content
    assert "just saved the cell you are editing" in content


def test_live_poll_redraws_the_grid_when_stages_change(journey, crm_editor, sales_editor):
    since = (
        Revision.objects.filter(journey=journey)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    client_for(crm_editor).post(
        reverse("journeys:stage_add", args=[journey.pk]), {"name": "Aftercare"}
    )
    added = journey.stages.get(name="Aftercare")

    response = client_for(sales_editor).post(live_url(journey), {"since": since}, **HTMX)

    content = response.content.decode()
    assert '<div id="journey-grid" hx-swap-oob="true">' in content
    assert f'id="cell-stage-{added.pk}-actions"' in content
    assert "reload the page" not in content


def test_live_poll_only_announces_a_layout_change_to_someone_typing(
    journey, crm_editor, sales_editor
):
    first = stage(journey, 1)
    since = (
        Revision.objects.filter(journey=journey)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    client_for(crm_editor).post(reverse("journeys:stage_add", args=[journey.pk]), {"name": "Use"})

    response = client_for(sales_editor).post(
        live_url(journey), {"since": since, "editing": f"stage-{first.pk}-actions"}, **HTMX
    )

    content = response.content.decode()
    assert "reload the page" in content
    assert 'id="journey-grid"' not in content


def test_live_poll_without_changes_is_cheap(journey, crm_editor, django_assert_num_queries):
    client = client_for(crm_editor)
    client.post(live_url(journey), {"since": 0}, **HTMX)
    since = (
        Revision.objects.filter(journey=journey)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )

    with django_assert_num_queries(7):
        response = client.post(live_url(journey), {"since": since}, **HTMX)

    assert response.status_code == 200


def test_live_poll_only_serves_journeys_and_personas(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.post(reverse("journeys:live", args=["stage", stage(journey, 1).pk]))

    assert response.status_code == 404


# --- export, print --------------------------------------------------------------------


def test_csv_export_has_a_bom_the_grid_and_no_formulas(client, journey, crm_viewer):
    first = stage(journey, 1)
    Stage.objects.filter(pk=first.pk).update(kpi='=HYPERLINK("http://evil")')
    client.force_login(crm_viewer)

    response = client.get(reverse("journeys:journey_export_csv", args=[journey.pk]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = text.lstrip("\ufeff").splitlines()
    assert "Awareness" in lines[0]
    assert "Purchase" in lines[0]
    assert any("Sees an ad" in line for line in lines)
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text


def test_print_page_has_the_grid_and_no_navigation(client, journey, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(reverse("journeys:journey_print", args=[journey.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'class="map-print-table"' in content
    assert "Sees an ad" in content
    assert "circle-nav" not in content
    assert "hx-post" not in content


# --- new, duplicate, stages -----------------------------------------------------------


def test_new_journey_gets_the_five_standard_stages(client, crm, crm_editor):
    persona = PersonaFactory(owner_department=crm)
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:journey_new"),
        {"persona": persona.pk, "name": "Gift season", "owner_department": crm.pk},
    )

    journey = Journey.objects.get(name="Gift season")
    assert response.status_code == 302
    assert response.url == detail_url(journey)
    assert journey.stages.count() == 5
    assert journey.created_by == crm_editor


def test_new_journey_from_a_template_copies_its_stages(client, crm, journey, crm_editor):
    Journey.objects.filter(pk=journey.pk).update(is_template=True)
    client.force_login(crm_editor)

    client.post(
        reverse("journeys:journey_new"),
        {
            "persona": journey.persona_id,
            "name": "From template",
            "owner_department": crm.pk,
            "template": journey.pk,
        },
    )

    copy = Journey.objects.get(name="From template")
    assert list(copy.stages.values_list("name", flat=True)) == ["Awareness", "Purchase"]


def test_viewer_cannot_create_a_journey(client, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(reverse("journeys:journey_new")).status_code == 403


def test_new_journey_cannot_use_another_departments_persona(client, crm, crm_editor):
    hidden = PersonaFactory(owner_department=DepartmentFactory())
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:journey_new"),
        {"persona": hidden.pk, "name": "Sneaky", "owner_department": crm.pk},
    )

    assert response.status_code == 400
    assert not Journey.objects.filter(name="Sneaky").exists()


def test_sales_duplicates_a_shared_journey_into_their_department(
    client, journey, sales, sales_editor
):
    share_grant(obj=journey.persona, department=sales, can_edit=False, by=None)
    client.force_login(sales_editor)

    response = client.post(
        reverse("journeys:journey_duplicate", args=[journey.pk]),
        {"name": "Store version", "owner_department": sales.pk, "as_template": "on"},
    )

    copy = Journey.objects.get(name="Store version")
    assert response.status_code == 302
    assert response.url == detail_url(copy)
    assert copy.owner_department == sales
    assert copy.is_template
    assert copy.duplicated_from == journey
    assert list(copy.stages.values_list("actions", flat=True)) == ["Sees an ad", ""]


def test_a_copy_needs_its_persona_shared_with_the_copys_department(
    client, journey, sales, sales_editor
):
    client.force_login(sales_editor)

    response = client.post(
        reverse("journeys:journey_duplicate", args=[journey.pk]),
        {"name": "Store version", "owner_department": sales.pk},
    )

    assert response.status_code == 400
    assert "is not shared with" in response.content.decode()
    assert not Journey.objects.filter(name="Store version").exists()


def test_duplicate_cannot_target_a_department_the_user_does_not_edit(
    client, journey, crm, sales_editor
):
    client.force_login(sales_editor)

    response = client.post(
        reverse("journeys:journey_duplicate", args=[journey.pk]),
        {"name": "Into CRM", "owner_department": crm.pk},
    )

    assert response.status_code == 400
    assert not Journey.objects.filter(name="Into CRM").exists()


def test_stage_add_move_and_delete(client, journey, crm_editor):
    client.force_login(crm_editor)

    client.post(reverse("journeys:stage_add", args=[journey.pk]), {"name": "Use", "kind": "use"})
    added = journey.stages.get(name="Use")
    assert added.position == 3
    client.post(reverse("journeys:stage_move", args=[added.pk]), {"position": 1})
    assert list(journey.stages.order_by("position").values_list("name", flat=True)) == [
        "Use",
        "Awareness",
        "Purchase",
    ]
    response = client.post(reverse("journeys:stage_delete", args=[stage(journey, 2).pk]))

    assert response.status_code == 302
    assert list(journey.stages.order_by("position").values_list("name", flat=True)) == [
        "Use",
        "Purchase",
    ]


def test_stage_add_without_a_name_says_so(client, journey, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:stage_add", args=[journey.pk]), {"name": " "}, follow=True
    )

    assert "Name the new stage." in response.content.decode()
    assert journey.stages.count() == 2


# --- history, restore ------------------------------------------------------------------


def test_history_shows_who_changed_what_with_a_diff(client, journey, crm_editor, sales_editor):
    first = stage(journey, 1)
    save(client_for(sales_editor), first, "actions", "Sees an app ad", 0)
    client.force_login(crm_editor)

    response = client.get(reverse("journeys:journey_history", args=[journey.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert "sales-editor" in content
    assert "<ins>" in content
    assert "Actions" in content or "actions" in content
    assert reverse("journeys:revision_restore", args=[Revision.objects.latest("id").pk]) in content


def test_restore_brings_back_the_old_text(client, journey, crm_editor, sales_editor):
    first = stage(journey, 1)
    marketer = client_for(crm_editor)
    save(marketer, first, "actions", "Version one", 0)
    good = Revision.objects.get(stage=first, field="actions", version=1)
    save(client_for(sales_editor), first, "actions", "Version two", 1)

    response = marketer.post(
        reverse("journeys:revision_restore", args=[good.pk]), {"scope": "cell"}
    )

    assert response.status_code == 302
    assert response.url == reverse("journeys:journey_history", args=[journey.pk])
    first.refresh_from_db()
    assert first.actions == "Version one"
    assert first.versions["actions"] == 3


def test_restore_of_a_deleted_stage_brings_it_back(client, journey, crm_editor):
    client.force_login(crm_editor)
    client.post(reverse("journeys:stage_delete", args=[stage(journey, 1).pk]))
    deletion = Revision.objects.get(journey=journey, action=Revision.Action.DELETE)

    client.post(reverse("journeys:revision_restore", args=[deletion.pk]), {"scope": "record"})

    assert list(journey.stages.order_by("position").values_list("name", flat=True)) == [
        "Awareness",
        "Purchase",
    ]


def test_viewer_sees_history_but_cannot_restore(client, journey, crm_editor, crm_viewer):
    first = stage(journey, 1)
    save(client_for(crm_editor), first, "actions", "Changed", 0)
    revision = Revision.objects.get(stage=first, field="actions")
    client.force_login(crm_viewer)

    page = client.get(reverse("journeys:journey_history", args=[journey.pk]))
    response = client.post(
        reverse("journeys:revision_restore", args=[revision.pk]), {"scope": "record"}
    )

    assert page.status_code == 200
    assert reverse("journeys:revision_restore", args=[revision.pk]) not in page.content.decode()
    assert response.status_code == 403
    first.refresh_from_db()
    assert first.actions == "Changed"


def test_persona_history_page(client, crm, crm_editor):
    persona = PersonaFactory(owner_department=crm, name="Gift giver")
    Revision.objects.create(
        persona=persona, action="edit", field="goals", before="", after="Joy", author=crm_editor
    )
    client.force_login(crm_editor)

    response = client.get(reverse("journeys:persona_history", args=[persona.pk]))

    assert response.status_code == 200
    assert "Joy" in response.content.decode()


def test_live_poll_of_a_persona_page_returns_changed_persona_cells(crm, crm_editor, crm_manager):
    persona = PersonaFactory(owner_department=crm, name="Gift giver")
    client_for(crm_editor).post(
        cell_url("persona", persona.pk, "goals"), {"value": "Never forget a date", "version": 0}
    )

    response = client_for(crm_manager).post(
        reverse("journeys:live", args=["persona", persona.pk]), {"since": 0}, **HTMX
    )

    content = response.content.decode()
    assert f'id="cell-persona-{persona.pk}-goals"' in content
    assert "Never forget a date" in content


def test_index_links_journeys_and_offers_new_journey_to_editors(
    client, journey, sales, crm_editor, crm_viewer
):
    crm_editor.memberships.create(department=sales, role=Role.EDITOR)
    client.force_login(crm_editor)

    content = client.get(reverse("journeys:index")).content.decode()

    assert f'href="{detail_url(journey)}"' in content
    assert content.count(f'href="{reverse("journeys:journey_new")}"') == 1
    client.force_login(crm_viewer)
    assert (
        reverse("journeys:journey_new")
        not in client.get(reverse("journeys:index")).content.decode()
    )
