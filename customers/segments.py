"""Segments: a JSON rule tree, compiled to one SQL query over customers, and its services.

Rule tree
=========
A node is a group, a negation or a condition::

    {"op": "and" | "or", "children": [node, ...]}
    {"op": "not", "child": node}
    {"type": "<condition type>", ...params}

An empty tree (``{}``) and an empty ``and`` group match every customer; an empty ``or``
group matches nobody. Trees may nest up to ``MAX_DEPTH`` levels with at most ``MAX_NODES``
nodes. The shape written by the issue-2 demo seed (``{"op": "and", "rules": [...]}`` and
``{"op": "not", "rules": [node]}``) is accepted and normalised to the shape above.

Core condition types (params in brackets, ``?`` = optional):

- ``attribute`` [key, op, value]: a custom attribute of ``Customer.attributes`` declared in
  ``AttributeDefinition``; the allowed ops follow the attribute's type (see ``ATTRIBUTE_OPS``).
- ``profile`` [field, value | min?, max?]: ``lifecycle_stage``, ``language``, ``prefecture``
  or ``gender`` in a list of values, or ``age`` between min and max years (from birth date).
- ``identity`` [kind]: has an identifier of that kind.
- ``consent`` [channel, status]: consent for the channel is currently granted / withdrawn.
- ``metric`` [field, op, value]: a ``CustomerMetrics`` figure compared with a number
  (eq/ne/gt/gte/lt/lte), or a date field with ``within_days`` / ``older_than_days`` N.
- ``nps`` [category]: promoter (9–10), passive (7–8) or detractor (0–6) by the last answer.
- ``life_event`` [kind, within_days?]: a life situation detected (within N days).
- ``important_date`` [kind]: has an important date of that kind on file.
- ``segment`` [segment, member?]: in (or, with ``member: false``, not in) another segment's
  materialised membership; references may not form a cycle.

Outer circles register more types with :func:`register_condition` (circle ② adds
``event`` and ``order`` in ``experience/segment_conditions.py``).

Semantics of NOT and missing data
=================================
``not`` is the set complement among unmerged customers: ``NOT (last_nps >= 7)`` includes
customers who never answered a survey or have no metrics row, because they do not satisfy
"last NPS ≥ 7". Every condition therefore compiles to a two-valued SQL predicate (missing
JSON keys and NULL metrics make the condition false, never unknown), so AND/OR/NOT behave
as in set algebra. ``ne`` on an attribute means ``not eq`` and so includes customers
without the attribute; ``older_than_days`` needs the date to be set (a customer who never
ordered is not "last ordered more than 90 days ago"; write ``not within_days`` for that).

Freshness of membership
=======================
Membership is materialised in ``SegmentMembership``. ``Segment.computed_at`` is when the
rules were last evaluated over every customer (``segment_refresh``). Dynamic segments are
also kept current *between* full computations: when a customer's data changes, the caller
runs ``customers.services.customers_derived_refresh``, whose ``segment_membership_sync``
applies that customer's entries and exits at once and moves ``member_count`` with them. So
``member_count`` and the members are live; only rules on elapsed time wait for the next
full computation, which ``segments_refresh_stale`` does every 15 minutes for segments last
computed over an hour ago.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import math
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.deletion import ProtectedError
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, Role
from config.org.selectors import departments_where
from config.org.services import audit_record, share_grant, share_revoke
from customers.models import (
    AttributeDefinition,
    Channel,
    Consent,
    Customer,
    CustomerMetrics,
    Identity,
    ImportantDate,
    LifecycleStage,
    LifeEvent,
    Segment,
    SegmentMembership,
)

logger = logging.getLogger(__name__)

MAX_DEPTH = 6
MAX_NODES = 60
GROUP_OPS = ("and", "or")


class SegmentRuleError(ValueError):
    """A rule tree is invalid; ``path`` names the bad node, e.g. ``rules.children[2].value``."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class SegmentInUse(Exception):
    """A segment cannot be deleted while campaigns target it."""


# --------------------------------------------------------------------------------------------
# Registry of condition types
# --------------------------------------------------------------------------------------------


@dataclass
class CompileContext:
    """What a compiler may rely on: one clock for the whole tree, caches for lookups."""

    now: dt.datetime = field(default_factory=timezone.now)
    cache: dict = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return timezone.localdate(self.now)

    def days_ago(self, days: int) -> dt.datetime:
        return self.now - dt.timedelta(days=days)


@dataclass
class ValidationContext:
    """Who is validating (for choices scoped to the user) and which segment is being edited."""

    user: Any = None
    segment_id: int | None = None
    cache: dict = field(default_factory=dict)


Compiler = Callable[[dict, CompileContext], Q]
Choices = list[tuple[Any, str]]


@dataclass(frozen=True)
class ConditionType:
    """One kind of leaf condition: how it compiles, its label and the JSON schema of params.

    ``schema`` is a JSON-schema object (``type``/``enum``/``minimum``/``maximum``/``items``
    per property, ``required``) checked by :func:`validate_rules` and rendered by the rule
    builder. ``choices(user)`` returns choices known only at run time (event types,
    attribute keys, visible segments) per param name; they are validated too. ``check``
    runs cross-param checks; ``describe`` renders the condition in plain language.
    """

    name: str
    compiler: Compiler
    label: str | Promise
    schema: dict
    choices: Callable[[Any], dict[str, Choices]] | None = None
    check: Callable[[dict, str, ValidationContext], None] | None = None
    describe: Callable[[dict], str] | None = None


_CONDITIONS: dict[str, ConditionType] = {}


def register_condition(
    type_name: str,
    compiler: Compiler,
    *,
    label: str | Promise,
    schema: dict,
    choices: Callable[[Any], dict[str, Choices]] | None = None,
    check: Callable[[dict, str, ValidationContext], None] | None = None,
    describe: Callable[[dict], str] | None = None,
) -> None:
    """Make a condition type available to rule trees; outer circles call this at app start."""
    _CONDITIONS[type_name] = ConditionType(
        name=type_name,
        compiler=compiler,
        label=label,
        schema=schema,
        choices=choices,
        check=check,
        describe=describe,
    )


def condition_types() -> dict[str, ConditionType]:
    """Registered condition types by name, in registration order."""
    return dict(_CONDITIONS)


def condition_choices(condition: ConditionType, user, ctx: ValidationContext | None = None):
    """Run-time choices of a condition type (cached per validation)."""
    if condition.choices is None:
        return {}
    cache = ctx.cache if ctx is not None else {}
    key = ("choices", condition.name)
    if key not in cache:
        cache[key] = condition.choices(user)
    return cache[key]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
}


def _check_value(value, spec: dict, path: str, choices: Choices | None = None) -> None:
    expected = spec.get("type")
    if expected:
        types = _JSON_TYPES[expected]
        if (isinstance(value, bool) and expected != "boolean") or not isinstance(value, types):
            raise SegmentRuleError(path, f"expected {_TYPE_WORDS[expected]}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SegmentRuleError(path, "expected a finite number")
    allowed = [c[0] for c in choices] if choices is not None else spec.get("enum")
    if allowed is not None and expected != "array" and value not in allowed:
        shown = ", ".join(str(a) for a in allowed[:20]) or "(none defined)"
        raise SegmentRuleError(path, f"{value!r} is not one of: {shown}")
    if "minimum" in spec and value < spec["minimum"]:
        raise SegmentRuleError(path, f"must be at least {spec['minimum']}")
    if "maximum" in spec and value > spec["maximum"]:
        raise SegmentRuleError(path, f"must be at most {spec['maximum']}")
    if expected == "array":
        if spec.get("minItems") and len(value) < spec["minItems"]:
            raise SegmentRuleError(path, "choose at least one value")
        for index, item in enumerate(value):
            item_spec = dict(spec.get("items", {}))
            _check_value(item, item_spec, f"{path}[{index}]", choices)


def _validate_condition(node: dict, path: str, ctx: ValidationContext) -> dict:
    type_name = node.get("type")
    condition = _CONDITIONS.get(type_name) if isinstance(type_name, str) else None
    if condition is None:
        known = ", ".join(_CONDITIONS)
        raise SegmentRuleError(f"{path}.type", f"unknown condition type {type_name!r} ({known})")
    schema = condition.schema
    properties = schema.get("properties", {})
    params = {k: v for k, v in node.items() if k != "type"}
    for key in params:
        if key not in properties:
            raise SegmentRuleError(f"{path}.{key}", f"unknown parameter of {type_name!r}")
    for key in schema.get("required", []):
        if params.get(key) in (None, "", []):
            raise SegmentRuleError(f"{path}.{key}", "is required")
    dynamic = condition_choices(condition, ctx.user, ctx)
    for key, value in params.items():
        if value is None:
            continue
        _check_value(value, properties[key], f"{path}.{key}", dynamic.get(key))
    if condition.check is not None:
        condition.check(params, path, ctx)
    return {"type": type_name, **params}


def _normalise(node, path: str, depth: int, counter: list[int], ctx: ValidationContext) -> dict:
    if not isinstance(node, dict):
        raise SegmentRuleError(path, "expected an object")
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise SegmentRuleError(path, f"too many conditions (at most {MAX_NODES})")
    if depth > MAX_DEPTH:
        raise SegmentRuleError(path, f"nested too deeply (at most {MAX_DEPTH} levels)")
    if "type" in node:
        return _validate_condition(node, path, ctx)
    op = node.get("op")
    if op in GROUP_OPS:
        key = "children" if "children" in node else "rules" if "rules" in node else "children"
        children = node.get(key, [])
        if not isinstance(children, list):
            raise SegmentRuleError(f"{path}.{key}", "expected a list")
        extra = set(node) - {"op", key}
        if extra:
            raise SegmentRuleError(f"{path}.{sorted(extra)[0]}", "unknown key of a group")
        return {
            "op": op,
            "children": [
                _normalise(child, f"{path}.children[{i}]", depth + 1, counter, ctx)
                for i, child in enumerate(children)
            ],
        }
    if op == "not":
        if "child" in node:
            child, child_path = node["child"], f"{path}.child"
        elif isinstance(node.get("rules"), list) and len(node["rules"]) == 1:
            child, child_path = node["rules"][0], f"{path}.child"
        else:
            raise SegmentRuleError(f"{path}.child", "a NOT needs exactly one child")
        return {"op": "not", "child": _normalise(child, child_path, depth + 1, counter, ctx)}
    if not node:
        return {"op": "and", "children": []}
    raise SegmentRuleError(path, 'expected "op" (and, or, not) or a condition "type"')


def validate_rules(rules: dict, *, user=None, segment: Segment | None = None) -> dict:
    """Check a rule tree and return it normalised; raise ``SegmentRuleError`` naming the path.

    ``user`` limits run-time choices to what that user may see (segments of other
    departments are unknown to them); ``segment`` is the segment being edited, so that a
    reference back to it (a cycle) is refused.
    """
    if isinstance(rules, str):
        try:
            rules = json.loads(rules)
        except ValueError as exc:
            raise SegmentRuleError("rules", f"not valid JSON ({exc})") from exc
    if rules is None:
        rules = {}
    ctx = ValidationContext(user=user, segment_id=segment.pk if segment is not None else None)
    return _normalise(rules, "rules", 1, [0], ctx)


def iter_conditions(rules: dict) -> Iterable[dict]:
    """Every leaf condition of a normalised tree, depth first."""
    if "type" in rules:
        yield rules
    elif rules.get("op") == "not":
        yield from iter_conditions(rules["child"])
    else:
        for child in rules.get("children", []):
            yield from iter_conditions(child)


_PATH_STEP = re.compile(r"\.children\[(\d+)\]|\.child")


def path_label(path: str) -> str:
    """A rule path in the builder's words: ``rules.children[1].children[0].days`` →
    "condition 2.1 (days)"."""
    numbers = [str(int(m.group(1)) + 1) for m in _PATH_STEP.finditer(path) if m.group(1)]
    tail = path.rsplit(".", 1)[-1] if "." in path else ""
    where = gettext("condition %(number)s") % {"number": ".".join(numbers)} if numbers else ""
    if tail and not tail.startswith("child"):
        where = f"{where} ({tail})" if where else tail
    return where or gettext("the rules")


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------


# An explicit "everyone": Django drops an empty Q() from ``Q() | x`` and ``~Q()``, which
# would turn "NOT everyone" into everyone and "everyone OR x" into x.
_EVERYONE = Q(pk__isnull=False)
_NOBODY = Q(pk__in=[])


def _compile(node: dict, ctx: CompileContext) -> Q:
    if "type" in node:
        params = {k: v for k, v in node.items() if k != "type"}
        return _CONDITIONS[node["type"]].compiler(params, ctx)
    if node["op"] == "not":
        return ~_compile(node["child"], ctx)
    children = [_compile(child, ctx) for child in node["children"]]
    if not children:
        return _EVERYONE if node["op"] == "and" else _NOBODY
    combined = children[0]
    for child in children[1:]:
        combined = combined & child if node["op"] == "and" else combined | child
    return combined


def segment_queryset(rules: dict, *, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The customers a rule tree describes, as ONE SQL query (merged profiles excluded).

    Metric conditions join ``CustomerMetrics``; identities, consents, life events, events
    and memberships are ``EXISTS`` sub-queries, so the database plans it as one statement.
    """
    tree = validate_rules(rules)
    ctx = CompileContext(now=now or timezone.now())
    return Customer.objects.filter(merged_into__isnull=True).filter(_compile(tree, ctx))


def segment_count(rules: dict) -> int:
    """How many customers the rule tree describes right now."""
    return segment_queryset(rules).count()


# --------------------------------------------------------------------------------------------
# Core condition types
# --------------------------------------------------------------------------------------------

COMPARISONS = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
COMPARISON_SIGNS = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "contains": "∋",
    "in": "∈",
    "within_days": "within days",
    "older_than_days": "older than days",
}
ATTRIBUTE_OPS = {
    AttributeDefinition.Type.TEXT: ("eq", "ne", "contains", "in"),
    AttributeDefinition.Type.NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "in"),
    AttributeDefinition.Type.BOOLEAN: ("eq", "ne"),
    AttributeDefinition.Type.DATE: ("eq", "ne", "gt", "gte", "lt", "lte"),
    AttributeDefinition.Type.CHOICE: ("eq", "ne", "in"),
}
ALL_ATTRIBUTE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in")


def _attribute_types(cache: dict) -> dict[str, AttributeDefinition]:
    if "attributes" not in cache:
        cache["attributes"] = {a.key: a for a in AttributeDefinition.objects.all()}
    return cache["attributes"]


def _compile_attribute(params: dict, ctx: CompileContext) -> Q:
    key, op, value = params["key"], params["op"], params.get("value")
    path = f"attributes__{key}"
    # has_key and "not JSON null" make the predicate two-valued (see the module docstring).
    has_key = Q(**{"attributes__has_key": key})
    if op in ("eq", "ne", "in") and _never_matches_json_null(value if op == "in" else [value]):
        # Equality with strings or numbers is already false for a JSON null, so the key
        # test alone keeps it two-valued: one JSON evaluation per row fewer (B2).
        values = value if op == "in" else [value]
        if connection.vendor == "sqlite":
            equal = Q(_JsonScalarIn(key, values))
        else:
            equal = has_key & Q(**{f"{path}__{'in' if op == 'in' else 'exact'}": value})
        return ~equal if op == "ne" else equal
    present = has_key & ~Q(**{path: None})
    if op == "ne":
        return ~(present & Q(**{path: value}))
    if op == "contains":
        return present & Q(**{f"{path}__icontains": value})
    if op == "in":
        return present & Q(**{f"{path}__in": value})
    return present & Q(**{f"{path}__{COMPARISONS[op]}": value})


class _JsonScalarIn(Func):
    """SQLite: ``COALESCE(JSON_EXTRACT(attributes, '$."key"') IN (v, …), 0)``, two-valued.

    For strings and numbers only (see ``_never_matches_json_null``): ``JSON_EXTRACT`` gives
    a JSON string as text and a number as a number, a missing key or JSON null as NULL, so
    one JSON evaluation per row answers "has the key and equals one of the values" — where
    Django's key transform evaluates the JSON three times (``JSON_TYPE`` for the key test,
    ``JSON_TYPE`` again and ``JSON_EXTRACT`` in a ``CASE``) and each value once more (B2).
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, key: str, values: list) -> None:
        path = f"$.{json.dumps(key)}"  # a key that looks like a number is still a key
        super().__init__(F("attributes"), Value(path), *(Value(v) for v in values))

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for argument in self.get_source_expressions():
            sql, argument_params = compiler.compile(argument)
            parts.append(sql)
            params.extend(argument_params)
        column, path, *values = parts
        return f"COALESCE(JSON_EXTRACT({column}, {path}) IN ({', '.join(values)}), 0)", params


def _never_matches_json_null(values) -> bool:
    """Strings and numbers only, none of them the text "null" (which SQLite's JSON key
    transform yields for a JSON null, so ``= 'null'`` would match it)."""
    return isinstance(values, list) and all(
        (isinstance(v, str) and v != "null")
        or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in values
    )


def _check_attribute(params: dict, path: str, ctx: ValidationContext) -> None:
    definition = _attribute_types(ctx.cache).get(params["key"])
    if definition is None:
        raise SegmentRuleError(f"{path}.key", f"no attribute {params['key']!r} is defined")
    op = params["op"]
    if op not in ATTRIBUTE_OPS[definition.type]:
        allowed = ", ".join(ATTRIBUTE_OPS[definition.type])
        raise SegmentRuleError(
            f"{path}.op", f"{op!r} does not apply to a {definition.type} attribute ({allowed})"
        )
    value = params.get("value")
    value_path = f"{path}.value"
    if value is None:
        raise SegmentRuleError(value_path, "is required")
    items = value if op == "in" else [value]
    if op == "in" and not isinstance(value, list):
        raise SegmentRuleError(value_path, "expected a list")
    for index, item in enumerate(items):
        where = f"{value_path}[{index}]" if op == "in" else value_path
        if definition.type == AttributeDefinition.Type.NUMBER:
            ok = isinstance(item, int | float) and not isinstance(item, bool)
            ok = ok and math.isfinite(item)
            expected = "a finite number"
        elif definition.type == AttributeDefinition.Type.BOOLEAN:
            ok, expected = isinstance(item, bool), "true or false"
        elif definition.type == AttributeDefinition.Type.DATE:
            ok, expected = _is_iso_date(item), "a date (YYYY-MM-DD)"
        else:
            ok, expected = isinstance(item, str), "a string"
        if not ok:
            raise SegmentRuleError(where, f"expected {expected}")
        is_choice = definition.type == AttributeDefinition.Type.CHOICE
        if is_choice and definition.choices and item not in definition.choices:
            raise SegmentRuleError(
                where, f"{item!r} is not one of: {', '.join(map(str, definition.choices))}"
            )


def _is_iso_date(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _attribute_choices(user) -> dict[str, Choices]:
    return {"key": [(a.key, a.label) for a in AttributeDefinition.objects.order_by("key")]}


register_condition(
    "attribute",
    _compile_attribute,
    label=_("Custom attribute"),
    schema={
        "type": "object",
        "properties": {
            "key": {"type": "string", "title": _("Attribute")},
            "op": {"type": "string", "enum": list(ALL_ATTRIBUTE_OPS), "title": _("Comparison")},
            "value": {"title": _("Value")},
        },
        "required": ["key", "op", "value"],
    },
    choices=_attribute_choices,
    check=_check_attribute,
    describe=lambda p: (
        gettext("attribute %(key)s %(op)s %(value)s")
        % {"key": p["key"], "op": COMPARISON_SIGNS[p["op"]], "value": _show(p.get("value"))}
    ),
)

PROFILE_FIELDS = ("lifecycle_stage", "language", "prefecture", "gender", "age")


def _profile_choices(user) -> dict[str, Choices]:
    return {}


def _age_bounds(ctx: CompileContext, years: int) -> dt.date:
    today = ctx.today
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _compile_profile(params: dict, ctx: CompileContext) -> Q:
    if params["field"] == "age":
        q = Q(birth_date__isnull=False)
        if params.get("min") is not None:
            q &= Q(birth_date__lte=_age_bounds(ctx, params["min"]))
        if params.get("max") is not None:
            q &= Q(birth_date__gt=_age_bounds(ctx, params["max"] + 1))
        return q
    return Q(**{f"{params['field']}__in": params["value"]})


def _check_profile(params: dict, path: str, ctx: ValidationContext) -> None:
    if params["field"] == "age":
        if params.get("min") is None and params.get("max") is None:
            raise SegmentRuleError(f"{path}.min", "give a minimum or a maximum age")
        if params.get("value"):
            raise SegmentRuleError(f"{path}.value", "age takes min and max, not a value")
        return
    value = params.get("value")
    if not value:
        raise SegmentRuleError(f"{path}.value", "choose at least one value")
    if not isinstance(value, list):
        raise SegmentRuleError(f"{path}.value", "expected a list")
    allowed = {
        "lifecycle_stage": LifecycleStage.values,
        "language": [code for code, _name in Customer._meta.get_field("language").choices],
        "gender": Customer.Gender.values,
    }.get(params["field"])
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise SegmentRuleError(f"{path}.value[{index}]", "expected a string")
        if allowed is not None and item not in allowed:
            raise SegmentRuleError(
                f"{path}.value[{index}]", f"{item!r} is not one of: {', '.join(allowed)}"
            )


def _describe_profile(p: dict) -> str:
    if p["field"] == "age":
        return gettext("age %(min)s–%(max)s") % {
            "min": p.get("min") if p.get("min") is not None else "",
            "max": p.get("max") if p.get("max") is not None else "",
        }
    return gettext("%(field)s is one of %(values)s") % {
        "field": p["field"].replace("_", " "),
        "values": _show(p.get("value")),
    }


register_condition(
    "profile",
    _compile_profile,
    label=_("Profile"),
    schema={
        "type": "object",
        "properties": {
            "field": {"type": "string", "enum": list(PROFILE_FIELDS), "title": _("Field")},
            "value": {"type": "array", "items": {"type": "string"}, "title": _("Values")},
            "min": {"type": "integer", "minimum": 0, "maximum": 150, "title": _("Minimum age")},
            "max": {"type": "integer", "minimum": 0, "maximum": 150, "title": _("Maximum age")},
        },
        "required": ["field"],
    },
    check=_check_profile,
    describe=_describe_profile,
)


register_condition(
    "identity",
    lambda p, ctx: Q(Exists(Identity.objects.filter(customer=OuterRef("pk"), kind=p["kind"]))),
    label=_("Has identifier"),
    schema={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": Identity.Kind.values, "title": _("Kind")},
        },
        "required": ["kind"],
    },
    describe=lambda p: gettext("has a %(kind)s identifier") % {"kind": p["kind"]},
)

register_condition(
    "consent",
    lambda p, ctx: Q(
        Exists(
            Consent.objects.filter(
                customer=OuterRef("pk"),
                channel=p["channel"],
                status=p.get("status") or Consent.Status.GRANTED,
            )
        )
    ),
    label=_("Consent"),
    schema={
        "type": "object",
        "properties": {
            "channel": {"type": "string", "enum": Channel.values, "title": _("Channel")},
            "status": {
                "type": "string",
                "enum": Consent.Status.values,
                "title": _("Status"),
                "default": Consent.Status.GRANTED,
            },
        },
        "required": ["channel"],
    },
    describe=lambda p: (
        gettext("%(channel)s consent %(status)s")
        % {"channel": p["channel"], "status": p.get("status") or "granted"}
    ),
)

NUMBER_METRICS = (
    "order_count",
    "revenue_total",
    "average_order_value",
    "last_nps",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "lead_score",
    "event_count",
    "identity_count",
)
DATE_METRICS = ("last_order_at", "first_order_at", "last_event_at")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
DATE_OPS = ("within_days", "older_than_days")


def _compile_metric(params: dict, ctx: CompileContext) -> Q:
    column, op, value = f"metrics__{params['field']}", params["op"], params["value"]
    if op == "within_days":
        return Q(**{f"{column}__gte": ctx.days_ago(value)})
    if op == "older_than_days":
        return Q(**{f"{column}__lt": ctx.days_ago(value)})
    if op == "ne":
        # Two-valued: a missing figure is "not equal" too (the NOT of eq).
        return ~_compile_metric({**params, "op": "eq"}, ctx)
    # Django folds a bound outside an integer column's range into TRUE ("last_nps >= -1"),
    # which would let NULL figures and missing metrics rows in: require the figure.
    present = Q(**{f"{column}__isnull": False})
    is_integer = isinstance(CustomerMetrics._meta.get_field(params["field"]), IntegerField)
    if is_integer and value != int(value):
        # Django truncates a fraction for an integer column (order_count = 2.5 became = 2):
        # compare with the whole number on the right side of it instead.
        if op == "eq":
            return _NOBODY
        op, value = ("gt", math.floor(value)) if op in ("gt", "gte") else ("lt", math.ceil(value))
    return present & Q(**{f"{column}__{COMPARISONS[op]}": value})


def _check_metric(params: dict, path: str, ctx: ValidationContext) -> None:
    is_date = params["field"] in DATE_METRICS
    allowed = DATE_OPS if is_date else NUMBER_OPS
    if params["op"] not in allowed:
        raise SegmentRuleError(
            f"{path}.op",
            f"{params['op']!r} does not apply to {params['field']} ({', '.join(allowed)})",
        )
    if is_date and (not isinstance(params["value"], int) or params["value"] < 0):
        raise SegmentRuleError(f"{path}.value", "expected a whole number of days")


register_condition(
    "metric",
    _compile_metric,
    label=_("Metric"),
    schema={
        "type": "object",
        "properties": {
            "field": {
                "type": "string",
                "enum": [*NUMBER_METRICS, *DATE_METRICS],
                "title": _("Metric"),
            },
            "op": {"type": "string", "enum": [*NUMBER_OPS, *DATE_OPS], "title": _("Comparison")},
            "value": {"type": "number", "title": _("Value")},
        },
        "required": ["field", "op", "value"],
    },
    check=_check_metric,
    describe=lambda p: (
        gettext("%(field)s %(op)s %(value)s")
        % {
            "field": p["field"].replace("_", " "),
            "op": COMPARISON_SIGNS[p["op"]],
            "value": _show(p["value"]),
        }
    ),
)

NPS_RANGES = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}

register_condition(
    "nps",
    lambda p, ctx: Q(
        metrics__last_nps__gte=NPS_RANGES[p["category"]][0],
        metrics__last_nps__lte=NPS_RANGES[p["category"]][1],
    ),
    label=_("NPS category"),
    schema={
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": list(NPS_RANGES), "title": _("Category")},
        },
        "required": ["category"],
    },
    describe=lambda p: gettext("last NPS answer: %(category)s") % {"category": p["category"]},
)


def _compile_life_event(params: dict, ctx: CompileContext) -> Q:
    events = LifeEvent.objects.filter(customer=OuterRef("pk"), kind=params["kind"])
    if params.get("within_days") is not None:
        events = events.filter(detected_at__gte=ctx.days_ago(params["within_days"]))
    return Q(Exists(events))


register_condition(
    "life_event",
    _compile_life_event,
    label=_("Life situation"),
    schema={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": LifeEvent.Kind.values, "title": _("Situation")},
            "within_days": {"type": "integer", "minimum": 1, "title": _("Within days")},
        },
        "required": ["kind"],
    },
    describe=lambda p: (
        gettext("life situation %(kind)s within %(days)s days")
        % {"kind": p["kind"], "days": p["within_days"]}
        if p.get("within_days")
        else gettext("life situation %(kind)s") % {"kind": p["kind"]}
    ),
)

register_condition(
    "important_date",
    lambda p, ctx: Q(Exists(ImportantDate.objects.filter(customer=OuterRef("pk"), kind=p["kind"]))),
    label=_("Important date on file"),
    schema={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ImportantDate.Kind.values, "title": _("Kind")},
        },
        "required": ["kind"],
    },
    describe=lambda p: gettext("has an important date: %(kind)s") % {"kind": p["kind"]},
)


def _segment_choices(user) -> dict[str, Choices]:
    segments = Segment.objects.all() if user is None else Segment.objects.visible_to(user)
    return {"segment": [(s.pk, s.name) for s in segments.order_by("name").only("pk", "name")]}


def _check_segment(params: dict, path: str, ctx: ValidationContext) -> None:
    """Refuse references that lead back to the segment being edited (a cycle)."""
    if ctx.segment_id is None:
        return
    seen: set[int] = set()
    pending = [params["segment"]]
    while pending:
        current = pending.pop()
        if current == ctx.segment_id:
            raise SegmentRuleError(
                f"{path}.segment", "this reference would make the segment depend on itself"
            )
        if current in seen:
            continue
        seen.add(current)
        rules = Segment.objects.filter(pk=current).values_list("rules", flat=True).first()
        pending.extend(referenced_segment_ids(rules or {}))


def referenced_segment_ids(rules) -> list[int]:
    """Ids of the segments a rule tree refers to, at any depth."""
    found: list[int] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "segment" and isinstance(node.get("segment"), int):
                found.append(node["segment"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rules)
    return found


def _compile_segment(params: dict, ctx: CompileContext) -> Q:
    inside = Q(
        Exists(
            SegmentMembership.objects.filter(segment_id=params["segment"], customer=OuterRef("pk"))
        )
    )
    return inside if params.get("member", True) else ~inside


register_condition(
    "segment",
    _compile_segment,
    label=_("Segment membership"),
    schema={
        "type": "object",
        "properties": {
            "segment": {"type": "integer", "title": _("Segment")},
            "member": {"type": "boolean", "title": _("Is a member"), "default": True},
        },
        "required": ["segment"],
    },
    choices=_segment_choices,
    check=_check_segment,
    describe=lambda p: (
        (
            gettext("in segment #%(id)s")
            if p.get("member", True)
            else gettext("not in segment #%(id)s")
        )
        % {"id": p["segment"]}
    ),
)


def _show(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    return str(value)


def describe_rules(rules: dict, *, segment_names: dict[int, str] | None = None) -> str:
    """The rule tree in plain language, for detail pages and lists."""
    segment_names = segment_names or {}

    def text(node: dict, top: bool) -> str:
        if "type" in node:
            condition = _CONDITIONS.get(node["type"])
            params = {k: v for k, v in node.items() if k != "type"}
            if node["type"] == "segment" and params.get("segment") in segment_names:
                name = segment_names[params["segment"]]
                return (
                    gettext("in segment “%(name)s”")
                    if params.get("member", True)
                    else gettext("not in segment “%(name)s”")
                ) % {"name": name}
            if condition is None:
                return node["type"]
            if condition.describe is not None:
                return condition.describe(params)
            return f"{condition.label}: {_show(params)}"
        if node["op"] == "not":
            return gettext("NOT (%(inner)s)") % {"inner": text(node["child"], False)}
        if not node["children"]:
            return gettext("everyone") if node["op"] == "and" else gettext("nobody")
        # Outside the f-string: xgettext does not see calls inside one.
        word = gettext("AND") if node["op"] == "and" else gettext("OR")
        joiner = f" {word} "
        inner = joiner.join(text(child, False) for child in node["children"])
        return inner if top or len(node["children"]) == 1 else f"({inner})"

    try:
        tree = validate_rules(rules)
    except SegmentRuleError as exc:
        return gettext("Invalid rules: %(error)s") % {"error": exc}
    return text(tree, True)


# --------------------------------------------------------------------------------------------
# Membership
# --------------------------------------------------------------------------------------------


def segment_contains(*, segment: Segment, customer_id: int) -> bool:
    """Is the customer in the segment now? Static: the snapshot; dynamic: the live rules."""
    if segment.kind == Segment.Kind.STATIC:
        return SegmentMembership.objects.filter(segment=segment, customer_id=customer_id).exists()
    return segment_queryset(segment.rules).filter(pk=customer_id).exists()


@transaction.atomic
def segment_refresh(*, segment: Segment) -> int:
    """Bring the materialised membership up to date; return the member count.

    Dynamic segments: one set-based ``INSERT … SELECT`` adds the customers who newly match
    and one ``DELETE`` removes those who left. Static segments take their snapshot once
    (when never computed) and afterwards only recount it.
    """
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    now = timezone.now()
    snapshot_due = segment.kind == Segment.Kind.DYNAMIC or segment.computed_at is None
    if snapshot_due and (segment.rules or segment.kind == Segment.Kind.DYNAMIC):
        matching = segment_queryset(segment.rules, now=now).order_by().values(member_id=F("pk"))
        if segment.kind == Segment.Kind.DYNAMIC:
            SegmentMembership.objects.filter(segment=segment).exclude(
                customer_id__in=matching.values("pk")
            ).delete()
        _insert_new_members(segment, matching, now)
    segment.member_count = SegmentMembership.objects.filter(segment=segment).count()
    segment.computed_at = now
    segment.save(update_fields=["member_count", "computed_at"])
    return segment.member_count


def _insert_new_members(segment: Segment, matching: QuerySet, now: dt.datetime) -> None:
    select_sql, select_params = matching.query.get_compiler(connection=connection).as_sql()
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    sql = (
        f"INSERT INTO {table} (segment_id, customer_id, added_at) "
        f"SELECT %s, matching.member_id, %s FROM ({select_sql}) matching "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} existing "
        f"WHERE existing.segment_id = %s AND existing.customer_id = matching.member_id)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [segment.pk, now, *select_params, segment.pk])


# --------------------------------------------------------------------------------------------
# Keeping membership current as data arrives
# --------------------------------------------------------------------------------------------
#
# ``computed_at`` is the time of the last *full* computation (``segment_refresh``). Between
# full computations the membership of a dynamic segment is kept current customer by
# customer: whenever a customer's data changes (consent, profile, identifiers, a merge,
# imported rows, new orders or events through the metrics rebuild), the caller runs
# ``customers.services.customers_derived_refresh`` for them, which re-evaluates every
# dynamic segment restricted to those customers (``segment_membership_sync``) and adjusts
# ``member_count`` by the entries and exits. So ``member_count`` is always the live count,
# while ``computed_at`` only says when the rules were last evaluated over everyone.
# Conditions on elapsed time ("no order in 90 days") change without new data; they are
# caught by ``segments_refresh_stale``, run every 15 minutes by django-q2
# (``customers.tasks.ensure_segment_schedules``).

# The sync reads its customer ids as ONE parameter per statement (``_id_set``: a JSON array
# on SQLite, an array on PostgreSQL), not as an ``IN (%s, %s, …)`` list: compiling and
# binding 5,000 placeholders twice per segment cost 40 % of an incremental sync (B3), and
# SQLite caps the number of parameters, which a single one sidesteps — hence large chunks.
SYNC_CHUNK = 50_000


def segments_in_dependency_order(segments: Iterable[Segment]) -> list[Segment]:
    """The segments ordered so that each follows the segments its rules refer to.

    Only references among the given segments count; otherwise the order is by id. A cycle
    (refused by validation, so only possible in hand-edited data) is broken by id order.
    """
    by_pk = {segment.pk: segment for segment in segments}
    waiting: dict[int, set[int]] = {
        pk: {ref for ref in referenced_segment_ids(s.rules) if ref in by_pk and ref != pk}
        for pk, s in by_pk.items()
    }
    dependents: dict[int, list[int]] = {pk: [] for pk in by_pk}
    for pk, refs in waiting.items():
        for ref in refs:
            dependents[ref].append(pk)
    ready = [pk for pk, refs in waiting.items() if not refs]
    heapq.heapify(ready)
    ordered: list[int] = []
    while ready:
        pk = heapq.heappop(ready)
        ordered.append(pk)
        for dependent in dependents[pk]:
            waiting[dependent].discard(pk)
            if not waiting[dependent]:
                heapq.heappush(ready, dependent)
    done = set(ordered)
    ordered.extend(sorted(pk for pk in by_pk if pk not in done))
    return [by_pk[pk] for pk in ordered]


def _id_chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), SYNC_CHUNK):
        yield ids[start : start + SYNC_CHUNK]


def _id_set(ids: list[int]) -> RawSQL:
    """``ids`` as a sub-query for ``__in`` lookups, bound as one parameter."""
    if connection.vendor == "sqlite":
        sql, param = "SELECT value FROM json_each(%s)", json.dumps(ids)
    else:
        sql, param = "SELECT unnest(%s::bigint[])", ids
    return RawSQL(sql, [param], output_field=BigIntegerField())


def segment_membership_sync(
    *, customer_ids: Collection[int], recount: bool = False
) -> dict[int, tuple[int, int]]:
    """Bring these customers' membership of every dynamic segment up to date.

    For each dynamic segment that has been computed at least once (one never computed
    awaits its full computation), in dependency order (a segment after the segments it
    refers to), the rules are evaluated for these customers only: one ``INSERT … SELECT``
    adds those who now match and one ``DELETE`` removes those who no longer do, per chunk
    of ``SYNC_CHUNK`` ids; ``member_count`` moves by the difference. Static segments are
    left alone, and ``computed_at`` keeps meaning "last full computation". Merged-away
    profiles match no rule, so they leave every dynamic segment.

    A merge moves or deletes membership rows itself, so when the batch holds a merged-away
    customer (or with ``recount``, after a merge is undone) the member counts of the
    segments these customers belong to are recounted exactly afterwards.

    Returns ``{segment id: (joined, left)}`` for every dynamic segment evaluated.
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return {}
    now = timezone.now()
    segments = Segment.objects.filter(kind=Segment.Kind.DYNAMIC, computed_at__isnull=False).only(
        "pk", "rules"
    )
    cache: dict = {}
    result: dict[int, tuple[int, int]] = {}
    for segment in segments_in_dependency_order(segments):
        outcome = _sync_segment(segment.pk, ids, now, cache)
        if outcome is not None:
            result[segment.pk] = outcome
    if recount or any(
        Customer.objects.filter(pk__in=_id_set(chunk), merged_into__isnull=False).exists()
        for chunk in _id_chunks(ids)
    ):
        _recount_segments_of(ids)
    return result


@transaction.atomic
def _sync_segment(
    segment_id: int, ids: list[int], now: dt.datetime, cache: dict
) -> tuple[int, int] | None:
    # The row lock serialises this with a full refresh (and another sync) of the segment.
    segment = (
        Segment.objects.select_for_update()
        .filter(pk=segment_id, kind=Segment.Kind.DYNAMIC, computed_at__isnull=False)
        .only("pk", "rules")
        .first()
    )
    if segment is None:  # deleted, made static or reset meanwhile
        return None
    try:
        tree = _normalise(segment.rules or {}, "rules", 1, [0], ValidationContext(cache=cache))
    except SegmentRuleError as exc:
        logger.warning("segment #%s skipped by the membership sync: %s", segment_id, exc)
        return None
    condition = _compile(tree, CompileContext(now=now, cache=cache))
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    added_at = connection.ops.adapt_datetimefield_value(now)
    joined = left = 0
    for chunk in _id_chunks(ids):
        matching = Customer.objects.filter(merged_into__isnull=True, pk__in=_id_set(chunk)).filter(
            condition
        )
        left += (
            SegmentMembership.objects.filter(segment_id=segment_id, customer_id__in=_id_set(chunk))
            .exclude(customer_id__in=matching.order_by().values("pk"))
            .delete()[0]
        )
        select_sql, select_params = (
            matching.order_by()
            .values(member_id=F("pk"))
            .query.get_compiler(connection=connection)
            .as_sql()
        )
        sql = (
            f"INSERT INTO {table} (segment_id, customer_id, added_at) "
            f"SELECT %s, matching.member_id, %s FROM ({select_sql}) matching "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} existing "
            f"WHERE existing.segment_id = %s AND existing.customer_id = matching.member_id) "
            f"ON CONFLICT (segment_id, customer_id) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [segment_id, added_at, *select_params, segment_id])
            joined += max(cursor.rowcount, 0)
    if joined or left:
        Segment.objects.filter(pk=segment_id).update(
            member_count=Greatest(Coalesce(F("member_count"), 0) + (joined - left), 0)
        )
    return joined, left


def _recount_segments_of(ids: list[int]) -> None:
    """Exact member counts of the computed segments (any kind) these customers belong to."""
    segment_ids: set[int] = set()
    for chunk in _id_chunks(ids):
        segment_ids.update(
            SegmentMembership.objects.filter(customer_id__in=_id_set(chunk))
            .values_list("segment_id", flat=True)
            .distinct()
        )
    if not segment_ids:
        return
    count = (
        SegmentMembership.objects.filter(segment=OuterRef("pk"))
        .order_by()
        .values("segment")
        .annotate(n=Count("pk"))
        .values("n")
    )
    with transaction.atomic():
        locked = list(
            Segment.objects.select_for_update()
            .filter(pk__in=segment_ids, computed_at__isnull=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Segment.objects.filter(pk__in=locked).update(
            member_count=Coalesce(Subquery(count, output_field=IntegerField()), 0)
        )


def segments_refresh_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=60)) -> list[int]:
    """Fully recompute every dynamic segment last computed before ``older_than`` ago.

    Rules on elapsed time ("no order in 90 days", "an event within 30 days") change as time
    passes without any new data, which the live sync cannot see; this catches them up.
    Segments never computed are included. Segments are refreshed in dependency order; one
    whose stored rules no longer validate is logged and skipped. Returns the refreshed ids.
    """
    cutoff = timezone.now() - older_than
    stale = Segment.objects.filter(kind=Segment.Kind.DYNAMIC).filter(
        Q(computed_at__isnull=True) | Q(computed_at__lt=cutoff)
    )
    refreshed = []
    for segment in segments_in_dependency_order(stale.only("pk", "rules")):
        try:
            segment_refresh(segment=segment)
        except SegmentRuleError as exc:
            logger.warning("segment #%s not refreshed: %s", segment.pk, exc)
            continue
        refreshed.append(segment.pk)
    return refreshed


def segment_refresh_task(segment_id: int) -> int | None:
    """q2 task: refresh one segment; a segment deleted meanwhile is skipped."""
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return None
    return segment_refresh(segment=segment)


def _refresh_on_commit(segment: Segment) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "customers.segments.segment_refresh_task",
            segment.pk,
            task_name=f"segment-refresh-{segment.pk}",
        )
    )


# --------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------


def _is_editor_of(user, department_id: int) -> bool:
    return user.is_superuser or user.has_role(department_id, Role.EDITOR)


def segment_can_edit(*, segment: Segment, user) -> bool:
    """Editors of the owner department or of a department it is shared with to edit."""
    return Segment.objects.editable_by(user).filter(pk=segment.pk).exists()


def segment_can_share(*, segment: Segment, user) -> bool:
    """Only managers of the owner department share a segment (and the administrator)."""
    return user.is_superuser or user.has_role(segment.owner_department_id, Role.MANAGER)


@transaction.atomic
def segment_create(
    *,
    name: str,
    rules: dict,
    kind: str = Segment.Kind.DYNAMIC,
    owner_department: Department,
    by,
    description: str = "",
) -> Segment:
    """Create a segment owned by a department the author edits for; refresh it after commit."""
    if not _is_editor_of(by, owner_department.pk):
        raise PermissionDenied("You need the editor role in the owner department.")
    if kind not in Segment.Kind.values:
        raise SegmentRuleError("kind", f"{kind!r} is not one of: {', '.join(Segment.Kind.values)}")
    tree = validate_rules(rules, user=by)
    segment = Segment.objects.create(
        name=name,
        description=description,
        kind=kind,
        rules=tree,
        owner_department=owner_department,
        created_by=by,
    )
    audit_record(
        actor=by,
        action="segment.create",
        target=segment,
        department=owner_department,
        detail={"rules": tree, "kind": kind},
    )
    _refresh_on_commit(segment)
    return segment


_UNSET: Any = object()


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    by,
    name: str = _UNSET,
    description: str = _UNSET,
    rules: dict = _UNSET,
    kind: str = _UNSET,
) -> Segment:
    """Change a segment the user may edit; new rules or kind refresh (re-snapshot) it."""
    if not segment_can_edit(segment=segment, user=by):
        raise PermissionDenied("You may not edit this segment.")
    changed: dict[str, Any] = {}
    if name is not _UNSET:
        changed["name"] = name
    if description is not _UNSET:
        changed["description"] = description
    if kind is not _UNSET and kind != segment.kind:
        if kind not in Segment.Kind.values:
            raise SegmentRuleError(
                "kind", f"{kind!r} is not one of: {', '.join(Segment.Kind.values)}"
            )
        changed["kind"] = kind
    if rules is not _UNSET:
        tree = validate_rules(rules, user=by, segment=segment)
        if tree != segment.rules:
            changed["rules"] = tree
    for attr, value in changed.items():
        setattr(segment, attr, value)
    membership_changed = "rules" in changed or "kind" in changed
    if membership_changed:
        # A static segment takes a new snapshot of the new rules.
        segment.computed_at = None
        changed["computed_at"] = None
    if changed:
        segment.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=by,
            action="segment.update",
            target=segment,
            department=segment.owner_department,
            detail={k: v for k, v in changed.items() if k != "computed_at"},
        )
    if membership_changed:
        if segment.kind == Segment.Kind.STATIC:
            SegmentMembership.objects.filter(segment=segment).delete()
        _refresh_on_commit(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, by) -> None:
    """Delete a segment: editors of the owner department only, and not while campaigns use it."""
    if not _is_editor_of(by, segment.owner_department_id):
        raise PermissionDenied("Only editors of the owner department delete a segment.")
    audit_record(
        actor=by,
        action="segment.delete",
        target=segment,
        department=segment.owner_department,
        detail={"name": segment.name, "rules": segment.rules},
    )
    try:
        with transaction.atomic():
            segment.delete()
    except ProtectedError as exc:
        raise SegmentInUse("Campaigns target this segment; change them first.") from exc


def segment_share(*, segment: Segment, department: Department, can_edit: bool, by):
    """Share with another department, to view or to co-edit (managers of the owner only)."""
    if not segment_can_share(segment=segment, user=by):
        raise PermissionDenied("Only managers of the owner department share a segment.")
    if department.pk == segment.owner_department_id:
        raise ValueError("A segment is not shared with its own department.")
    return share_grant(obj=segment, department=department, can_edit=can_edit, by=by)


def segment_unshare(*, segment: Segment, department: Department, by) -> None:
    """Stop sharing with a department (managers of the owner only)."""
    if not segment_can_share(segment=segment, user=by):
        raise PermissionDenied("Only managers of the owner department share a segment.")
    share_revoke(obj=segment, department=department, by=by)


def editable_department_choices(user) -> QuerySet[Department]:
    """Departments the user may create segments for (editor or manager there)."""
    return departments_where(user, Role.EDITOR)
