"""The cell registry: ids, JSON values, checking submitted values, display, merge and diff."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict

from config.org.models import Role
from experience.models import ExperienceValue
from journeys.maps.cells import (
    CELLS,
    cell_apply,
    cell_clean,
    cell_display,
    cell_id,
    cell_input,
    cell_value,
    diff_html,
    parse_cell_id,
    record_kind,
    record_model,
    record_snapshot,
    text_merge,
)
from journeys.models import Journey, Persona, Stage
from tests.factories import (
    JourneyFactory,
    PersonaFactory,
    SegmentFactory,
    StageFactory,
    TouchpointFactory,
    UserFactory,
)


@pytest.fixture
def stage(crm):
    return StageFactory(journey=JourneyFactory(persona=PersonaFactory(owner_department=crm)))


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def test_registry_lists_the_cells_of_each_kind_in_display_order():
    assert list(CELLS["persona"]) == [
        "name",
        "initials",
        "color",
        "profile",
        "goals",
        "pains",
        "situations",
        "values",
        "preferred_channels",
        "quotes",
        "segment",
        "experience_values",
    ]
    assert list(CELLS["journey"]) == ["name", "description", "persona", "is_template"]
    assert list(CELLS["stage"]) == [
        "name",
        "kind",
        "customer_goal",
        "actions",
        "thoughts",
        "emotion",
        "pain_points",
        "opportunities",
        "kpi",
        "owner",
        "touchpoints",
        "experience_values",
    ]
    assert CELLS["persona"]["initials"].max_length == 4
    assert CELLS["stage"]["kpi"].max_length == 200
    assert CELLS["stage"]["name"].required


@pytest.mark.django_db
def test_record_kind_and_model_name_each_other(stage):
    assert record_kind(stage) == "stage"
    assert record_kind(stage.journey) == "journey"
    assert record_kind(stage.journey.persona) == "persona"
    assert record_model("stage") is Stage
    assert record_model("journey") is Journey
    assert record_model("persona") is Persona
    with pytest.raises(KeyError):
        record_model("campaign")


@pytest.mark.django_db
def test_cell_id_round_trips_and_bad_ids_are_refused_clearly(stage):
    assert cell_id(stage, "actions") == f"stage-{stage.pk}-actions"
    assert parse_cell_id(f"stage-{stage.pk}-actions") == ("stage", stage.pk, "actions")
    for bad in ("stage-x-actions", "campaign-1-name", "stage-1-password", ""):
        with pytest.raises(ValueError, match="Not a cell id"):
            parse_cell_id(bad)


@pytest.mark.django_db
def test_cell_values_are_json_ids_and_sorted_id_lists(stage, crm_editor):
    first, second = TouchpointFactory(), TouchpointFactory()
    stage.touchpoints.set([second, first])
    stage.owner = crm_editor
    stage.emotion = -1
    stage.save()

    assert cell_value(stage, "touchpoints") == sorted([first.pk, second.pk])
    assert cell_value(stage, "owner") == crm_editor.pk
    assert cell_value(stage, "emotion") == -1
    assert cell_value(stage, "actions") == ""
    assert cell_value(stage.journey, "is_template") is False
    snapshot = record_snapshot(stage)
    assert set(snapshot) == set(CELLS["stage"])
    assert snapshot["touchpoints"] == sorted([first.pk, second.pk])


@pytest.mark.django_db
def test_cell_value_uses_prefetched_m2m_without_a_query(stage, django_assert_num_queries):
    stage.touchpoints.set([TouchpointFactory()])
    loaded = Stage.objects.prefetch_related("touchpoints").get(pk=stage.pk)
    with django_assert_num_queries(0):
        assert len(cell_value(loaded, "touchpoints")) == 1


def test_cell_input_reads_one_value_or_every_value_of_a_list():
    data = QueryDict("value=3&value=5")
    assert cell_input(CELLS["stage"]["touchpoints"], data) == ["3", "5"]
    assert cell_input(CELLS["stage"]["actions"], QueryDict("value=Visit")) == "Visit"
    assert cell_input(CELLS["journey"]["is_template"], QueryDict("")) == ""


@pytest.mark.django_db
def test_clean_normalises_text_and_refuses_missing_or_too_long_values(stage, crm_editor):
    assert cell_clean(stage, "actions", "  line one\r\nline two  ", user=crm_editor) == (
        "line one\nline two"
    )
    assert cell_clean(stage, "name", "  Visit   the store ", user=crm_editor) == "Visit the store"
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, "name", "   ", user=crm_editor)
    assert "name" in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, "kpi", "x" * 201, user=crm_editor)
    assert "at most 200" in errors_of(excinfo)["kpi"][0]
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage.journey.persona, "initials", "ABCDE", user=crm_editor)
    assert "initials" in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, "actions", "a\x00b", user=crm_editor)
    assert "actions" in errors_of(excinfo)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("emotion", "-2", -2),
        ("emotion", "+1", 1),
        ("emotion", "−1", -1),
        ("kind", "purchase", "purchase"),
    ],
)
def test_clean_accepts_valid_numbers_and_choices(stage, crm_editor, field, raw, expected):
    assert cell_clean(stage, field, raw, user=crm_editor) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("emotion", "3"),
        ("emotion", "happy"),
        ("kind", "sometime"),
        ("owner", "abc"),
        ("touchpoints", ["1", "x"]),
        ("no_such_cell", "x"),
    ],
)
def test_clean_refuses_bad_values_naming_the_field(stage, crm_editor, field, raw):
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, field, raw, user=crm_editor)
    assert field in errors_of(excinfo)


@pytest.mark.django_db
def test_clean_colour_and_yes_no(stage, crm_editor):
    persona = stage.journey.persona
    assert cell_clean(persona, "color", "#A0B1C2", user=crm_editor) == "#a0b1c2"
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(persona, "color", "red", user=crm_editor)
    assert "color" in errors_of(excinfo)
    assert cell_clean(stage.journey, "is_template", "on", user=crm_editor) is True
    assert cell_clean(stage.journey, "is_template", "", user=crm_editor) is False
    with pytest.raises(ValidationError):
        cell_clean(stage.journey, "is_template", "maybe", user=crm_editor)


@pytest.mark.django_db
def test_clean_links_only_records_the_user_can_see(stage, crm, sales, crm_editor):
    persona = stage.journey.persona
    own_segment = SegmentFactory(owner_department=crm)
    hidden_segment = SegmentFactory(owner_department=sales)
    assert cell_clean(persona, "segment", str(own_segment.pk), user=crm_editor) == own_segment.pk
    assert cell_clean(persona, "segment", "", user=crm_editor) is None
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(persona, "segment", hidden_segment.pk, user=crm_editor)
    assert "not visible" in errors_of(excinfo)["segment"][0]

    hidden_persona = PersonaFactory(owner_department=sales)
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage.journey, "persona", hidden_persona.pk, user=crm_editor)
    assert "persona" in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage.journey, "persona", "", user=crm_editor)
    assert "required" in errors_of(excinfo)["persona"][0]


@pytest.mark.django_db
def test_clean_touchpoints_must_be_visible_but_linked_ones_may_stay(stage, crm, sales, crm_editor):
    mine = TouchpointFactory(owner_department=crm)
    theirs = TouchpointFactory(owner_department=sales)
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, "touchpoints", [str(mine.pk), str(theirs.pk)], user=crm_editor)
    assert f"#{theirs.pk}" in errors_of(excinfo)["touchpoints"][0]

    stage.touchpoints.set([theirs])  # linked by someone from sales before
    assert cell_clean(stage, "touchpoints", [mine.pk, theirs.pk, mine.pk], user=crm_editor) == (
        sorted([mine.pk, theirs.pk])
    )


@pytest.mark.django_db
def test_clean_owner_is_any_active_staff_member(stage, crm_editor, sales_editor):
    assert cell_clean(stage, "owner", str(sales_editor.pk), user=crm_editor) == sales_editor.pk
    outsider = UserFactory()  # no department
    retired = UserFactory(department=stage.journey.owner_department, department__role=Role.EDITOR)
    retired.is_active = False
    retired.save()
    for person in (outsider, retired):
        with pytest.raises(ValidationError) as excinfo:
            cell_clean(stage, "owner", person.pk, user=crm_editor)
        assert "owner" in errors_of(excinfo)


@pytest.mark.django_db
def test_clean_experience_values_must_exist(stage, crm_editor):
    value = ExperienceValue.objects.get_or_create(code="fun", defaults={"position": 3})[0]
    assert cell_clean(stage, "experience_values", [str(value.pk)], user=crm_editor) == [value.pk]
    with pytest.raises(ValidationError) as excinfo:
        cell_clean(stage, "experience_values", ["999999"], user=crm_editor)
    assert "experience_values" in errors_of(excinfo)


@pytest.mark.django_db
def test_apply_sets_attributes_foreign_keys_and_m2m(stage, crm_editor):
    touchpoint = TouchpointFactory()
    cell_apply(stage, "actions", "Reads reviews")
    cell_apply(stage, "owner", crm_editor.pk)
    cell_apply(stage, "touchpoints", [touchpoint.pk])
    stage.save()
    stage.refresh_from_db()
    assert stage.actions == "Reads reviews"
    assert stage.owner == crm_editor
    assert list(stage.touchpoints.all()) == [touchpoint]


@pytest.mark.django_db
def test_display_reads_like_people_write(stage, crm_editor):
    crm_editor.first_name, crm_editor.last_name = "Aiko", "Sato"
    crm_editor.save()
    touchpoint = TouchpointFactory(name="Flagship store")
    assert cell_display("stage", "emotion", -2) == "−2 very negative"
    assert cell_display("stage", "emotion", 1) == "+1 positive"
    assert cell_display("stage", "emotion", 0) == "0 neutral"
    assert cell_display("journey", "is_template", True) == "yes"
    assert cell_display("stage", "kind", "loyalty") == "Loyalty & advocacy"
    assert cell_display("stage", "owner", crm_editor.pk) == "Aiko Sato"
    assert cell_display("stage", "touchpoints", [touchpoint.pk]) == "Flagship store"
    assert cell_display("stage", "touchpoints", [987654]) == "(deleted #987654)"
    assert cell_display("stage", "owner", None) == ""
    assert cell_display("stage", "position", 3) == "3"


def test_merge_keeps_both_sides_changes_to_different_lines():
    base = "greets\nasks\npays"
    theirs = "greets warmly\nasks\npays"
    mine = "greets\nasks\npays by card"
    assert text_merge(base, theirs, mine) == "greets warmly\nasks\npays by card"


def test_merge_puts_theirs_first_where_both_changed_the_same_lines():
    assert text_merge("a\nb\nc", "a\nB (store)\nc", "a\nB (sales)\nc") == (
        "a\nB (store)\nB (sales)\nc"
    )
    assert text_merge("a", "a\nfrom store", "a\nfrom sales") == "a\nfrom store\nfrom sales"


def test_merge_shortcuts_when_one_side_did_nothing():
    assert text_merge("x", "x", "y") == "y"
    assert text_merge("x", "y", "x") == "y"
    assert text_merge("x", "same", "same") == "same"
    assert text_merge("", "their text", "my text") == "their text\nmy text"


def test_diff_marks_words_and_escapes_everything():
    html = diff_html("<b>visit</b> store", "<b>visit</b> flagship store")
    assert str(html) == "&lt;b&gt;visit&lt;/b&gt; <ins>flagship </ins>store"
    assert "<script>" not in diff_html("", "<script>alert(1)</script>")
    assert str(diff_html("花を見る", "花束を見る")) == "花<ins>束</ins>を見る"
