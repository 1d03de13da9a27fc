"""Writes of personas and journey maps: cell saves with per-cell versions, layout, restore.

Every write checks who is asking, runs in one transaction and appends ``Revision`` rows,
so the change log is complete and a lost update is impossible: a save names the version of
the cell it was typed against, and if that cell changed meanwhile nothing is written and
``CellConflict`` carries both values to the person saving.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from config.org.models import Department, Role, Share
from config.org.services import audit_record, share_grant, share_revoke
from customers.models import Segment
from experience.models import ExperienceValue, Touchpoint
from journeys.maps.cells import (
    CELLS,
    FK_KINDS,
    M2M_KINDS,
    cell_apply,
    cell_clean,
    cell_spec,
    cell_value,
    record_kind,
    record_snapshot,
)
from journeys.maps.selectors import can_edit, can_share
from journeys.models import Journey, Persona, Revision, Stage

STANDARD_STAGES = (
    Stage.Kind.AWARENESS,
    Stage.Kind.CONSIDERATION,
    Stage.Kind.PURCHASE,
    Stage.Kind.USE,
    Stage.Kind.LOYALTY,
)
# Columns a stage copy takes over (its relations to many are copied apart).
STAGE_COPY_FIELDS = tuple(
    f"{field}_id" if spec.kind in FK_KINDS else field
    for field, spec in CELLS["stage"].items()
    if spec.kind not in M2M_KINDS
)
# Stage positions are renumbered through this offset: the unique (journey, position)
# constraint is checked row by row on PostgreSQL, so a plain "+1" would collide.
POSITION_OFFSET = 10_000


class CellConflict(Exception):
    """The cell changed since the editor loaded it; nothing was saved."""

    def __init__(
        self,
        *,
        record,
        field: str,
        base_version: int,
        current_version: int,
        theirs,
        mine,
        base,
        their_revision: Revision | None,
    ):
        super().__init__(
            f"{record_kind(record)} {record.pk} {field}: saved at version {current_version}, "
            f"edited from version {base_version}"
        )
        self.record = record
        self.field = field
        self.base_version = base_version
        self.current_version = current_version
        self.theirs = theirs
        self.mine = mine
        self.base = base
        self.their_revision = their_revision


# --- Helpers ------------------------------------------------------------------------------


def _require_edit(by, record) -> None:
    if not can_edit(by, record):
        raise PermissionDenied(gettext("You may look at this but not change it."))


def _require_department_editor(by, department: Department) -> None:
    if not (by and by.is_authenticated):
        raise PermissionDenied
    if not (by.is_superuser or by.has_role(department.pk, Role.EDITOR)):
        raise PermissionDenied(
            gettext("Only editors of %(department)s create maps for it.")
            % {"department": department}
        )


def _record_links(record) -> dict:
    """The Revision foreign keys of a record: stage rows also carry journey and stage name."""
    if isinstance(record, Stage):
        return {"journey_id": record.journey_id, "stage": record, "stage_name": record.name}
    if isinstance(record, Journey):
        return {"journey": record}
    return {"persona": record}


def _record_revisions(record):
    """The revisions of exactly this record (a journey's own, without its stages')."""
    if isinstance(record, Stage):
        return Revision.objects.filter(stage=record)
    if isinstance(record, Journey):
        return Revision.objects.filter(journey=record, stage__isnull=True, stage_name="")
    return Revision.objects.filter(persona=record)


def _locked(record):
    """A fresh copy of the record with its row locked until the transaction ends."""
    return type(record).objects.select_for_update().get(pk=record.pk)


def _touch(record) -> list[str]:
    """Mark the map as changed now; returns the update_fields the record's own save needs."""
    if isinstance(record, Stage):
        Journey.objects.filter(pk=record.journey_id).update(updated_at=timezone.now())
        return []
    return ["updated_at"]


def _save_cells(record, fields: list[str]) -> None:
    """Save the scalar cells among ``fields`` and the versions (M2M cells are already set)."""
    kind = record_kind(record)
    columns = []
    for field in fields:
        spec = CELLS[kind][field]
        if spec.kind in M2M_KINDS:
            continue
        columns.append(f"{field}_id" if spec.kind in FK_KINDS else field)
    record.save(update_fields=[*columns, "versions", *_touch(record)])


def _existing(field_kind: str, value):
    """Drop ids that no longer exist from a value being restored (deleted since)."""
    if field_kind in M2M_KINDS:
        model = Touchpoint if field_kind == "touchpoints" else ExperienceValue
        return sorted(model.objects.filter(pk__in=value or []).values_list("pk", flat=True))
    if field_kind in FK_KINDS and value is not None:
        model = {"user": get_user_model(), "segment": Segment, "persona": Persona}[field_kind]
        return value if model.objects.filter(pk=value).exists() else None
    return value


def _base_value(record, field: str, base_version: int):
    """The cell's value at ``base_version`` if the log knows it, else None."""
    revisions = _record_revisions(record).filter(field=field)
    if base_version > 0:
        row = revisions.filter(version=base_version).order_by("-pk").first()
        return row.after if row is not None else None
    first = revisions.filter(version=1).order_by("pk").first()
    return first.before if first is not None else None


def _renumber(journey_id: int, ordered_ids: list[int]) -> None:
    """Give the journey's stages positions 1…n in ``ordered_ids`` order, in two statements."""
    stages = Stage.objects.filter(journey_id=journey_id)
    stages.update(position=F("position") + POSITION_OFFSET)
    if ordered_ids:
        stages.filter(pk__in=ordered_ids).update(
            position=Case(
                *[When(pk=pk, then=Value(i)) for i, pk in enumerate(ordered_ids, start=1)],
                output_field=IntegerField(),
            )
        )


def _stage_order(journey_id: int) -> list[int]:
    return list(
        Stage.objects.filter(journey_id=journey_id)
        .order_by("position", "pk")
        .values_list("pk", flat=True)
    )


def _lock_journey(journey_id: int) -> Journey:
    """Lock the journey row: layout changes (add, move, delete) of one map run one at a time."""
    return Journey.objects.select_for_update().get(pk=journey_id)


def _stage_snapshot(stage: Stage) -> dict:
    return {**record_snapshot(stage), "position": stage.position}


# --- Cells --------------------------------------------------------------------------------


@transaction.atomic
def cell_save(*, record, field: str, value, base_version: int, by) -> Revision | None:
    """Save one cell typed against ``base_version``; returns the new Revision.

    ``value`` is already clean (``cells.cell_clean``). Returns None when nothing changed
    (the same value, or someone else saved exactly this value meanwhile). Raises
    ``CellConflict`` without writing anything when the cell changed since ``base_version``.
    Other cells of the record never conflict.
    """
    spec = cell_spec(record_kind(record), field)
    _require_edit(by, record)
    locked = _locked(record)
    current_version = locked.versions.get(field, 0)
    current = cell_value(locked, field)
    if current_version != base_version:
        if current == value:
            return None
        raise CellConflict(
            record=locked,
            field=field,
            base_version=base_version,
            current_version=current_version,
            theirs=current,
            mine=value,
            base=_base_value(locked, field, base_version),
            their_revision=_record_revisions(locked)
            .filter(field=field)
            .select_related("author")
            .order_by("-pk")
            .first(),
        )
    if current == value:
        return None
    revision = _write_cell(locked, field, value, before=current, action=Revision.Action.EDIT, by=by)
    # The caller's object reflects the save, as after a normal model save.
    record.versions = dict(locked.versions)
    if spec.kind in M2M_KINDS:
        getattr(record, "_prefetched_objects_cache", {}).pop(field, None)
    else:
        cell_apply(record, field, value)
    return revision


def _write_cell(
    locked, field: str, value, *, before, action: str, by, restored_from=None
) -> Revision:
    """Apply a value to a locked record, bump the cell's version and log the change."""
    cell_apply(locked, field, value)
    version = locked.versions.get(field, 0) + 1
    locked.versions = {**locked.versions, field: version}
    _save_cells(locked, [field])
    return Revision.objects.create(
        **_record_links(locked),
        action=action,
        field=field,
        before=before,
        after=value,
        version=version,
        restored_from=restored_from,
        author=by,
    )


# --- Creating -----------------------------------------------------------------------------


def _clean_cells(record, cells: dict, *, by) -> dict:
    return {field: cell_clean(record, field, raw, user=by) for field, raw in cells.items()}


@transaction.atomic
def persona_create(*, by, owner_department: Department, name: str, **cells) -> Persona:
    """A new persona owned by ``owner_department`` (editors of it only).

    ``cells`` are further cell values (e.g. ``segment=<id>``), checked like an edit.
    """
    _require_department_editor(by, owner_department)
    persona = Persona(owner_department=owner_department, created_by=by)
    values = _clean_cells(persona, {"name": name, **cells}, by=by)
    many = {}
    for field, value in values.items():
        if CELLS["persona"][field].kind in M2M_KINDS:
            many[field] = value
        else:
            cell_apply(persona, field, value)
    persona.save()
    for field, value in many.items():
        cell_apply(persona, field, value)
    Revision.objects.create(
        persona=persona, action=Revision.Action.CREATE, after=record_snapshot(persona), author=by
    )
    return persona


def _check_visible_journey(journey: Journey | None, by, field: str) -> None:
    if journey is not None and not Journey.objects.visible_to(by).filter(pk=journey.pk).exists():
        raise ValidationError(
            {field: [gettext("This journey does not exist or is not visible to you.")]}
        )


def _copy_stages(source: Journey, target: Journey) -> None:
    """Every stage of ``source`` with its cells (M2M included) onto ``target``: four queries."""
    originals = list(source.stages.order_by("position", "pk"))
    if not originals:
        return
    copies = Stage.objects.bulk_create(
        [
            Stage(
                journey=target,
                position=i,
                **{name: getattr(stage, name) for name in STAGE_COPY_FIELDS},
            )
            for i, stage in enumerate(originals, start=1)
        ]
    )
    if copies[0].pk is None:  # backends that do not return ids from bulk inserts
        copies = list(target.stages.order_by("position"))
    new_id = {old.pk: new.pk for old, new in zip(originals, copies, strict=True)}
    for relation, column in (
        ("touchpoints", "touchpoint_id"),
        ("experience_values", "experiencevalue_id"),
    ):
        through = getattr(Stage, relation).through
        links = through.objects.filter(stage_id__in=new_id).values_list("stage_id", column)
        through.objects.bulk_create(
            [through(stage_id=new_id[stage_id], **{column: other}) for stage_id, other in links]
        )


@transaction.atomic
def journey_create(
    *,
    by,
    owner_department: Department,
    persona: Persona,
    name: str,
    description: str = "",
    template: Journey | None = None,
) -> Journey:
    """A new journey map: the five standard stages, or a copy of ``template``'s stages.

    Stage names are translated into the creator's language when the map is made.
    """
    _require_department_editor(by, owner_department)
    _check_visible_journey(template, by, "template")
    journey = Journey(owner_department=owner_department, created_by=by)
    values = _clean_cells(
        journey, {"name": name, "description": description, "persona": persona}, by=by
    )
    for field, value in values.items():
        cell_apply(journey, field, value)
    journey.save()
    if template is not None:
        _copy_stages(template, journey)
        journey.duplicated_from = template
        journey.save(update_fields=["duplicated_from"])
    else:
        Stage.objects.bulk_create(
            [
                Stage(journey=journey, position=i, kind=kind, name=str(kind.label))
                for i, kind in enumerate(STANDARD_STAGES, start=1)
            ]
        )
    Revision.objects.create(
        journey=journey, action=Revision.Action.CREATE, after=record_snapshot(journey), author=by
    )
    return journey


@transaction.atomic
def journey_duplicate(
    *, journey: Journey, by, owner_department: Department, name: str, as_template: bool = False
) -> Journey:
    """A copy of a journey the user can see (description and every stage cell, M2M too)."""
    _require_department_editor(by, owner_department)
    if not Journey.objects.visible_to(by).filter(pk=journey.pk).exists():
        raise PermissionDenied
    persona = Persona.objects.visible_to_department(owner_department.pk).filter(
        pk=journey.persona_id
    )
    if not persona.exists():
        raise ValidationError(
            {
                "owner_department": [
                    gettext(
                        "The persona “%(persona)s” is not shared with %(department)s: share "
                        "it first, so that the copy's team can see who the map is about."
                    )
                    % {"persona": journey.persona, "department": owner_department}
                ]
            }
        )
    copy = Journey(
        owner_department=owner_department,
        persona_id=journey.persona_id,
        description=journey.description,
        is_template=as_template,
        duplicated_from=journey,
        created_by=by,
    )
    copy.name = cell_clean(copy, "name", name, user=by)
    copy.save()
    _copy_stages(journey, copy)
    Revision.objects.create(
        journey=copy,
        action=Revision.Action.DUPLICATE,
        after={**record_snapshot(copy), "duplicated_from": journey.pk},
        author=by,
    )
    return copy


# --- Stages -------------------------------------------------------------------------------


@transaction.atomic
def stage_add(
    *, journey: Journey, by, name: str, kind: str = "custom", position: int | None = None
) -> Stage:
    """A new stage, last unless ``position`` (1-based) is given; the others shift right."""
    _require_edit(by, journey)
    _lock_journey(journey.pk)
    stage = Stage(journey=journey, position=0)
    stage.name = cell_clean(stage, "name", name, user=by)
    stage.kind = cell_clean(stage, "kind", kind, user=by)
    order = _stage_order(journey.pk)
    index = len(order) if position is None else min(max(position, 1), len(order) + 1) - 1
    stage.position = POSITION_OFFSET * 2
    stage.save()
    order.insert(index, stage.pk)
    _renumber(journey.pk, order)
    stage.position = index + 1
    Journey.objects.filter(pk=journey.pk).update(updated_at=timezone.now())
    Revision.objects.create(
        **_record_links(stage),
        action=Revision.Action.CREATE,
        after=_stage_snapshot(stage),
        author=by,
    )
    return stage


@transaction.atomic
def stage_move(*, stage: Stage, position: int, by) -> None:
    """Move the stage to ``position`` (1-based, clamped); the others shift."""
    _require_edit(by, stage)
    _lock_journey(stage.journey_id)
    try:
        position = int(position)
    except (TypeError, ValueError):
        raise ValidationError(
            {"position": [gettext("The position must be a whole number from 1.")]}
        ) from None
    order = _stage_order(stage.journey_id)
    old = order.index(stage.pk) + 1
    new = min(max(position, 1), len(order))
    if new == old:
        return
    order.remove(stage.pk)
    order.insert(new - 1, stage.pk)
    _renumber(stage.journey_id, order)
    stage.position = new
    Journey.objects.filter(pk=stage.journey_id).update(updated_at=timezone.now())
    Revision.objects.create(
        **_record_links(stage),
        action=Revision.Action.MOVE,
        field="position",
        before=old,
        after=new,
        author=by,
    )


@transaction.atomic
def stage_delete(*, stage: Stage, by) -> None:
    """Delete a stage; the delete revision keeps everything needed to bring it back."""
    _require_edit(by, stage)
    _lock_journey(stage.journey_id)
    stage = Stage.objects.get(pk=stage.pk)
    snapshot = {
        **_stage_snapshot(stage),
        "id": stage.pk,
        "versions": stage.versions,
        "revisions": list(Revision.objects.filter(stage=stage).values_list("pk", flat=True)),
    }
    journey_id, name = stage.journey_id, stage.name
    stage.delete()
    _renumber(journey_id, _stage_order(journey_id))
    Journey.objects.filter(pk=journey_id).update(updated_at=timezone.now())
    Revision.objects.create(
        journey_id=journey_id,
        stage_name=name,
        action=Revision.Action.DELETE,
        before=snapshot,
        author=by,
    )
    journey = Journey.objects.select_related("owner_department").get(pk=journey_id)
    audit_record(
        actor=by,
        action="stage.delete",
        target=journey,
        department=journey.owner_department,
        detail={"stage": snapshot["id"], "name": name},
    )


# --- Restore ------------------------------------------------------------------------------


def _revision_record(revision: Revision):
    """The persona, journey or stage a revision changed; ValidationError if it is gone."""
    if revision.stage_id is not None:
        return Stage.objects.select_related("journey").get(pk=revision.stage_id)
    if revision.stage_name:
        raise ValidationError(
            gettext("The stage “%(name)s” was deleted: restore its deletion first.")
            % {"name": revision.stage_name}
        )
    if revision.journey_id is not None:
        return Journey.objects.get(pk=revision.journey_id)
    return Persona.objects.get(pk=revision.persona_id)


def _state_after(record, revision: Revision) -> dict:
    """Per cell, its value right after ``revision``: the latest logged value up to it, else
    the value before the first change after it; cells the log never touched are left out."""
    kind = record_kind(record)
    state: dict = {}
    later: dict = {}
    for row in _record_revisions(record).order_by("pk"):
        if row.field in CELLS[kind]:
            if row.pk <= revision.pk:
                state[row.field] = row.after
            else:
                later.setdefault(row.field, row.before)
        elif not row.field and isinstance(row.after, dict) and row.pk <= revision.pk:
            for field in CELLS[kind]:
                if field in row.after:
                    state[field] = row.after[field]
    return {**later, **state}


def _restore_cells(record, values: dict, *, by, revision: Revision) -> list[Revision]:
    locked = _locked(record)
    kind = record_kind(locked)
    written = []
    for field, value in values.items():
        value = _existing(CELLS[kind][field].kind, value)
        current = cell_value(locked, field)
        if current == value or (value is None and CELLS[kind][field].required):
            continue
        written.append(
            _write_cell(
                locked,
                field,
                value,
                before=current,
                action=Revision.Action.RESTORE,
                by=by,
                restored_from=revision,
            )
        )
    return written


def _recreate_stage(revision: Revision, *, by) -> list[Revision]:
    snapshot = revision.before or {}
    pk = snapshot.get("id")
    if pk is not None and Stage.objects.filter(pk=pk).exists():
        raise ValidationError(gettext("This stage has already been restored."))
    journey = _lock_journey(revision.journey_id)
    _require_edit(by, journey)
    cells = {
        field: _existing(spec.kind, snapshot.get(field))
        for field, spec in CELLS["stage"].items()
        if field in snapshot
    }
    stage = Stage(pk=pk, journey=journey, position=POSITION_OFFSET * 2)
    for field, value in cells.items():
        if CELLS["stage"][field].kind not in M2M_KINDS:
            cell_apply(stage, field, value)
    versions = snapshot.get("versions") or {}
    stage.versions = {field: versions.get(field, 0) + 1 for field in CELLS["stage"]}
    stage.save(force_insert=True)
    for field, value in cells.items():
        if CELLS["stage"][field].kind in M2M_KINDS:
            cell_apply(stage, field, value)
    order = _stage_order(journey.pk)
    order.remove(stage.pk)
    index = min(max(int(snapshot.get("position") or len(order) + 1), 1), len(order) + 1) - 1
    order.insert(index, stage.pk)
    _renumber(journey.pk, order)
    stage.position = index + 1
    Revision.objects.filter(pk__in=snapshot.get("revisions") or [], stage__isnull=True).update(
        stage=stage
    )
    Revision.objects.filter(pk=revision.pk).update(stage=stage)
    Journey.objects.filter(pk=journey.pk).update(updated_at=timezone.now())
    return [
        Revision.objects.create(
            **_record_links(stage),
            action=Revision.Action.RESTORE,
            after=_stage_snapshot(stage),
            restored_from=revision,
            author=by,
        )
    ]


@transaction.atomic
def revision_restore(*, revision: Revision, by, scope: str = "record") -> list[Revision]:
    """Bring a record (``scope="record"``) or one cell (``"cell"``) back to ``revision``.

    Each changed cell gets a new version and a ``restore`` revision, so an editor still
    holding the old version gets a conflict rather than silently overwriting the restore.
    A delete revision re-creates the stage at its old position, with its history.
    Returns the revisions written (empty when everything already reads like that).
    """
    if scope not in ("record", "cell"):
        raise ValidationError({"scope": [gettext("Restore a record or a cell.")]})
    if revision.action == Revision.Action.DELETE:
        return _recreate_stage(revision, by=by)
    record = _revision_record(revision)
    _require_edit(by, record)
    kind = record_kind(record)
    if scope == "cell":
        if revision.field == "position" and isinstance(record, Stage):
            if record.position == revision.after:
                return []
            stage_move(stage=record, position=revision.after, by=by)
            row = Revision.objects.filter(stage=record, action=Revision.Action.MOVE).latest("pk")
            Revision.objects.filter(pk=row.pk).update(
                action=Revision.Action.RESTORE, restored_from=revision
            )
            row.refresh_from_db()
            return [row]
        if revision.field not in CELLS[kind]:
            raise ValidationError(
                {"scope": [gettext("This revision changed no single cell; restore the record.")]}
            )
        values = {revision.field: revision.after}
    else:
        values = _state_after(record, revision)
    return _restore_cells(record, values, by=by, revision=revision)


# --- Sharing ------------------------------------------------------------------------------


def _shareable(record) -> Persona | Journey:
    if not isinstance(record, Persona | Journey):
        raise ValidationError(gettext("Only personas and journeys are shared."))
    return record


@transaction.atomic
def map_share(*, record, department: Department, can_edit: bool, by) -> Share:
    """Share a persona or journey with another department, to view or to co-edit.

    Managers of the owner department (and the administrator) only; audited by share_grant.
    """
    record = _shareable(record)
    if not can_share(by, record):
        raise PermissionDenied(gettext("Only managers of the owner department share this."))
    if department.pk == record.owner_department_id:
        raise ValidationError(
            {"department": [gettext("A record is not shared with its own department.")]}
        )
    return share_grant(obj=record, department=department, can_edit=can_edit, by=by)


@transaction.atomic
def map_unshare(*, record, department: Department, by) -> None:
    """Stop sharing a persona or journey with a department (managers of the owner only)."""
    record = _shareable(record)
    if not can_share(by, record):
        raise PermissionDenied(gettext("Only managers of the owner department share this."))
    share_revoke(obj=record, department=department, by=by)
