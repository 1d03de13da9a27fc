"""Writes of personas and journey maps: co-editing cell by cell, layout, restore, sharing."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections

from config.org.models import Role, Share
from config.org.services import share_grant
from experience.models import ExperienceValue
from journeys.maps.cells import cell_clean
from journeys.maps.services import (
    CellConflict,
    cell_save,
    journey_create,
    journey_duplicate,
    map_share,
    map_unshare,
    persona_create,
    revision_restore,
    stage_add,
    stage_delete,
    stage_move,
)
from journeys.models import Journey, Persona, Revision, Stage
from tests.factories import (
    DepartmentFactory,
    PersonaFactory,
    SegmentFactory,
    TouchpointFactory,
    UserFactory,
)


@pytest.fixture
def persona(crm, crm_editor):
    return persona_create(by=crm_editor, owner_department=crm, name="First-time app buyer")


@pytest.fixture
def journey(crm, crm_editor, persona):
    return journey_create(
        by=crm_editor, owner_department=crm, persona=persona, name="First purchase in the app"
    )


@pytest.fixture
def shared_journey(journey, sales, crm_manager):
    """The CRM journey shared with sales planning with edit rights."""
    map_share(record=journey, department=sales, can_edit=True, by=crm_manager)
    return journey


def stages_of(journey) -> list[Stage]:
    return list(Stage.objects.filter(journey=journey).order_by("position"))


def edit(record, field, raw, *, by, version=None) -> Revision | None:
    """What the cell view does: clean the posted value, save it against a version."""
    value = cell_clean(record, field, raw, user=by)
    base = record.versions.get(field, 0) if version is None else version
    return cell_save(record=record, field=field, value=value, base_version=base, by=by)


# --- The "done when" test: two editors on the same journey --------------------------------


@pytest.mark.django_db
def test_two_editors_on_one_journey_never_lose_a_change(shared_journey, crm_editor, sales_editor):
    stage_id = stages_of(shared_journey)[1].pk
    # Both open the map: each loads the stage and the versions it shows.
    marketer_view = Stage.objects.get(pk=stage_id)
    planner_view = Stage.objects.get(pk=stage_id)

    # Different cells: both saved, neither conflicts.
    edit(marketer_view, "actions", "Compares prices in the app", by=crm_editor)
    edit(planner_view, "thoughts", "Is the delivery fee worth it?", by=sales_editor)
    saved = Stage.objects.get(pk=stage_id)
    assert saved.actions == "Compares prices in the app"
    assert saved.thoughts == "Is the delivery fee worth it?"
    assert saved.versions == {"actions": 1, "thoughts": 1}

    # Same cell: the planner still holds version 0 of "actions" → conflict, nothing written.
    with pytest.raises(CellConflict) as excinfo:
        edit(planner_view, "actions", "Asks staff in the store", by=sales_editor, version=0)
    conflict = excinfo.value
    assert conflict.theirs == "Compares prices in the app"
    assert conflict.mine == "Asks staff in the store"
    assert conflict.base == ""
    assert (conflict.base_version, conflict.current_version) == (0, 1)
    assert conflict.their_revision.author == crm_editor
    saved.refresh_from_db()
    assert saved.actions == "Compares prices in the app"
    assert saved.versions["actions"] == 1
    assert Revision.objects.filter(stage_id=stage_id, field="actions").count() == 1

    # The marketer rewrites the cell; restoring the first revision brings the old text back.
    first = Revision.objects.get(stage_id=stage_id, field="actions")
    edit(saved, "actions", "Reads reviews only", by=crm_editor)
    restored = revision_restore(revision=first, by=sales_editor, scope="cell")
    saved.refresh_from_db()
    assert saved.actions == "Compares prices in the app"
    assert [row.action for row in restored] == [Revision.Action.RESTORE]
    assert restored[0].restored_from == first
    assert restored[0].before == "Reads reviews only"
    assert saved.versions["actions"] == 3


@pytest.mark.django_db
def test_saving_what_the_other_already_saved_is_not_a_conflict(journey, crm_editor, crm_manager):
    stage = stages_of(journey)[0]
    one, two = Stage.objects.get(pk=stage.pk), Stage.objects.get(pk=stage.pk)
    edit(one, "kpi", "App installs", by=crm_editor)
    assert edit(two, "kpi", "App installs", by=crm_manager, version=0) is None
    assert Revision.objects.filter(stage=stage, field="kpi").count() == 1


@pytest.mark.django_db
def test_an_unchanged_save_writes_no_revision(journey, crm_editor):
    stage = stages_of(journey)[0]
    before = Revision.objects.count()
    assert edit(stage, "actions", "", by=crm_editor) is None
    assert edit(stage, "emotion", "0", by=crm_editor) is None
    assert Revision.objects.count() == before
    assert Stage.objects.get(pk=stage.pk).versions == {}


@pytest.mark.django_db
def test_a_cell_save_is_a_handful_of_queries(journey, crm_editor, django_assert_num_queries):
    stage = Stage.objects.select_related("journey").filter(journey=journey).first()
    # savepoint, locked read, journey touch, update, revision insert, release
    with django_assert_num_queries(6):
        cell_save(record=stage, field="actions", value="Taps the ad", base_version=0, by=crm_editor)


@pytest.mark.django_db
def test_a_stage_revision_names_its_journey_stage_and_version(journey, crm_editor):
    stage = stages_of(journey)[2]
    touched = Journey.objects.get(pk=journey.pk).updated_at
    revision = edit(stage, "pain_points", "Slow checkout", by=crm_editor)
    assert revision.journey_id == journey.pk
    assert revision.stage == stage
    assert revision.stage_name == stage.name
    assert revision.persona_id is None
    assert (revision.action, revision.field) == (Revision.Action.EDIT, "pain_points")
    assert (revision.before, revision.after, revision.version) == ("", "Slow checkout", 1)
    assert revision.author == crm_editor
    assert Journey.objects.get(pk=journey.pk).updated_at > touched
    assert stage.versions == {"pain_points": 1}  # the caller's object follows the save


@pytest.mark.django_db
def test_m2m_and_foreign_key_cells_are_versioned_and_logged(journey, crm, crm_editor, sales_editor):
    stage = stages_of(journey)[0]
    first, second = TouchpointFactory(owner_department=crm), TouchpointFactory(owner_department=crm)
    value = ExperienceValue.objects.get_or_create(code="deal", defaults={"position": 1})[0]

    touchpoints = edit(stage, "touchpoints", [str(second.pk), str(first.pk)], by=crm_editor)
    owner = edit(stage, "owner", str(sales_editor.pk), by=crm_editor)
    values = edit(stage, "experience_values", [str(value.pk)], by=crm_editor)

    assert (touchpoints.before, touchpoints.after) == ([], sorted([first.pk, second.pk]))
    assert (owner.before, owner.after) == (None, sales_editor.pk)
    assert values.after == [value.pk]
    saved = Stage.objects.get(pk=stage.pk)
    assert set(saved.touchpoints.all()) == {first, second}
    assert saved.owner == sales_editor
    assert saved.versions == {"touchpoints": 1, "owner": 1, "experience_values": 1}

    stale = Stage.objects.get(pk=stage.pk)
    stale.versions = {}
    with pytest.raises(CellConflict) as excinfo:
        edit(stale, "touchpoints", [str(first.pk)], by=crm_editor, version=0)
    assert excinfo.value.theirs == sorted([first.pk, second.pk])
    assert set(saved.touchpoints.all()) == {first, second}


@pytest.mark.django_db
def test_persona_and_journey_cells_log_on_their_own_record(journey, persona, crm, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    edit(persona, "segment", str(segment.pk), by=crm_editor)
    edit(journey, "description", "From download to second order", by=crm_editor)
    persona_row = Revision.objects.get(persona=persona, field="segment")
    journey_row = Revision.objects.get(journey=journey, field="description")
    assert (persona_row.after, persona_row.journey_id) == (segment.pk, None)
    assert (journey_row.stage_id, journey_row.stage_name) == (None, "")
    assert Persona.objects.get(pk=persona.pk).segment == segment


# --- Validation and permissions -------------------------------------------------------------


@pytest.mark.django_db
def test_bad_values_are_refused_naming_the_field_and_nothing_is_written(journey, crm_editor):
    stage = stages_of(journey)[0]
    for field, raw in (("emotion", "5"), ("name", " "), ("kpi", "k" * 201)):
        with pytest.raises(ValidationError) as excinfo:
            edit(stage, field, raw, by=crm_editor)
        assert field in excinfo.value.message_dict
    assert not Revision.objects.filter(stage=stage).exists()
    with pytest.raises(ValidationError) as excinfo:
        cell_save(record=stage, field="password", value="x", base_version=0, by=crm_editor)
    assert "password" in excinfo.value.message_dict


@pytest.mark.django_db
def test_viewers_and_other_departments_cannot_change_a_map(
    journey, crm_viewer, sales, sales_editor
):
    stage = stages_of(journey)[0]
    first = edit(stage, "actions", "Opens the app", by=journey.created_by)
    writes = [
        lambda user: cell_save(record=stage, field="actions", value="x", base_version=1, by=user),
        lambda user: stage_add(journey=journey, by=user, name="Return"),
        lambda user: stage_move(stage=stage, position=3, by=user),
        lambda user: stage_delete(stage=stage, by=user),
        lambda user: revision_restore(revision=first, by=user, scope="cell"),
    ]
    for user in (crm_viewer, sales_editor):
        for write in writes:
            with pytest.raises(PermissionDenied):
                write(user)
    # Shared to view only: still no edits for sales.
    share_grant(obj=journey, department=sales, can_edit=False, by=None)
    for write in writes:
        with pytest.raises(PermissionDenied):
            write(sales_editor)
    stage.refresh_from_db()
    assert stage.actions == "Opens the app"
    assert len(stages_of(journey)) == 5


@pytest.mark.django_db
def test_sales_edits_a_journey_shared_with_edit_rights(shared_journey, sales_editor):
    stage = stages_of(shared_journey)[3]
    assert edit(stage, "opportunities", "Offer setup help in store", by=sales_editor)


@pytest.mark.django_db
def test_creating_needs_an_editor_of_the_owner_department(crm, sales, crm_viewer, sales_editor):
    with pytest.raises(PermissionDenied):
        persona_create(by=crm_viewer, owner_department=crm, name="Gift giver")
    with pytest.raises(PermissionDenied):
        persona_create(by=sales_editor, owner_department=crm, name="Gift giver")
    crm_persona = PersonaFactory(owner_department=crm)
    with pytest.raises(ValidationError) as excinfo:
        journey_create(by=sales_editor, owner_department=sales, persona=crm_persona, name="J")
    assert "persona" in excinfo.value.message_dict
    assert not Journey.objects.exists()


# --- Creating ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_persona_create_checks_cells_and_logs_the_creation(crm, sales, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    persona = persona_create(
        by=crm_editor, owner_department=crm, name=" Gift giver ", segment=segment.pk
    )
    assert (persona.name, persona.segment, persona.created_by) == (
        "Gift giver",
        segment,
        crm_editor,
    )
    created = Revision.objects.get(persona=persona)
    assert created.action == Revision.Action.CREATE
    assert created.after["segment"] == segment.pk

    with pytest.raises(ValidationError) as excinfo:
        persona_create(by=crm_editor, owner_department=crm, name="")
    assert "name" in excinfo.value.message_dict
    hidden = SegmentFactory(owner_department=sales)
    with pytest.raises(ValidationError) as excinfo:
        persona_create(by=crm_editor, owner_department=crm, name="X", segment=hidden.pk)
    assert "segment" in excinfo.value.message_dict
    assert Persona.objects.count() == 1


@pytest.mark.django_db
def test_journey_create_makes_the_five_standard_stages(journey, crm_editor):
    stages = stages_of(journey)
    assert [(s.position, s.kind, s.name) for s in stages] == [
        (1, "awareness", "Awareness"),
        (2, "consideration", "Consideration"),
        (3, "purchase", "Purchase"),
        (4, "use", "Use"),
        (5, "loyalty", "Loyalty & advocacy"),
    ]
    created = Revision.objects.get(journey=journey)
    assert (created.action, created.author) == (Revision.Action.CREATE, crm_editor)
    assert created.after["name"] == "First purchase in the app"


@pytest.mark.django_db
def test_journey_from_a_template_copies_its_stages(journey, persona, crm, crm_editor):
    stage = stages_of(journey)[0]
    touchpoint = TouchpointFactory(owner_department=crm)
    edit(stage, "touchpoints", [touchpoint.pk], by=crm_editor)
    edit(stage, "actions", "Sees an ad", by=crm_editor)
    made = journey_create(
        by=crm_editor, owner_department=crm, persona=persona, name="Second", template=journey
    )
    copied = stages_of(made)
    assert len(copied) == 5
    assert copied[0].actions == "Sees an ad"
    assert list(copied[0].touchpoints.all()) == [touchpoint]
    assert copied[0].versions == {}
    assert made.duplicated_from == journey


@pytest.mark.django_db
def test_duplicate_copies_every_stage_cell_including_m2m(
    journey, crm, sales, crm_editor, sales_editor
):
    value = ExperienceValue.objects.get_or_create(code="reassurance", defaults={"position": 4})[0]
    stage = stages_of(journey)[2]
    touchpoint = TouchpointFactory(owner_department=crm)
    edit(stage, "touchpoints", [touchpoint.pk], by=crm_editor)
    edit(stage, "experience_values", [value.pk], by=crm_editor)
    edit(stage, "emotion", "-1", by=crm_editor)
    edit(stage, "owner", str(sales_editor.pk), by=crm_editor)
    edit(journey, "description", "Original", by=crm_editor)

    copy = journey_duplicate(
        journey=journey, by=crm_editor, owner_department=crm, name="Copy", as_template=True
    )

    assert (copy.name, copy.description, copy.is_template) == ("Copy", "Original", True)
    assert (copy.duplicated_from, copy.persona) == (journey, journey.persona)
    copied = stages_of(copy)[2]
    assert copied.pk != stage.pk
    assert list(copied.touchpoints.all()) == [touchpoint]
    assert list(copied.experience_values.all()) == [value]
    assert (copied.emotion, copied.owner, copied.name) == (-1, sales_editor, stage.name)
    assert list(stage.touchpoints.all()) == [touchpoint]  # the original keeps its links
    assert Revision.objects.get(journey=copy).action == Revision.Action.DUPLICATE

    other = DepartmentFactory(slug="elsewhere")
    with pytest.raises(PermissionDenied):
        journey_duplicate(journey=journey, by=sales_editor, owner_department=sales, name="Mine")
    with pytest.raises(PermissionDenied):
        journey_duplicate(journey=journey, by=crm_editor, owner_department=other, name="Theirs")


# --- Layout ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stage_add_inserts_and_shifts_the_others(journey, crm_editor):
    added = stage_add(journey=journey, by=crm_editor, name="Download the app", position=2)
    last = stage_add(journey=journey, by=crm_editor, name="Referral")
    names = [s.name for s in stages_of(journey)]
    assert names[:3] == ["Awareness", "Download the app", "Consideration"]
    assert names[-1] == "Referral"
    assert [s.position for s in stages_of(journey)] == list(range(1, 8))
    assert (added.position, last.position, added.kind) == (2, 7, "custom")
    row = Revision.objects.get(stage=added)
    assert (row.action, row.stage_name, row.after["position"]) == ("create", "Download the app", 2)
    with pytest.raises(ValidationError) as excinfo:
        stage_add(journey=journey, by=crm_editor, name="X", kind="later")
    assert "kind" in excinfo.value.message_dict


@pytest.mark.django_db
def test_stage_move_shifts_the_others_and_logs_the_move(journey, crm_editor):
    purchase = stages_of(journey)[2]
    stage_move(stage=purchase, position=1, by=crm_editor)
    assert [s.kind for s in stages_of(journey)] == [
        "purchase",
        "awareness",
        "consideration",
        "use",
        "loyalty",
    ]
    stage_move(stage=purchase, position=99, by=crm_editor)
    assert stages_of(journey)[-1] == purchase
    moves = Revision.objects.filter(stage=purchase, action=Revision.Action.MOVE).order_by("pk")
    assert [(m.field, m.before, m.after) for m in moves] == [("position", 3, 1), ("position", 1, 5)]
    stage_move(stage=purchase, position=5, by=crm_editor)  # already there: nothing logged
    assert moves.count() == 2


@pytest.mark.django_db
def test_restoring_a_deleted_stage_brings_it_back_where_it_was(journey, crm, crm_editor):
    stage = stages_of(journey)[1]
    touchpoint = TouchpointFactory(owner_department=crm)
    edit(stage, "actions", "Compares plans", by=crm_editor)
    edit(stage, "touchpoints", [touchpoint.pk], by=crm_editor)
    old_pk = stage.pk

    stage_delete(stage=stage, by=crm_editor)
    assert [s.position for s in stages_of(journey)] == [1, 2, 3, 4]
    deletion = Revision.objects.get(journey=journey, action=Revision.Action.DELETE)
    assert (deletion.stage_name, deletion.before["position"]) == ("Consideration", 2)
    assert deletion.before["actions"] == "Compares plans"

    written = revision_restore(revision=deletion, by=crm_editor)
    stages = stages_of(journey)
    back = stages[1]
    assert [s.position for s in stages] == [1, 2, 3, 4, 5]
    assert (back.pk, back.name, back.actions) == (old_pk, "Consideration", "Compares plans")
    assert list(back.touchpoints.all()) == [touchpoint]
    assert back.versions["actions"] == 2  # bumped: an editor of the deleted stage conflicts
    assert [r.action for r in written] == [Revision.Action.RESTORE]
    assert Revision.objects.filter(stage=back, field="actions").exists()  # history relinked
    with pytest.raises(ValidationError):
        revision_restore(revision=deletion, by=crm_editor)


@pytest.mark.django_db
def test_restore_of_a_record_puts_every_cell_back_as_it_was(journey, crm_editor, sales_editor):
    stage = stages_of(journey)[0]
    edit(stage, "actions", "Sees a poster", by=crm_editor)
    target = edit(stage, "thoughts", "Looks nice", by=crm_editor)
    edit(stage, "actions", "Sees a poster and a video", by=crm_editor)
    edit(stage, "emotion", "2", by=crm_editor)
    edit(stage, "thoughts", "Too expensive?", by=crm_editor)

    written = revision_restore(revision=target, by=crm_editor, scope="record")
    stage.refresh_from_db()
    assert (stage.actions, stage.thoughts, stage.emotion) == ("Sees a poster", "Looks nice", 0)
    assert {r.field for r in written} == {"actions", "thoughts", "emotion"}
    assert all(r.restored_from == target for r in written)
    assert revision_restore(revision=target, by=crm_editor, scope="record") == []


@pytest.mark.django_db
def test_an_editor_holding_the_old_version_conflicts_after_a_restore(journey, crm_editor):
    stage = stages_of(journey)[0]
    first = edit(stage, "actions", "One", by=crm_editor)
    edit(stage, "actions", "Two", by=crm_editor)
    stale = Stage.objects.get(pk=stage.pk)
    revision_restore(revision=first, by=crm_editor, scope="cell")
    with pytest.raises(CellConflict) as excinfo:
        edit(stale, "actions", "Three", by=crm_editor)
    assert excinfo.value.theirs == "One"
    assert excinfo.value.base == "Two"


@pytest.mark.django_db
def test_restoring_a_move_moves_the_stage_back(journey, crm_editor):
    use = stages_of(journey)[3]
    stage_move(stage=use, position=1, by=crm_editor)
    stage_move(stage=use, position=5, by=crm_editor)
    first_move = Revision.objects.filter(stage=use, action="move").earliest("pk")
    revision_restore(revision=first_move, by=crm_editor, scope="cell")
    assert stages_of(journey)[0] == use


# --- Sharing --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_managers_of_the_owner_share_a_map(
    journey, persona, sales, crm_editor, crm_manager, superuser
):
    with pytest.raises(PermissionDenied):
        map_share(record=journey, department=sales, can_edit=True, by=crm_editor)
    share = map_share(record=persona, department=sales, can_edit=False, by=crm_manager)
    assert share.can_edit is False
    assert (
        Persona.objects.visible_to(UserFactory(department=sales, department__role=Role.VIEWER))
        .filter(pk=persona.pk)
        .exists()
    )
    with pytest.raises(ValidationError):
        map_share(record=journey, department=journey.owner_department, can_edit=True, by=superuser)
    with pytest.raises(PermissionDenied):
        map_unshare(record=persona, department=sales, by=crm_editor)
    map_unshare(record=persona, department=sales, by=crm_manager)
    assert not Share.objects.exists()


# --- Real concurrency: two transactions racing for the same cell ---------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need a server database")
def test_racing_saves_of_one_cell_let_exactly_one_win(crm, crm_editor, sales_editor):
    persona = persona_create(by=crm_editor, owner_department=crm, name="Racer")
    journey = journey_create(by=crm_editor, owner_department=crm, persona=persona, name="Race")
    map_share(
        record=journey,
        department=sales_editor.departments.get(),
        can_edit=True,
        by=UserFactory(is_superuser=True),
    )
    stage_id = stages_of(journey)[0].pk
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def save(user, text):
        try:
            stage = Stage.objects.get(pk=stage_id)
            barrier.wait(timeout=10)
            cell_save(record=stage, field="actions", value=text, base_version=0, by=user)
            outcomes[text] = "saved"
        except CellConflict:
            outcomes[text] = "conflict"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=save, args=(crm_editor, "from marketing")),
        threading.Thread(target=save, args=(sales_editor, "from sales")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["conflict", "saved"]
    winner = next(text for text, outcome in outcomes.items() if outcome == "saved")
    stage = Stage.objects.get(pk=stage_id)
    assert (stage.actions, stage.versions) == (winner, {"actions": 1})
    assert Revision.objects.filter(stage_id=stage_id, field="actions").count() == 1
