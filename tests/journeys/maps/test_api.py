"""The personas and journey maps API: cell edits guarded by versions, reads, history, comments."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.org.models import Role
from config.org.services import share_grant
from config.org.tokens import api_token_create
from customers.models import SegmentMembership
from journeys.models import Comment, Journey, Notification, Persona, Revision, Stage
from tests.factories import (
    CustomerFactory,
    JourneyFactory,
    PersonaFactory,
    SegmentFactory,
    StageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def journey(crm):
    journey = JourneyFactory(owner_department=crm, persona__owner_department=crm, name="Gifts")
    StageFactory(journey=journey, position=1, name="Awareness", kind="awareness")
    StageFactory(journey=journey, position=2, name="Purchase", kind="purchase", emotion=1)
    return journey


@pytest.fixture
def stage(journey):
    return journey.stages.get(position=1)


@pytest.fixture
def persona(journey):
    return journey.persona


def record_url(kind: str, record) -> str:
    return reverse(f"{kind}-detail", args=[record.pk])


def patch(api, kind, record, field, value, version):
    body = {"field": field, "value": value, "version": version}
    return api.patch(record_url(kind, record), body, format="json")


def token_client(department) -> tuple[Client, dict]:
    _token, secret = api_token_create(name="BI", department=department, source="bi", by=None)
    return Client(), {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# --- reads ------------------------------------------------------------------------------------


def test_journey_detail_has_ordered_stages_with_cells_and_versions(api, journey, crm_viewer):
    first, second = journey.stages.order_by("position")
    Stage.objects.filter(pk=second.pk).update(versions={"emotion": 3})
    api.force_authenticate(crm_viewer)

    body = api.get(record_url("journey", journey)).json()

    assert [row["id"] for row in body["stages"]] == [first.pk, second.pk]
    assert body["stages"][0]["kind"] == "awareness"
    assert body["stages"][1]["emotion"] == 1
    assert body["stages"][1]["versions"] == {"emotion": 3}
    assert body["versions"] == {}
    assert body["is_template"] is False


def test_persona_detail_has_no_figures_without_a_segment(api, persona, crm_viewer):
    api.force_authenticate(crm_viewer)

    body = api.get(record_url("persona", persona)).json()

    assert body["figures"] is None
    assert body["versions"] == {}


def test_persona_detail_carries_the_live_figures_of_its_segment(api, crm, crm_viewer):
    segment = SegmentFactory(owner_department=crm)
    for customer in CustomerFactory.create_batch(3):
        SegmentMembership.objects.create(segment=segment, customer=customer)
    CustomerFactory()  # outside the segment
    persona = PersonaFactory(owner_department=crm, segment=segment)
    api.force_authenticate(crm_viewer)

    figures = api.get(record_url("persona", persona)).json()["figures"]

    assert figures["size"] == 3
    assert figures["share"] == pytest.approx(3 / 4)
    assert {"nps", "f2_rate", "average_ltv", "top_channels", "computed_at"} <= figures.keys()


def test_a_stage_reads_with_its_journey(api, stage, crm_viewer):
    api.force_authenticate(crm_viewer)

    body = api.get(record_url("stage", stage)).json()

    assert body["journey"] == stage.journey_id
    assert body["name"] == "Awareness"


# --- cell edits -------------------------------------------------------------------------------


def test_an_editor_changes_a_persona_cell_and_gets_the_new_version(api, persona, crm_editor):
    api.force_authenticate(crm_editor)

    response = patch(api, "persona", persona, "goals", "Find a gift fast", 0)

    assert response.status_code == 200
    assert response.json() == {"field": "goals", "value": "Find a gift fast", "version": 1}
    persona.refresh_from_db()
    assert persona.goals == "Find a gift fast"
    revision = Revision.objects.get(persona=persona, field="goals")
    assert (revision.author, revision.after) == (crm_editor, "Find a gift fast")


def test_two_editors_on_different_cells_both_save(api, stage, crm_editor, sales, sales_editor):
    share_grant(obj=stage.journey, department=sales, can_edit=True, by=None)
    api.force_authenticate(crm_editor)
    first = patch(api, "stage", stage, "actions", "Searches the app", 0)
    api.force_authenticate(sales_editor)
    second = patch(api, "stage", stage, "thoughts", "Is it in stock?", 0)

    assert (first.status_code, second.status_code) == (200, 200)
    stage.refresh_from_db()
    assert (stage.actions, stage.thoughts) == ("Searches the app", "Is it in stock?")


def test_the_same_cell_saved_meanwhile_is_a_409_and_nothing_is_overwritten(
    api, stage, crm_editor, crm_manager
):
    api.force_authenticate(crm_manager)
    assert patch(api, "stage", stage, "actions", "Asks in store", 0).status_code == 200
    api.force_authenticate(crm_editor)

    response = patch(api, "stage", stage, "actions", "Compares prices", 0)

    assert response.status_code == 409
    body = response.json()
    assert {k: body[k] for k in ("field", "base_version", "current_version", "theirs", "mine")} == {
        "field": "actions",
        "base_version": 0,
        "current_version": 1,
        "theirs": "Asks in store",
        "mine": "Compares prices",
    }
    assert body["changed_by"] == "crm-manager"
    stage.refresh_from_db()
    assert stage.actions == "Asks in store"
    assert stage.versions["actions"] == 1


def test_a_journey_cell_and_relations_are_edited_as_json_values(api, journey, crm, crm_editor):
    other = PersonaFactory(owner_department=crm)
    api.force_authenticate(crm_editor)

    renamed = patch(api, "journey", journey, "persona", other.pk, 0)
    template = patch(api, "journey", journey, "is_template", True, 0)

    assert renamed.json() == {"field": "persona", "value": other.pk, "version": 1}
    assert template.json()["value"] is True
    journey.refresh_from_db()
    assert (journey.persona, journey.is_template) == (other, True)


@pytest.mark.parametrize(
    ("kind", "body", "named"),
    [
        ("stage", {"field": "emotion", "value": 5, "version": 0}, "emotion"),
        ("stage", {"field": "name", "value": "", "version": 0}, "name"),
        ("stage", {"field": "colour", "value": "x", "version": 0}, "field"),
        ("stage", {"field": "actions", "value": "x"}, "version"),
        ("persona", {"field": "versions", "value": {}, "version": 0}, "field"),
        ("journey", {"field": "name", "value": "x" * 201, "version": 0}, "name"),
    ],
)
def test_a_bad_cell_edit_is_a_400_naming_the_field(api, journey, crm_editor, kind, body, named):
    record = {"stage": journey.stages.first(), "persona": journey.persona, "journey": journey}[kind]
    api.force_authenticate(crm_editor)

    response = api.patch(record_url(kind, record), body, format="json")

    assert response.status_code == 400
    assert named in response.json()
    assert not Revision.objects.exists()


def test_a_segment_of_another_department_cannot_be_linked(api, persona, sales, crm_editor):
    hidden = SegmentFactory(owner_department=sales)
    api.force_authenticate(crm_editor)

    response = patch(api, "persona", persona, "segment", hidden.pk, 0)

    assert response.status_code == 400
    assert "segment" in response.json()
    persona.refresh_from_db()
    assert persona.segment is None


@pytest.mark.parametrize("kind", ["persona", "journey", "stage"])
def test_viewers_may_read_but_a_cell_edit_is_403(api, journey, crm_viewer, kind):
    record = {"stage": journey.stages.first(), "persona": journey.persona, "journey": journey}[kind]
    api.force_authenticate(crm_viewer)

    assert api.get(record_url(kind, record)).status_code == 200
    response = patch(api, kind, record, "name", "Changed", 0)

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.name != "Changed"


def test_a_read_only_share_reads_but_cannot_edit(api, journey, sales, sales_editor):
    share_grant(obj=journey, department=sales, can_edit=False, by=None)
    api.force_authenticate(sales_editor)

    assert api.get(record_url("journey", journey)).status_code == 200
    assert patch(api, "stage", journey.stages.first(), "kpi", "CTR", 0).status_code == 403


@pytest.mark.parametrize("kind", ["persona", "journey", "stage"])
def test_another_department_gets_404_for_reads_and_edits(api, journey, sales_editor, kind):
    record = {"stage": journey.stages.first(), "persona": journey.persona, "journey": journey}[kind]
    api.force_authenticate(sales_editor)

    assert api.get(record_url(kind, record)).status_code == 404
    assert patch(api, kind, record, "name", "Mine now", 0).status_code == 404
    record.refresh_from_db()
    assert record.name != "Mine now"


def test_the_browser_session_needs_its_csrf_token_to_edit_a_cell(stage, crm_editor):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(crm_editor)

    response = browser.patch(
        record_url("stage", stage),
        json.dumps({"field": "actions", "value": "x", "version": 0}),
        content_type="application/json",
    )

    assert response.status_code == 403
    stage.refresh_from_db()
    assert stage.actions == ""


# --- create and duplicate ---------------------------------------------------------------------


def test_an_editor_creates_a_persona_in_their_department(api, crm, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    api.force_authenticate(crm_editor)

    response = api.post(
        reverse("persona-list"),
        {"name": "First-time app buyer", "goals": "Try the app", "segment": segment.pk},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    persona = Persona.objects.get(pk=body["id"])
    assert (persona.owner_department, persona.created_by) == (crm, crm_editor)
    assert (persona.goals, persona.segment) == ("Try the app", segment)
    assert body["created_by"] == "crm-editor"
    assert body["figures"]["size"] == 0


def test_a_persona_needs_a_name_and_a_visible_segment(api, sales, crm_editor):
    api.force_authenticate(crm_editor)

    nameless = api.post(reverse("persona-list"), {"goals": "x"}, format="json")
    hidden = api.post(
        reverse("persona-list"),
        {"name": "P", "segment": SegmentFactory(owner_department=sales).pk},
        format="json",
    )

    assert (nameless.status_code, hidden.status_code) == (400, 400)
    assert "name" in nameless.json()
    assert "segment" in hidden.json()
    assert not Persona.objects.exists()


def test_viewers_and_other_departments_cannot_create_there(api, crm, crm_viewer, sales_editor):
    api.force_authenticate(crm_viewer)
    by_viewer = api.post(reverse("persona-list"), {"name": "P"}, format="json")
    api.force_authenticate(sales_editor)
    elsewhere = api.post(
        reverse("persona-list"), {"name": "P", "owner_department": crm.pk}, format="json"
    )

    assert (by_viewer.status_code, elsewhere.status_code) == (403, 403)
    assert not Persona.objects.exists()


def test_someone_editing_in_two_departments_chooses_the_owner(api, crm, sales):
    user = UserFactory(username="both", department=crm)
    user.memberships.create(department=sales, role=Role.EDITOR)
    api.force_authenticate(user)

    unsaid = api.post(reverse("persona-list"), {"name": "P"}, format="json")
    said = api.post(reverse("persona-list"), {"name": "P", "owner_department": sales.pk})

    assert unsaid.status_code == 400
    assert "owner_department" in unsaid.json()
    assert said.status_code == 201
    assert said.json()["owner_department"]["id"] == sales.pk


def test_a_new_journey_has_the_five_standard_stages(api, persona, crm_editor):
    api.force_authenticate(crm_editor)

    response = api.post(
        reverse("journey-list"), {"name": "App buyers", "persona": persona.pk}, format="json"
    )

    assert response.status_code == 201
    kinds = [stage["kind"] for stage in response.json()["stages"]]
    assert kinds == ["awareness", "consideration", "purchase", "use", "loyalty"]


def test_a_journey_from_a_template_copies_its_stages(api, journey, persona, crm_editor):
    Journey.objects.filter(pk=journey.pk).update(is_template=True)
    api.force_authenticate(crm_editor)

    response = api.post(
        reverse("journey-list"),
        {"name": "From template", "persona": persona.pk, "template": journey.pk},
        format="json",
    )

    assert response.status_code == 201
    assert [stage["name"] for stage in response.json()["stages"]] == ["Awareness", "Purchase"]


def test_a_journey_needs_a_visible_persona_and_a_visible_template(
    api, journey, sales, sales_editor
):
    Journey.objects.filter(pk=journey.pk).update(is_template=True)
    own = PersonaFactory(owner_department=sales)
    api.force_authenticate(sales_editor)

    hidden_persona = api.post(
        reverse("journey-list"), {"name": "J", "persona": journey.persona_id}, format="json"
    )
    hidden_template = api.post(
        reverse("journey-list"),
        {"name": "J", "persona": own.pk, "template": journey.pk},
        format="json",
    )

    assert hidden_persona.status_code == 400
    assert "persona" in hidden_persona.json()
    assert hidden_template.status_code == 400
    assert "template" in hidden_template.json()
    assert Journey.objects.count() == 1


def test_a_shared_journey_is_duplicated_into_the_readers_department(
    api, journey, sales, sales_editor
):
    share_grant(obj=journey, department=sales, can_edit=False, by=None)
    share_grant(obj=journey.persona, department=sales, can_edit=False, by=None)
    api.force_authenticate(sales_editor)

    response = api.post(
        reverse("journey-duplicate", args=[journey.pk]),
        {"name": "Our gifts", "as_template": True},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["duplicated_from"] == journey.pk
    assert body["is_template"] is True
    assert body["owner_department"]["id"] == sales.pk
    assert [stage["name"] for stage in body["stages"]] == ["Awareness", "Purchase"]


def test_another_department_cannot_duplicate_a_journey_it_cannot_see(api, journey, sales_editor):
    api.force_authenticate(sales_editor)

    response = api.post(
        reverse("journey-duplicate", args=[journey.pk]), {"name": "Copy"}, format="json"
    )

    assert response.status_code == 404
    assert Journey.objects.count() == 1


# --- history and restore ----------------------------------------------------------------------


def test_revisions_list_the_journeys_and_its_stages_changes_newest_first(
    api, journey, stage, crm_editor, crm_viewer
):
    api.force_authenticate(crm_editor)
    patch(api, "journey", journey, "description", "For December", 0)
    patch(api, "stage", stage, "actions", "Searches the app", 0)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("journey-revisions", args=[journey.pk])).json()

    assert body["count"] == 2
    assert [(row["field"], row["author"]) for row in body["results"]] == [
        ("actions", "crm-editor"),
        ("description", "crm-editor"),
    ]
    assert body["results"][0]["stage"] == stage.pk
    assert body["results"][0]["after"] == "Searches the app"


def test_persona_revisions_are_listed(api, persona, crm_editor):
    api.force_authenticate(crm_editor)
    patch(api, "persona", persona, "pains", "No time", 0)

    body = api.get(reverse("persona-revisions", args=[persona.pk])).json()

    assert [row["field"] for row in body["results"]] == ["pains"]


def test_restore_brings_back_the_old_text_and_logs_it(api, stage, crm_editor):
    api.force_authenticate(crm_editor)
    patch(api, "stage", stage, "actions", "Old text", 0)
    old = Revision.objects.get(stage=stage, field="actions")
    patch(api, "stage", stage, "actions", "New text", 1)

    response = api.post(
        reverse("revision-restore", args=[old.pk]), {"scope": "cell"}, format="json"
    )

    assert response.status_code == 200
    assert [(row["action"], row["after"]) for row in response.json()] == [("restore", "Old text")]
    stage.refresh_from_db()
    assert stage.actions == "Old text"
    assert stage.versions["actions"] == 3


def test_restore_is_refused_to_viewers_and_hidden_from_other_departments(
    api, stage, crm_editor, crm_viewer, sales_editor
):
    api.force_authenticate(crm_editor)
    patch(api, "stage", stage, "actions", "Old text", 0)
    patch(api, "stage", stage, "actions", "New text", 1)
    old = Revision.objects.filter(stage=stage).order_by("pk").first()
    url = reverse("revision-restore", args=[old.pk])

    api.force_authenticate(crm_viewer)
    by_viewer = api.post(url, {}, format="json")
    api.force_authenticate(sales_editor)
    by_outsider = api.post(url, {}, format="json")

    assert (by_viewer.status_code, by_outsider.status_code) == (403, 404)
    stage.refresh_from_db()
    assert stage.actions == "New text"


def test_a_bad_restore_scope_is_a_400_naming_it(api, stage, crm_editor):
    api.force_authenticate(crm_editor)
    patch(api, "stage", stage, "actions", "Text", 0)
    revision = Revision.objects.get(stage=stage)

    response = api.post(reverse("revision-restore", args=[revision.pk]), {"scope": "all"})

    assert response.status_code == 400
    assert "scope" in response.json()


def test_another_department_cannot_read_the_history(api, journey, persona, sales_editor):
    api.force_authenticate(sales_editor)

    assert api.get(reverse("journey-revisions", args=[journey.pk])).status_code == 404
    assert api.get(reverse("persona-revisions", args=[persona.pk])).status_code == 404


# --- comments ---------------------------------------------------------------------------------


def test_a_viewer_comments_on_a_stage_cell_and_mentions_a_colleague(
    api, journey, stage, crm_viewer, sales, sales_editor
):
    share_grant(obj=journey, department=sales, can_edit=False, by=None)
    api.force_authenticate(crm_viewer)

    response = api.post(
        reverse("journey-comments", args=[journey.pk]),
        {"body": "@sales-editor is this what you see?", "stage": stage.pk, "field": "actions"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["stage"], body["field"], body["author"]) == (stage.pk, "actions", "crm-viewer")
    assert body["mentions"] == ["sales-editor"]
    assert Notification.objects.filter(recipient=sales_editor, kind="mention").exists()


def test_comment_threads_come_with_their_replies(api, persona, crm_editor, crm_viewer):
    api.force_authenticate(crm_editor)
    url = reverse("persona-comments", args=[persona.pk])
    first = api.post(url, {"body": "Is this right?", "field": "goals"}, format="json").json()
    api.force_authenticate(crm_viewer)
    api.post(url, {"body": "Yes", "parent": first["id"]}, format="json")
    api.post(url, {"body": "On the whole persona"}, format="json")

    on_goals = api.get(url, {"field": "goals"}).json()
    everything = api.get(url).json()

    assert [thread["body"] for thread in on_goals] == ["Is this right?"]
    assert [reply["body"] for reply in on_goals[0]["replies"]] == ["Yes"]
    assert len(everything) == 2


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"body": ""}, "body"),
        ({"body": "x", "field": "nope"}, "field"),
        ({"body": "x", "stage": 999999}, "stage"),
        ({"body": "x", "parent": 999999}, "parent"),
    ],
)
def test_a_bad_comment_is_a_400_naming_the_field(api, journey, crm_viewer, body, named):
    api.force_authenticate(crm_viewer)

    response = api.post(reverse("journey-comments", args=[journey.pk]), body, format="json")

    assert response.status_code == 400
    assert named in response.json()
    assert not Comment.objects.exists()


def test_another_department_can_neither_read_nor_post_comments(api, journey, sales_editor):
    api.force_authenticate(sales_editor)
    url = reverse("journey-comments", args=[journey.pk])

    assert api.get(url).status_code == 404
    assert api.post(url, {"body": "hello"}, format="json").status_code == 404
    assert not Comment.objects.exists()


# --- tokens and anonymous callers -------------------------------------------------------------


def test_tokens_read_personas_journeys_stages_history_and_comments(journey, stage, persona, crm):
    client, auth = token_client(crm)
    urls = [
        reverse("persona-list"),
        record_url("persona", persona),
        reverse("journey-list"),
        record_url("journey", journey),
        record_url("stage", stage),
        reverse("journey-revisions", args=[journey.pk]),
        reverse("persona-comments", args=[persona.pk]),
    ]

    assert [client.get(url, **auth).status_code for url in urls] == [200] * len(urls)


def test_a_token_of_another_department_reads_nothing(journey, stage, sales):
    client, auth = token_client(sales)

    assert client.get(record_url("journey", journey), **auth).status_code == 404
    assert client.get(record_url("stage", stage), **auth).status_code == 404
    assert client.get(reverse("journey-list"), **auth).json()["results"] == []


def test_tokens_cannot_write(journey, stage, persona, crm, crm_editor):
    client, auth = token_client(crm)
    cell = {"field": "actions", "value": "by a robot", "version": 0}
    api_json = {"content_type": "application/json", **auth}
    revision = Revision.objects.create(journey=journey, stage=stage, action="edit", field="kpi")

    responses = [
        client.patch(record_url("stage", stage), json.dumps(cell), **api_json),
        client.patch(
            record_url("persona", persona),
            json.dumps({"field": "goals", "value": "x", "version": 0}),
            **api_json,
        ),
        client.post(reverse("persona-list"), {"name": "Robot"}, **api_json),
        client.post(reverse("journey-list"), {"name": "R", "persona": persona.pk}, **api_json),
        client.post(reverse("journey-duplicate", args=[journey.pk]), {"name": "R"}, **api_json),
        client.post(reverse("journey-comments", args=[journey.pk]), {"body": "hi"}, **api_json),
        client.post(reverse("revision-restore", args=[revision.pk]), {}, **api_json),
    ]

    assert all(response.status_code in (401, 403) for response in responses), [
        response.status_code for response in responses
    ]
    stage.refresh_from_db()
    assert stage.actions == ""
    assert Persona.objects.count() == 1
    assert Journey.objects.count() == 1
    assert not Comment.objects.exists()


@pytest.mark.parametrize(
    ("method", "name", "kind"),
    [
        ("get", "persona-detail", "persona"),
        ("patch", "persona-detail", "persona"),
        ("post", "persona-list", None),
        ("get", "persona-revisions", "persona"),
        ("get", "persona-comments", "persona"),
        ("post", "persona-comments", "persona"),
        ("get", "journey-detail", "journey"),
        ("patch", "journey-detail", "journey"),
        ("post", "journey-list", None),
        ("post", "journey-duplicate", "journey"),
        ("get", "journey-revisions", "journey"),
        ("get", "journey-comments", "journey"),
        ("post", "journey-comments", "journey"),
        ("get", "stage-detail", "stage"),
        ("patch", "stage-detail", "stage"),
        ("post", "revision-restore", "revision"),
    ],
)
def test_anonymous_callers_are_refused(api, journey, stage, method, name, kind):
    revision = Revision.objects.create(journey=journey, stage=stage, action="edit", field="kpi")
    record = {"persona": journey.persona, "journey": journey, "stage": stage, "revision": revision}
    url = reverse(name, args=[record[kind].pk] if kind else [])

    response = getattr(api, method)(
        url, {"field": "name", "value": "x", "version": 0}, format="json"
    )

    assert response.status_code in (401, 403)
    stage.refresh_from_db()
    assert stage.name == "Awareness"
    assert not Comment.objects.exists()


# --- schema -----------------------------------------------------------------------------------


def test_the_schema_documents_cell_edits_conflicts_and_who_may_write(client, crm_viewer):
    client.force_login(crm_viewer)

    schema = json.loads(
        client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )

    paths = schema["paths"]
    for path in ("/api/v1/personas/{id}/", "/api/v1/journeys/{id}/", "/api/v1/stages/{id}/"):
        edit = paths[path]["patch"]
        assert {"200", "400", "403", "404", "409"} <= set(edit["responses"])
        assert edit["security"] == [{"cookieAuth": []}]
        assert {"apiToken": []} in paths[path]["get"]["security"]
    conflict = paths["/api/v1/stages/{id}/"]["patch"]["responses"]["409"]["content"]
    example = conflict["application/json"]["examples"]["SameCellSavedMeanwhile"]["value"]
    assert {"field", "base_version", "current_version", "theirs", "mine"} <= example.keys()
    stage_edit = schema["components"]["schemas"]["StageCellEdit"]
    assert "emotion" in schema["components"]["schemas"]["StageCellEnum"]["enum"]
    assert set(stage_edit["required"]) == {"field", "value", "version"}
    assert paths["/api/v1/revisions/{id}/restore/"]["post"]["security"] == [{"cookieAuth": []}]
    revisions = paths["/api/v1/journeys/{id}/revisions/"]["get"]
    assert {"limit", "offset"} <= {parameter["name"] for parameter in revisions["parameters"]}
    assert "post" in paths["/api/v1/journeys/{id}/comments/"]
    assert "post" in paths["/api/v1/journeys/{id}/duplicate/"]
    figures = schema["components"]["schemas"]["PersonaDetail"]["properties"]["figures"]
    assert figures


def test_the_schema_generates_and_validates_without_warnings():
    out = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=StringIO())

    assert "/api/v1/stages/{id}/" in out.getvalue()


# --- query counts -----------------------------------------------------------------------------


def test_persona_detail_queries_do_not_grow_with_the_segment(client, crm, crm_viewer):
    small, big = SegmentFactory(owner_department=crm), SegmentFactory(owner_department=crm)
    SegmentMembership.objects.create(segment=small, customer=CustomerFactory())
    for customer in CustomerFactory.create_batch(6):
        SegmentMembership.objects.create(segment=big, customer=customer)
    urls = [
        record_url("persona", PersonaFactory(owner_department=crm, segment=s)) for s in (small, big)
    ]
    client.force_login(crm_viewer)
    client.get(urls[0])

    with CaptureQueriesContext(connection) as small_queries:
        assert client.get(urls[0]).json()["figures"]["size"] == 1
    with CaptureQueriesContext(connection) as big_queries:
        assert client.get(urls[1]).json()["figures"]["size"] == 6

    assert len(big_queries) == len(small_queries)


def test_comment_threads_query_count_does_not_grow_with_threads(
    client, persona, crm_viewer, crm_editor
):
    url = reverse("persona-comments", args=[persona.pk])
    client.force_login(crm_editor)

    def post(**body):
        return client.post(url, body, content_type="application/json").json()

    first = post(body="@crm-viewer first", field="goals")
    post(body="@crm-editor a reply", parent=first["id"])
    client.get(url)
    with CaptureQueriesContext(connection) as one_thread:
        client.get(url)
    for n in range(3):
        thread = post(body=f"@crm-viewer thread {n}")
        post(body="@crm-editor a reply", parent=thread["id"])
    with CaptureQueriesContext(connection) as four_threads:
        assert len(client.get(url).json()) == 4

    assert len(four_threads) == len(one_thread)
