"""The editable cells of personas, journeys and stages: what each holds and how it is checked.

A cell is one field of a record that people edit in place; its value travels as JSON
(text, a number, a yes/no, an id or a sorted list of ids), so the same value serves the
form post, the version check, the revision log, the conflict view and the API.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, Model, OuterRef
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.org.models import Membership
from customers.models import Segment
from experience.models import ExperienceValue, Touchpoint
from journeys.models import Journey, Persona, Stage


@dataclass(frozen=True)
class CellSpec:
    """One editable field: its label, the editor it needs and the limits of its value."""

    field: str
    label: str
    kind: str  # line | text | color | emotion | choice | bool | user | segment | persona
    #            | touchpoints | values
    required: bool = False
    max_length: int | None = None


def _specs(*specs: CellSpec) -> dict[str, CellSpec]:
    return {spec.field: spec for spec in specs}


CELLS: dict[str, dict[str, CellSpec]] = {
    "persona": _specs(
        CellSpec("name", _("Persona name"), "line", required=True, max_length=200),
        CellSpec("initials", _("Initials"), "line", max_length=4),
        CellSpec("color", _("Colour"), "color"),
        CellSpec("profile", _("Profile"), "text"),
        CellSpec("goals", _("Goals"), "text"),
        CellSpec("pains", _("Pains"), "text"),
        CellSpec("situations", _("Life situations"), "text"),
        CellSpec("values", _("Values"), "text"),
        CellSpec("preferred_channels", _("Preferred channels"), "text"),
        CellSpec("quotes", _("Quotes from sales and stores"), "text"),
        CellSpec("segment", _("Segment"), "segment"),
        CellSpec("experience_values", _("Experience values that matter"), "values"),
    ),
    "journey": _specs(
        CellSpec("name", _("Journey name"), "line", required=True, max_length=200),
        CellSpec("description", _("Description"), "text"),
        CellSpec("persona", _("Persona"), "persona", required=True),
        CellSpec("is_template", _("Template"), "bool"),
    ),
    "stage": _specs(
        CellSpec("name", _("Stage"), "line", required=True, max_length=100),
        CellSpec("kind", _("Kind"), "choice"),
        CellSpec("customer_goal", _("Customer goal"), "text"),
        CellSpec("actions", _("Actions"), "text"),
        CellSpec("thoughts", _("Thoughts"), "text"),
        CellSpec("emotion", _("Emotion"), "emotion"),
        CellSpec("pain_points", _("Pain points"), "text"),
        CellSpec("opportunities", _("Opportunities"), "text"),
        CellSpec("kpi", _("KPI"), "line", max_length=200),
        CellSpec("owner", _("Person in charge"), "user"),
        CellSpec("touchpoints", _("Touchpoints"), "touchpoints"),
        CellSpec("experience_values", _("Experience values"), "values"),
    ),
}

MODELS: dict[str, type[Model]] = {"persona": Persona, "journey": Journey, "stage": Stage}
TEXT_KINDS = frozenset({"line", "text"})
FK_KINDS = frozenset({"user", "segment", "persona"})
M2M_KINDS = frozenset({"touchpoints", "values"})

EMOTIONS = {
    -2: _("very negative"),
    -1: _("negative"),
    0: _("neutral"),
    1: _("positive"),
    2: _("very positive"),
}
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
CELL_ID = re.compile(r"^(persona|journey|stage)-(\d+)-([a-z_]+)$")
TRUE_WORDS = frozenset({"1", "true", "on", "yes"})
FALSE_WORDS = frozenset({"", "0", "false", "off", "no"})


# --- Naming -------------------------------------------------------------------------------


def record_kind(record) -> str:
    """``"persona"``, ``"journey"`` or ``"stage"``; TypeError for anything else."""
    for kind, model in MODELS.items():
        if isinstance(record, model):
            return kind
    raise TypeError(f"Not a persona, journey or stage: {record!r}")


def record_model(kind: str) -> type[Model]:
    """The model of a kind of record; KeyError for an unknown kind."""
    return MODELS[kind]


def cell_spec(kind: str, field: str) -> CellSpec:
    """The spec of one cell; ValidationError naming the field when there is no such cell."""
    try:
        return CELLS[kind][field]
    except KeyError:
        raise ValidationError(
            {field or "field": [gettext("%(field)s is not an editable cell.") % {"field": field}]}
        ) from None


def cell_id(record, field: str) -> str:
    """The cell's id, also the suffix of its DOM id: ``"stage-12-actions"``."""
    return f"{record_kind(record)}-{record.pk}-{field}"


def parse_cell_id(value: str) -> tuple[str, int, str]:
    """``"stage-12-actions"`` → ``("stage", 12, "actions")``; ValueError if it is not one."""
    match = CELL_ID.match(value or "")
    if not match or match.group(3) not in CELLS[match.group(1)]:
        raise ValueError(
            f"Not a cell id: {value!r} (expected <persona|journey|stage>-<id>-<field>)"
        )
    return match.group(1), int(match.group(2)), match.group(3)


# --- Values -------------------------------------------------------------------------------


def cell_value(record, field: str):
    """The cell's value as JSON: text, int, bool, an id (or None) or a sorted list of ids."""
    spec = cell_spec(record_kind(record), field)
    if spec.kind in M2M_KINDS:
        if record.pk is None:
            return []
        cache = getattr(record, "_prefetched_objects_cache", {})
        if field in cache:
            return sorted(obj.pk for obj in cache[field])
        return sorted(getattr(record, field).values_list("pk", flat=True))
    if spec.kind in FK_KINDS:
        return getattr(record, f"{field}_id")
    value = getattr(record, field)
    if spec.kind == "bool":
        return bool(value)
    if spec.kind == "emotion":
        return int(value)
    return value or ""


def cell_input(spec: CellSpec, data):
    """The raw value of a form post (field ``value``; every ``value`` for lists of ids)."""
    if spec.kind in M2M_KINDS:
        return data.getlist("value")
    return data.get("value", "")


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def _as_id(spec: CellSpec, raw) -> int | None:
    if isinstance(raw, Model):
        return raw.pk
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise _invalid(spec.field, gettext("%(label)s: not an id.") % {"label": spec.label})
    try:
        return int(str(raw).strip())
    except ValueError:
        raise _invalid(
            spec.field,
            gettext("%(label)s: %(value)s is not an id.") % {"label": spec.label, "value": raw},
        ) from None


def _as_ids(spec: CellSpec, raw) -> list[int]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str | int | Model):
        raw = [raw]
    ids = {_as_id(spec, item) for item in raw}
    ids.discard(None)
    return sorted(ids)


def _clean_text(spec: CellSpec, raw) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise _invalid(spec.field, gettext("%(label)s must be text.") % {"label": spec.label})
    value = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if spec.kind == "line":
        value = " ".join(value.split())
    if "\x00" in value:
        raise _invalid(
            spec.field, gettext("%(label)s contains a NUL character.") % {"label": spec.label}
        )
    if spec.max_length is not None and len(value) > spec.max_length:
        raise _invalid(
            spec.field,
            gettext("%(label)s is too long: at most %(max)d characters (it has %(length)d).")
            % {"label": spec.label, "max": spec.max_length, "length": len(value)},
        )
    return value


def cell_clean(record, field: str, raw, *, user):
    """A submitted value checked and normalised to the cell's JSON value.

    Raises ``ValidationError({field: [message]})``: required cells must not be empty;
    segments, personas and touchpoints must be ones the user can see (touchpoints already
    on the stage may stay even if the user cannot see them); owners are active staff.
    """
    spec = cell_spec(record_kind(record), field)
    label = spec.label
    if spec.kind in TEXT_KINDS:
        value = _clean_text(spec, raw)
        if spec.required and not value:
            raise _invalid(field, gettext("%(label)s is required.") % {"label": label})
        return value
    if spec.kind == "color":
        value = str(raw or "").strip()
        if not COLOR.match(value):
            raise _invalid(
                field,
                gettext("%(label)s must be a colour like #2a6f97.") % {"label": label},
            )
        return value.lower()
    if spec.kind == "emotion":
        try:
            value = int(str(raw).strip().replace("−", "-"))
        except ValueError:
            value = None
        if value not in EMOTIONS:
            raise _invalid(
                field, gettext("%(label)s must be a whole number from −2 to +2.") % {"label": label}
            )
        return value
    if spec.kind == "choice":
        choices = dict(record._meta.get_field(field).choices)
        value = str(raw or "").strip()
        if value not in choices:
            raise _invalid(
                field,
                gettext("%(label)s: unknown choice %(value)s.") % {"label": label, "value": value},
            )
        return value
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw if raw is not None else "").strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _invalid(field, gettext("%(label)s must be yes or no.") % {"label": label})
    if spec.kind in FK_KINDS:
        pk = _as_id(spec, raw)
        if pk is None:
            if spec.required:
                raise _invalid(field, gettext("%(label)s is required.") % {"label": label})
            return None
        if not _fk_choices(spec, user).filter(pk=pk).exists():
            raise _invalid(
                field,
                gettext("%(label)s: #%(id)s does not exist or is not visible to you.")
                % {"label": label, "id": pk},
            )
        return pk
    ids = _as_ids(spec, raw)
    if spec.kind == "touchpoints":
        allowed = set(
            Touchpoint.objects.visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)
        )
        allowed.update(set(ids) & set(cell_value(record, field)))
    else:
        allowed = set(ExperienceValue.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [pk for pk in ids if pk not in allowed]
    if unknown:
        raise _invalid(
            field,
            gettext("%(label)s: %(ids)s do not exist or are not visible to you.")
            % {"label": label, "ids": ", ".join(f"#{pk}" for pk in unknown)},
        )
    return ids


def _fk_choices(spec: CellSpec, user):
    if spec.kind == "segment":
        return Segment.objects.visible_to(user)
    if spec.kind == "persona":
        return Persona.objects.visible_to(user)
    return staff_members()


def staff_members():
    """Active people with a membership in any department: who may own a stage."""
    return get_user_model().objects.filter(
        Exists(Membership.objects.filter(user=OuterRef("pk"))), is_active=True
    )


def cell_apply(record, field: str, value) -> None:
    """Put a clean value into the record: attribute, ``<field>_id`` or the M2M set.

    M2M cells are written at once (the record must be saved); the caller saves the rest.
    """
    spec = cell_spec(record_kind(record), field)
    if spec.kind in M2M_KINDS:
        getattr(record, field).set(value)
        getattr(record, "_prefetched_objects_cache", {}).pop(field, None)
    elif spec.kind in FK_KINDS:
        setattr(record, f"{field}_id", value)
    else:
        setattr(record, field, value)


def record_snapshot(record) -> dict:
    """Every cell of the record: ``{field: cell_value}``."""
    return {field: cell_value(record, field) for field in CELLS[record_kind(record)]}


# --- Reading values -----------------------------------------------------------------------


def _names(model, ids: Iterable[int], name) -> list[str]:
    ids = list(ids)
    found = {obj.pk: name(obj) for obj in model.objects.filter(pk__in=ids)}
    return [found.get(pk, gettext("(deleted #%(id)s)") % {"id": pk}) for pk in ids]


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def cell_display(kind: str, field: str, value) -> str:
    """The value as people read it in diffs, CSV and history: names for ids, labels for
    emotions and choices, yes/no."""
    spec = CELLS.get(kind, {}).get(field)
    if value is None or value == "" or value == []:
        return ""
    if spec is None:
        return str(value)
    if spec.kind == "emotion":
        try:
            number = int(value)
        except (TypeError, ValueError):
            return str(value)
        sign = "+" if number > 0 else ("−" if number < 0 else "")
        label = EMOTIONS.get(number, "")
        return f"{sign}{abs(number)} {label}" if label else str(value)
    if spec.kind == "bool":
        return gettext("yes") if value else gettext("no")
    if spec.kind == "choice":
        choices = dict(record_model(kind)._meta.get_field(field).choices)
        return str(choices.get(value, value))
    if spec.kind in FK_KINDS:
        model = {"user": get_user_model(), "segment": Segment, "persona": Persona}[spec.kind]
        name = _person if spec.kind == "user" else str
        return _names(model, [value], name)[0]
    if spec.kind in M2M_KINDS:
        model = Touchpoint if spec.kind == "touchpoints" else ExperienceValue
        return ", ".join(_names(model, sorted(value), str))
    return str(value)


# --- Merging and comparing texts ----------------------------------------------------------


def _lines(text: str) -> list[str]:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n") if text else []


def _hunks(base: list[str], side: list[str]) -> list[tuple[int, int, int, int]]:
    matcher = difflib.SequenceMatcher(None, base, side, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _side_region(side: list[str], hunks, lo: int, hi: int, base: list[str]) -> list[str]:
    """What one side made of base lines ``lo:hi``, given its hunks inside that range."""
    if not hunks:
        return base[lo:hi]
    first, last = hunks[0], hunks[-1]
    start = first[2] - (first[0] - lo)
    end = last[3] + (hi - last[1])
    return side[start:end]


def text_merge(base: str, theirs: str, mine: str) -> str:
    """A line-level three-way merge, offered as a suggestion in the conflict view.

    Changes of one side that the other left alone are both kept; where both changed the
    same lines, their version comes first, then the lines of mine that it lacks.
    """
    if theirs == mine or mine == base:
        return theirs
    if theirs == base:
        return mine
    base_lines, their_lines, my_lines = _lines(base), _lines(theirs), _lines(mine)
    tagged = sorted(
        [(h, "theirs") for h in _hunks(base_lines, their_lines)]
        + [(h, "mine") for h in _hunks(base_lines, my_lines)],
        key=lambda item: (item[0][0], item[0][1]),
    )
    merged: list[str] = []
    position = 0
    index = 0
    while index < len(tagged):
        (lo, hi, _j1, _j2), _side = tagged[index]
        group = [tagged[index]]
        index += 1
        while index < len(tagged):
            (next_lo, next_hi, _j1, _j2), _side = tagged[index]
            overlaps = next_lo < hi
            same_insertion_point = next_lo == next_hi == lo == hi
            if not (overlaps or same_insertion_point):
                break
            hi = max(hi, next_hi)
            group.append(tagged[index])
            index += 1
        merged.extend(base_lines[position:lo])
        their_hunks = [hunk for hunk, side in group if side == "theirs"]
        my_hunks = [hunk for hunk, side in group if side == "mine"]
        their_part = _side_region(their_lines, their_hunks, lo, hi, base_lines)
        my_part = _side_region(my_lines, my_hunks, lo, hi, base_lines)
        if not my_hunks:
            merged.extend(their_part)
        elif not their_hunks:
            merged.extend(my_part)
        else:
            merged.extend(their_part)
            merged.extend(line for line in my_part if line not in their_part)
        position = hi
    merged.extend(base_lines[position:])
    return "\n".join(merged)


TOKEN = re.compile(r"[A-Za-z0-9_]+|\s+|.", re.DOTALL)


def diff_html(before: str, after: str) -> SafeString:
    """Word-level diff (character-level for Japanese) marked with ``<del>``/``<ins>``.

    Every piece of text is escaped; only the markers are markup.
    """
    old = TOKEN.findall(str(before or ""))
    new = TOKEN.findall(str(after or ""))
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            parts.append(escape("".join(old[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f"<del>{escape(''.join(old[i1:i2]))}</del>")
        if j2 > j1:
            parts.append(f"<ins>{escape(''.join(new[j1:j2]))}</ins>")
    return mark_safe("".join(parts))  # every piece above is escaped
