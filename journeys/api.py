"""REST API of circle ③: personas, journey maps, campaigns, their deliveries and staff tasks.

Personas and journeys are co-edited cell by cell, as on their pages: ``PATCH`` sends one
cell, its new value and the version the client edited; the same cell saved meanwhile by
someone else answers 409 with both values and nothing is written (other cells never
conflict). Cells are cleaned and saved by ``journeys.maps`` (cells, services), so the API,
the pages and the revision log agree on every rule; stages and revision restores have
their own small endpoints (``urlpatterns``), mounted next to the router's.

Campaigns are read by the departments that own them or share them, and change status
through ``journeys.services.campaign_transition`` (approve, pause…), which checks the
asking person's role. Deliveries are listed only for visible campaigns, newest first with a
cursor (the table grows by millions), and their addresses are masked without ``view_pii``.

Authentication: the browser's session everywhere; an integration's API token (an editor of
one department, never allowed personal data) may also *read* personas, journeys (with their
revisions and comments), campaigns, their results and their deliveries, for warehouses and
reporting tools. Every write to a persona or journey, status changes and staff tasks need a
person: the revision log and notifications name the author, approval is a manager's
decision and the audit log names who took it, and staff tasks belong to the signed-in
salesperson, so none of them accepts tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Prefetch, QuerySet, prefetch_related_objects
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.viewsets import GenericViewSet

from config.org.api import (
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    HasDepartmentMembership,
    IdFilter,
    enum_field,
    parse_id,
    reject_nul,
    service_call,
    shares_prefetch,
)
from config.org.api_pagination import bound_schema_parameters, query_int
from config.org.authentication import ApiTokenAuthentication
from config.org.models import Department, Role
from config.org.services import audit_record
from customers.identity import mask_identifier
from customers.selectors import can_view_pii, mask_text
from journeys.filters import CampaignFilter, JourneyFilter, PersonaFilter
from journeys.maps.cells import CELLS, cell_clean, cell_value
from journeys.maps.discussion import comment_add, comment_threads
from journeys.maps.selectors import (
    can_edit,
    get_revision_for,
    get_stage_for,
    persona_figures,
    revision_history,
)
from journeys.maps.services import (
    CellConflict,
    cell_save,
    journey_create,
    journey_duplicate,
    persona_create,
    revision_restore,
)
from journeys.models import (
    Campaign,
    CampaignStep,
    Comment,
    Delivery,
    Journey,
    Persona,
    Revision,
    StaffTask,
    Stage,
    Variant,
)
from journeys.services import CAMPAIGN_ACTIONS, campaign_transition


def experience_value_codes() -> serializers.SlugRelatedField:
    """The five values as their codes (``deal``, ``fun``…); needs the relation prefetched."""
    return serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)


def username_field(**kwargs) -> serializers.SlugRelatedField:
    """A staff member as their username (authors, owners of changes)."""
    kwargs.setdefault("allow_null", True)  # every user foreign key is SET_NULL
    return serializers.SlugRelatedField(slug_field="username", read_only=True, **kwargs)


# --- personas and journey maps: reads -------------------------------------------------------


class SessionWritesMixin:
    """API tokens may read; every write needs a signed-in person, who becomes its author.

    The revision log and the notifications name who changed or said what, and an API token
    is nobody in particular, so a token on a write is simply not a login here.
    """

    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]

    def get_authenticators(self):
        method = getattr(getattr(self, "request", None), "method", None) or "GET"
        if method.upper() not in SAFE_METHODS:
            return [SessionAuthentication()]
        return super().get_authenticators()


class PersonaSummarySerializer(DepartmentOwnedSummarySerializer):
    experience_values = experience_value_codes()

    class Meta:
        model = Persona
        fields = [
            "id",
            "name",
            "initials",
            "color",
            "segment",
            "experience_values",
            "owner_department",
            "updated_at",
        ]


class LabelCountSerializer(serializers.Serializer):
    label = serializers.CharField()
    count = serializers.IntegerField()


def label_counts(pairs) -> list[dict]:
    return [{"label": str(label), "count": count} for label, count in pairs]


class PersonaFiguresSerializer(serializers.Serializer):
    """``journeys.maps.selectors.persona_figures``: the live numbers of the persona's segment."""

    size = serializers.IntegerField(help_text="Members of the linked segment.")
    share = serializers.FloatField(
        allow_null=True, help_text="Size ÷ customers not merged into another (0…1)."
    )
    average_ltv = serializers.DecimalField(
        max_digits=None,
        decimal_places=2,
        coerce_to_string=False,
        allow_null=True,
        help_text="Mean revenue to date per member, in yen (members without orders count 0).",
    )
    nps = serializers.FloatField(allow_null=True, help_text="NPS of the members' latest scores.")
    nps_responses = serializers.IntegerField()
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()
    f2_rate = serializers.FloatField(
        allow_null=True, help_text="Members with 2+ orders ÷ members with 1+ order (0…1)."
    )
    first_buyers = serializers.IntegerField()
    repeat_buyers = serializers.IntegerField()
    top_channels = LabelCountSerializer(
        many=True, help_text="Members' events in the last 90 days by channel (top 5)."
    )
    top_products = LabelCountSerializer(
        many=True, help_text="Quantity bought in the last 365 days by product (top 5)."
    )
    situations = LabelCountSerializer(
        many=True, help_text="Members per life situation in the last 365 days (top 5)."
    )
    computed_at = serializers.DateTimeField()


def figures_data(figures) -> dict | None:
    """The selector's dataclass in the API's shape: pairs become ``{label, count}`` rows."""
    if figures is None:
        return None
    return {
        **dataclasses.asdict(figures),
        "top_channels": label_counts(figures.top_channels),
        "top_products": label_counts(figures.top_products),
        "situations": label_counts(figures.situations),
    }


class PersonaDetailSerializer(DepartmentOwnedDetailSerializer):
    experience_values = experience_value_codes()
    versions = serializers.JSONField(
        read_only=True, help_text="Cell → version (missing = 0); send it back with a PATCH."
    )
    created_by = username_field()
    figures = serializers.SerializerMethodField()

    class Meta:
        model = Persona
        fields = [
            "id",
            *CELLS["persona"],
            "versions",
            "figures",
            "owner_department",
            "shared_with",
            "created_by",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(PersonaFiguresSerializer(allow_null=True))
    def get_figures(self, persona) -> dict | None:
        """Null when the persona has no segment."""

        if persona.segment_id is None:
            return None
        return PersonaFiguresSerializer(figures_data(persona_figures(persona))).data


class PersonaRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Persona
        fields = ["id", "name"]


class StageSerializer(serializers.ModelSerializer):
    kind = enum_field(Stage.Kind)
    experience_values = experience_value_codes()
    versions = serializers.JSONField(
        read_only=True, help_text="Cell → version (missing = 0); send it back with a PATCH."
    )

    class Meta:
        model = Stage
        fields = ["id", "position", *CELLS["stage"], "versions"]


class StageDetailSerializer(StageSerializer):
    class Meta(StageSerializer.Meta):
        fields = ["journey", *StageSerializer.Meta.fields]


class JourneySummarySerializer(DepartmentOwnedSummarySerializer):
    persona = PersonaRefSerializer(read_only=True)
    stage_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "persona",
            "is_template",
            "stage_count",
            "owner_department",
            "updated_at",
        ]


class JourneyDetailSerializer(DepartmentOwnedDetailSerializer):
    persona = PersonaRefSerializer(read_only=True)
    stages = StageSerializer(many=True, read_only=True)
    versions = serializers.JSONField(
        read_only=True, help_text="Cell → version (missing = 0); send it back with a PATCH."
    )
    created_by = username_field()

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "description",
            "persona",
            "is_template",
            "duplicated_from",
            "versions",
            "stages",
            "owner_department",
            "shared_with",
            "created_by",
            "created_at",
            "updated_at",
        ]


class RevisionSerializer(serializers.ModelSerializer):
    """One saved change: ``before`` and ``after`` hold the cell's values (JSON)."""

    action = enum_field(Revision.Action)
    author = username_field()
    before = serializers.JSONField(read_only=True)
    after = serializers.JSONField(read_only=True)

    class Meta:
        model = Revision
        fields = [
            "id",
            "action",
            "persona",
            "journey",
            "stage",
            "stage_name",
            "field",
            "before",
            "after",
            "version",
            "restored_from",
            "author",
            "created_at",
        ]


class CommentSerializer(serializers.ModelSerializer):
    author = username_field()
    mentions = username_field(many=True)
    resolved_by = username_field()

    class Meta:
        model = Comment
        fields = [
            "id",
            "persona",
            "journey",
            "stage",
            "field",
            "parent",
            "author",
            "body",
            "mentions",
            "resolved_at",
            "resolved_by",
            "created_at",
        ]


class CommentThreadSerializer(CommentSerializer):
    """A thread's first comment with its replies, oldest first."""

    replies = CommentSerializer(many=True, read_only=True)

    class Meta(CommentSerializer.Meta):
        fields = [*CommentSerializer.Meta.fields, "replies"]


# --- personas and journey maps: writes ------------------------------------------------------


class WholeSerializer(serializers.Serializer):
    """A body that is complete even when sent with PATCH (a cell edit always has all keys).

    DRF and drf-spectacular make a PATCH body partial; here ``partial`` stays False, so the
    keys stay required, and documented as such.
    """

    partial = property(lambda self: False, lambda self, value: None)


@functools.cache
def _cell_name_field_class(kind: str) -> type[serializers.ChoiceField]:

    field_class = type(f"{kind.title()}CellNameField", (serializers.ChoiceField,), {})
    schema = {"type": "string", "enum": list(CELLS[kind])}
    return extend_schema_field(schema, component_name=f"{kind.title()}CellEnum")(field_class)


def cell_edit_serializer(kind: str) -> type[serializers.Serializer]:
    """The body of ``PATCH /<kind>s/{id}/``: one cell, its new value, the version it edits."""

    fields = {
        "field": _cell_name_field_class(kind)(
            choices=list(CELLS[kind]), help_text="The cell to change."
        ),
        "value": serializers.JSONField(
            help_text=(
                "The new value: text for text cells, an integer for emotion (−2…+2), true/false, "
                "an id (or null) for segment/persona/owner, a list of ids for touchpoints and "
                "experience_values."
            ),
        ),
        "version": serializers.IntegerField(
            min_value=0, help_text="The cell's version you edited, from ``versions`` (0 if absent)."
        ),
    }
    return type(f"{kind.title()}CellEditSerializer", (WholeSerializer,), fields)


PersonaCellEditSerializer = cell_edit_serializer("persona")
JourneyCellEditSerializer = cell_edit_serializer("journey")
StageCellEditSerializer = cell_edit_serializer("stage")
CELL_EDIT_SERIALIZERS = {
    "persona": PersonaCellEditSerializer,
    "journey": JourneyCellEditSerializer,
    "stage": StageCellEditSerializer,
}


class CellSerializer(serializers.Serializer):
    field = serializers.CharField()
    value = serializers.JSONField(help_text="The cell's saved value.")
    version = serializers.IntegerField(help_text="Its version now: send this with the next edit.")


class CellConflictSerializer(serializers.Serializer):
    """Someone saved the same cell since you loaded it: nothing of yours was saved."""

    detail = serializers.CharField()
    field = serializers.CharField()
    base_version = serializers.IntegerField(help_text="The version you edited.")
    current_version = serializers.IntegerField(help_text="The version saved now.")
    theirs = serializers.JSONField(help_text="The value saved now.")
    mine = serializers.JSONField(help_text="Your value, cleaned, not saved.")
    base = serializers.JSONField(
        allow_null=True, help_text="The value at your version, if the log knows it."
    )
    changed_by = serializers.CharField(allow_null=True, help_text="Who saved theirs.")
    changed_at = serializers.DateTimeField(allow_null=True)


def conflict_data(conflict) -> dict:
    revision = conflict.their_revision
    author = getattr(revision, "author", None) if revision is not None else None
    return {
        "detail": _("This cell was changed by someone else; nothing was saved."),
        "field": conflict.field,
        "base_version": conflict.base_version,
        "current_version": conflict.current_version,
        "theirs": conflict.theirs,
        "mine": conflict.mine,
        "base": conflict.base,
        "changed_by": author.get_username() if author is not None else None,
        "changed_at": revision.created_at if revision is not None else None,
    }


def field_errors(exc: DjangoValidationError, field: str) -> APIValidationError:
    """A cell's ValidationError as a 400 naming the cell."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else {field: exc.messages}
    return APIValidationError(detail)


def cell_patch(request: Request, record, kind: str) -> Response:
    """Save one cell of a visible record: 403 for viewers, 400 naming the cell, 409 on conflict.

    The client sends the version it edited; another cell saved meanwhile never conflicts,
    the same cell does, and then nothing is written and both values come back.
    """

    user = request.user
    if not can_edit(user, record):
        raise PermissionDenied(_("You may read this but not change it."))
    incoming = CELL_EDIT_SERIALIZERS[kind](data=request.data)
    incoming.is_valid(raise_exception=True)
    field = incoming.validated_data["field"]
    try:
        value = cell_clean(record, field, incoming.validated_data["value"], user=user)
        cell_save(
            record=record,
            field=field,
            value=value,
            base_version=incoming.validated_data["version"],
            by=user,
        )
    except CellConflict as conflict:
        return Response(
            CellConflictSerializer(conflict_data(conflict)).data,
            status=status.HTTP_409_CONFLICT,
        )
    except DjangoValidationError as exc:
        raise field_errors(exc, field) from exc
    record.refresh_from_db()
    data = {
        "field": field,
        "value": cell_value(record, field),
        "version": record.versions.get(field, 0),
    }
    return Response(CellSerializer(data).data)


def create_schema(summary: str, request, response, example: OpenApiExample) -> dict:
    """The OpenAPI description of a create endpoint: 201 with the detail, 400, 403."""
    return {
        "summary": summary,
        "request": request,
        "responses": {
            201: response,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors keyed by field."),
            403: OpenApiResponse(description="You are not an editor in that department."),
        },
        "examples": [example],
    }


def cell_patch_schema(kind: str, serializer) -> dict:
    """The documentation of a cell PATCH, the same for personas, journeys and stages."""
    return {
        "summary": f"Change one cell ({kind}), guarded by its version",
        "request": serializer,
        "responses": {
            200: CellSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="An unknown cell or a bad value, keyed by the cell's name.",
                examples=[
                    OpenApiExample(
                        "Bad value", value={"name": ["This field is required."]}, response_only=True
                    ),
                    OpenApiExample(
                        "Unknown cell",
                        value={"field": ['"colour" is not a valid choice.']},
                        response_only=True,
                    ),
                ],
            ),
            403: OpenApiResponse(description="You may see this record but not change it."),
            404: OpenApiResponse(description=f"No {kind} with this id is visible to you."),
            409: OpenApiResponse(
                CellConflictSerializer,
                description="The same cell was saved by someone else since your version.",
                examples=[CELL_CONFLICT_EXAMPLE],
            ),
        },
        "examples": [
            OpenApiExample(
                "Edit a text cell",
                value={"field": "name", "value": "First-time app buyer", "version": 3},
                request_only=True,
            ),
            OpenApiExample(
                "Success",
                value={"field": "name", "value": "First-time app buyer", "version": 4},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    }


CELL_CONFLICT_EXAMPLE = OpenApiExample(
    "Same cell saved meanwhile",
    value={
        "detail": "This cell was changed by someone else; nothing was saved.",
        "field": "actions",
        "base_version": 3,
        "current_version": 4,
        "theirs": "Searches the app for gift ideas.\nAsks in store.",
        "mine": "Searches the app for gift ideas.\nCompares prices.",
        "base": "Searches the app for gift ideas.",
        "changed_by": "sales-planner",
        "changed_at": "2026-11-27T10:00:04+09:00",
    },
    response_only=True,
    status_codes=["409"],
)


def owner_department_for(user, department_id: int | None) -> Department:
    """The department a new persona or journey belongs to: one where the user is an editor."""
    editable = [] if user.is_superuser else user.department_ids_with_role(Role.EDITOR)
    if not user.is_superuser and not editable:
        raise PermissionDenied(_("Only editors and managers create personas and journeys."))
    if department_id is None:
        if len(editable) != 1:
            raise APIValidationError(
                {"owner_department": [_("Choose the department that will own it.")]}
            )
        department_id = editable[0]
    elif not user.is_superuser and department_id not in editable:
        raise PermissionDenied(_("You are not an editor in this department."))
    department = Department.objects.filter(pk=department_id).first()
    if department is None:
        raise APIValidationError({"owner_department": [_("No such department.")]})
    return department


OWNER_DEPARTMENT_HELP = (
    "Id of the owning department, where you are an editor or manager; "
    "optional when you edit in only one."
)


class PersonaCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    owner_department = serializers.IntegerField(required=False, help_text=OWNER_DEPARTMENT_HELP)
    initials = serializers.CharField(required=False, allow_blank=True)
    color = serializers.CharField(required=False, help_text="#rrggbb")
    profile = serializers.CharField(required=False, allow_blank=True)
    goals = serializers.CharField(required=False, allow_blank=True)
    pains = serializers.CharField(required=False, allow_blank=True)
    situations = serializers.CharField(required=False, allow_blank=True)
    values = serializers.CharField(required=False, allow_blank=True)
    preferred_channels = serializers.CharField(required=False, allow_blank=True)
    quotes = serializers.CharField(required=False, allow_blank=True)
    segment = serializers.IntegerField(
        required=False, allow_null=True, help_text="Id of a segment visible to you."
    )
    experience_values = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Experience value ids."
    )


class JourneyCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    persona = serializers.IntegerField(help_text="Id of a persona visible to you.")
    owner_department = serializers.IntegerField(required=False, help_text=OWNER_DEPARTMENT_HELP)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    template = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Id of a template journey whose stages to copy; none: the five standard stages.",
    )


class JourneyDuplicateSerializer(serializers.Serializer):
    name = serializers.CharField()
    owner_department = serializers.IntegerField(required=False, help_text=OWNER_DEPARTMENT_HELP)
    as_template = serializers.BooleanField(
        default=False, help_text="Offer the copy as a template for new journeys."
    )


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(help_text="Text; @username mentions notify those staff.")
    field = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The cell; blank: the record."
    )
    parent = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Reply to this comment's thread."
    )


class JourneyCommentCreateSerializer(CommentCreateSerializer):
    stage = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="A stage of this journey."
    )


class RestoreSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=["record", "cell"],
        default="record",
        help_text=(
            "record: the whole persona, journey or stage back to its state right after this "
            "revision; cell: only this revision's cell back to its value after it."
        ),
    )


COMMENT_FIELD_PARAMETER = OpenApiParameter(
    "field", OpenApiTypes.STR, description="Only threads on this cell ('' = on the record)."
)


def comment_parent(data: dict, **record) -> Comment | None:
    """The comment a reply answers: one on the same record, else a 400 naming ``parent``."""
    if data["parent"] is None:
        return None
    parent = Comment.objects.filter(pk=data["parent"], **record).first()
    if parent is None:
        raise APIValidationError({"parent": [_("No such comment here.")]})
    return parent


def comment_created(comment: Comment) -> Response:
    comment = (
        Comment.objects.select_related("author", "resolved_by")
        .prefetch_related("mentions")
        .get(pk=comment.pk)
    )
    return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


def comment_thread_data(threads: list[Comment]) -> list:
    prefetch_related_objects(threads, "mentions", "replies__mentions")
    return CommentThreadSerializer(threads, many=True).data


def revision_page(view, revisions: QuerySet) -> Response:
    page = view.paginate_queryset(revisions)
    return view.get_paginated_response(RevisionSerializer(page, many=True).data)


DETAIL_WRITE_ACTIONS = ("create", "duplicate")


class PersonaViewSet(SessionWritesMixin, DepartmentScopedReadOnlyViewSet):
    """Personas owned by, or shared with, the asking user's departments.

    Read with a session or an API token; create, edit cells and comment with a session.
    """

    queryset = Persona.objects.select_related("owner_department").prefetch_related(
        "experience_values"
    )
    serializer_class = PersonaSummarySerializer
    detail_serializer_class = PersonaDetailSerializer
    filterset_class = PersonaFilter

    def shape_queryset(self, queryset):
        if self.action in DETAIL_WRITE_ACTIONS:
            queryset = queryset.prefetch_related(shares_prefetch())
        if self.action in ("retrieve", *DETAIL_WRITE_ACTIONS):
            return queryset.select_related("created_by")
        return queryset

    def detail_response(self, persona_id: int, *, status_code: int = 200) -> Response:
        persona = self.get_queryset().get(pk=persona_id)
        return Response(PersonaDetailSerializer(persona).data, status=status_code)

    @extend_schema(
        summary="A persona with its narrative, cell versions and the live figures of its segment"
    )
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        **create_schema(
            "Create a persona",
            PersonaCreateSerializer,
            PersonaDetailSerializer,
            OpenApiExample(
                "A persona on a segment",
                value={"name": "First-time app buyer", "owner_department": 2, "segment": 14},
                request_only=True,
            ),
        )
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        incoming = PersonaCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        cells = dict(incoming.validated_data)
        department = owner_department_for(request.user, cells.pop("owner_department", None))
        # The service cleans every cell as an edit would (visible segment, colour…).
        persona = service_call(
            persona_create, by=request.user, owner_department=department, **cells
        )
        return self.detail_response(persona.pk, status_code=status.HTTP_201_CREATED)

    @extend_schema(**cell_patch_schema("persona", PersonaCellEditSerializer))
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return cell_patch(request, self.get_object(), "persona")

    @extend_schema(
        summary="The persona's change log, newest first",
        responses=RevisionSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def revisions(self, request: Request, pk=None) -> Response:
        return revision_page(self, revision_history(persona=self.get_object()))

    @extend_schema(
        methods=["GET"],
        summary="Comment threads on the persona and its cells",
        parameters=[COMMENT_FIELD_PARAMETER],
        responses=CommentThreadSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Comment on the persona or one of its cells (anyone who can see it)",
        request=CommentCreateSerializer,
        responses={
            201: CommentSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors keyed by field."),
        },
        examples=[
            OpenApiExample(
                "Mention a colleague on a cell",
                value={"body": "@sales-planner is this still true?", "field": "quotes"},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=None)
    def comments(self, request: Request, pk=None) -> Response:
        persona = self.get_object()
        if request.method == "GET":
            field = reject_nul("field", request.query_params.get("field"))
            return Response(comment_thread_data(comment_threads(persona=persona, field=field)))
        incoming = CommentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        comment = service_call(
            comment_add,
            by=request.user,
            body=data["body"],
            persona=persona,
            field=data["field"],
            parent=comment_parent(data, persona=persona),
        )
        return comment_created(comment)


class JourneyViewSet(SessionWritesMixin, DepartmentScopedReadOnlyViewSet):
    """Journeys, each with its stages in order; scoped to the asking user's departments.

    Read with a session or an API token; create, duplicate, edit cells and comment with a
    session.
    """

    queryset = Journey.objects.select_related("owner_department", "persona")
    serializer_class = JourneySummarySerializer
    detail_serializer_class = JourneyDetailSerializer
    filterset_class = JourneyFilter

    def shape_queryset(self, queryset):
        if self.action in ("retrieve", *DETAIL_WRITE_ACTIONS):
            if self.action != "retrieve":
                queryset = queryset.prefetch_related(shares_prefetch())
            stages = Stage.objects.order_by("position").prefetch_related(
                "touchpoints", "experience_values"
            )
            return queryset.select_related("created_by").prefetch_related(
                Prefetch("stages", queryset=stages)
            )
        if self.action == "list":
            return queryset.annotate(stage_count=Count("stages"))
        return queryset

    def detail_response(self, journey_id: int, *, status_code: int = 200) -> Response:
        journey = self.get_queryset().get(pk=journey_id)
        return Response(JourneyDetailSerializer(journey).data, status=status_code)

    @extend_schema(summary="A journey with its stages in order, their cells and versions")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        **create_schema(
            "Create a journey: the five standard stages, or a template's",
            JourneyCreateSerializer,
            JourneyDetailSerializer,
            OpenApiExample(
                "From a template",
                value={"name": "Gift givers, winter", "persona": 3, "template": 8},
                request_only=True,
            ),
        )
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        incoming = JourneyCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        department = owner_department_for(request.user, data.get("owner_department"))
        persona = Persona.objects.visible_to(request.user).filter(pk=data["persona"]).first()
        if persona is None:
            raise APIValidationError({"persona": [_("No persona with this id is visible to you.")]})
        template = None
        if data["template"] is not None:
            template = (
                Journey.objects.visible_to(request.user)
                .filter(pk=data["template"], is_template=True)
                .first()
            )
            if template is None:
                raise APIValidationError(
                    {"template": [_("No template journey with this id is visible to you.")]}
                )
        journey = service_call(
            journey_create,
            by=request.user,
            owner_department=department,
            persona=persona,
            name=data["name"],
            description=data["description"],
            template=template,
        )
        return self.detail_response(journey.pk, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Copy a journey with every stage cell, optionally as a template",
        request=JourneyDuplicateSerializer,
        responses={
            201: JourneyDetailSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors keyed by field."),
            403: OpenApiResponse(description="You are not an editor in that department."),
            404: OpenApiResponse(description="No journey with this id is visible to you."),
        },
        examples=[
            OpenApiExample(
                "As a template",
                value={"name": "Gift givers (template)", "as_template": True},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def duplicate(self, request: Request, pk=None) -> Response:
        journey = self.get_object()
        incoming = JourneyDuplicateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        copy = service_call(
            journey_duplicate,
            journey=journey,
            by=request.user,
            owner_department=owner_department_for(request.user, data.get("owner_department")),
            name=data["name"],
            as_template=data["as_template"],
        )
        return self.detail_response(copy.pk, status_code=status.HTTP_201_CREATED)

    @extend_schema(**cell_patch_schema("journey", JourneyCellEditSerializer))
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return cell_patch(request, self.get_object(), "journey")

    @extend_schema(
        summary="The journey's change log with its stages', newest first",
        responses=RevisionSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def revisions(self, request: Request, pk=None) -> Response:
        return revision_page(self, revision_history(journey=self.get_object()))

    @extend_schema(
        methods=["GET"],
        summary="Comment threads on the journey, its stages and cells",
        parameters=[
            OpenApiParameter("stage", OpenApiTypes.INT, description="Only threads on this stage."),
            COMMENT_FIELD_PARAMETER,
        ],
        responses=CommentThreadSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Comment on the journey, a stage or a cell (anyone who can see it)",
        request=JourneyCommentCreateSerializer,
        responses={
            201: CommentSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors keyed by field."),
        },
        examples=[
            OpenApiExample(
                "On a stage's pain points",
                value={
                    "body": "Customers ask this in store too.",
                    "stage": 41,
                    "field": "pain_points",
                },
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=None)
    def comments(self, request: Request, pk=None) -> Response:
        journey = self.get_object()
        if request.method == "GET":
            stage = self.stage_of(journey, request.query_params.get("stage"))
            field = reject_nul("field", request.query_params.get("field"))
            threads = comment_threads(journey=journey, stage=stage, field=field)
            return Response(comment_thread_data(threads))
        incoming = JourneyCommentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        comment = service_call(
            comment_add,
            by=request.user,
            body=data["body"],
            journey=journey,
            stage=self.stage_of(journey, data["stage"]),
            field=data["field"],
            parent=comment_parent(data, journey=journey),
        )
        return comment_created(comment)

    @staticmethod
    def stage_of(journey: Journey, stage_id) -> Stage | None:
        """A stage of this journey by id (None when not asked), else a 400 naming ``stage``."""
        if stage_id in (None, ""):
            return None
        stage = None
        if (pk := parse_id(stage_id)) is not None:
            stage = journey.stages.filter(pk=pk).first()
        if stage is None:
            raise APIValidationError({"stage": [_("No such stage in this journey.")]})
        return stage


# Mounted by hand (``urlpatterns`` below): stages are listed inside their journey.
class StageViewSet(SessionWritesMixin, GenericViewSet):
    """One stage of a visible journey: read it (session or API token), or change one of its
    cells (session)."""

    queryset = Stage.objects.none()
    serializer_class = StageDetailSerializer
    permission_classes = [HasDepartmentMembership]
    filterset_class = None

    def get_object(self) -> Stage:
        return get_stage_for(self.request.user, self.kwargs["pk"])

    @extend_schema(summary="A stage with its cells and versions")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return Response(StageDetailSerializer(self.get_object()).data)

    @extend_schema(**cell_patch_schema("stage", StageCellEditSerializer))
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return cell_patch(request, self.get_object(), "stage")


class RevisionViewSet(GenericViewSet):
    """Restores from the change log (session only: the restore is itself a logged change)."""

    queryset = Revision.objects.none()
    serializer_class = RestoreSerializer
    permission_classes = [HasDepartmentMembership]
    authentication_classes = [SessionAuthentication]
    filterset_class = None
    pagination_class = None

    def get_object(self) -> Revision:
        """A revision of a persona or journey the user may see, else 404."""
        return get_revision_for(self.request.user, self.kwargs["pk"])

    @extend_schema(
        summary="Restore a record (or one cell) to how it was right after this revision",
        request=RestoreSerializer,
        responses={
            200: OpenApiResponse(
                RevisionSerializer(many=True),
                description="The restore revisions written, one per cell that changed.",
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors keyed by field."),
            403: OpenApiResponse(description="You may see this record but not change it."),
            404: OpenApiResponse(description="No revision with this id is visible to you."),
        },
        examples=[OpenApiExample("A whole stage", value={"scope": "record"}, request_only=True)],
    )
    def restore(self, request: Request, pk=None) -> Response:
        revision = self.get_object()
        if not can_edit(request.user, revision.persona or revision.journey):
            raise PermissionDenied(_("You may read this but not change it."))
        incoming = RestoreSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        written = service_call(
            revision_restore,
            revision=revision,
            by=request.user,
            scope=incoming.validated_data["scope"],
        )
        return Response(RevisionSerializer(written, many=True).data)


# --- campaigns ------------------------------------------------------------------------------


class VariantSerializer(serializers.ModelSerializer):
    content = serializers.JSONField(
        read_only=True,
        help_text='Language code → {"subject": …, "body": …}, in Django template syntax.',
    )

    class Meta:
        model = Variant
        fields = ["id", "label", "weight", "content"]


class CampaignStepSerializer(serializers.ModelSerializer):
    condition = serializers.JSONField(
        read_only=True, help_text="A segment rule tree checked when the step is due; {} = always."
    )
    variants = VariantSerializer(many=True, read_only=True)

    class Meta:
        model = CampaignStep
        fields = ["id", "position", "name", "delay_minutes", "condition", "variants"]


class CampaignSummarySerializer(DepartmentOwnedSummarySerializer):
    kind = enum_field(Campaign.Kind)
    channel = enum_field(Campaign.Channel)
    status = enum_field(Campaign.Status)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "kind",
            "channel",
            "status",
            "preset",
            "segment",
            "priority",
            "holdout_percent",
            "starts_at",
            "ends_at",
            "next_run_at",
            "approval_requested_at",
            "approved_at",
            "owner_department",
            "created_at",
        ]


class CampaignDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Campaign.Kind)
    channel = enum_field(Campaign.Channel)
    status = enum_field(Campaign.Status)
    trigger = serializers.JSONField(
        read_only=True,
        help_text=(
            "By kind — event: event_type, properties; date: date_kind, days_before; "
            "situation: situation; every kind: unless (event types that end an enrolment)."
        ),
    )
    audience_rules = serializers.JSONField(
        read_only=True, help_text="A segment rule tree every person must match to enter."
    )
    experience_values = experience_value_codes()
    steps = CampaignStepSerializer(many=True, read_only=True)
    task_assignee = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "goal",
            "kind",
            "channel",
            "status",
            "preset",
            "segment",
            "audience_rules",
            "trigger",
            "cron",
            "journey_stage",
            "experience_values",
            "priority",
            "is_marketing",
            "respect_quiet_hours",
            "holdout_percent",
            "conversion_window_days",
            "webhook_url",
            "task_assignee",
            "task_store",
            "starts_at",
            "ends_at",
            "next_run_at",
            "steps",
            "owner_department",
            "shared_with",
            "created_by",
            "approval_requested_at",
            "approved_by",
            "approved_at",
            "created_at",
            "updated_at",
        ]


class CampaignTransitionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=CAMPAIGN_ACTIONS,
        help_text=(
            "request_approval (editors, drafts), approve / reject (managers of the owner "
            "department), pause (editors), resume / complete (managers)."
        ),
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="Why a draft is rejected; ignored by the other actions.",
    )


class FunnelSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    converted = serializers.IntegerField()


class OutcomeSerializer(serializers.Serializer):
    status = serializers.CharField()
    label = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class LiftSerializer(serializers.Serializer):
    """Enrolments converted, treatment vs holdout; rates and interval null when too few."""

    treatment_n = serializers.IntegerField()
    treatment_converted = serializers.IntegerField()
    holdout_n = serializers.IntegerField()
    holdout_converted = serializers.IntegerField()
    enough = serializers.BooleanField(help_text="Both groups are big enough for an interval.")
    treatment_rate = serializers.FloatField(allow_null=True)
    holdout_rate = serializers.FloatField(allow_null=True)
    difference = serializers.FloatField(
        allow_null=True, help_text="Treatment rate − holdout rate (0.012 = 1.2 points)."
    )
    ci_low = serializers.FloatField(allow_null=True, help_text="95 % interval of the difference.")
    ci_high = serializers.FloatField(allow_null=True)
    relative = serializers.FloatField(allow_null=True, help_text="Difference ÷ holdout rate.")
    significant = serializers.BooleanField(help_text="The 95 % interval excludes zero.")


class LatencySerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Sends measured (the latest ones).")
    p50 = serializers.FloatField(allow_null=True, help_text="Seconds, trigger → channel.")
    p95 = serializers.FloatField(allow_null=True)


class VariantResultSerializer(serializers.Serializer):
    step = serializers.IntegerField(source="step_id")
    step_position = serializers.IntegerField(source="step__position")
    step_name = serializers.CharField(source="step__name", allow_blank=True)
    variant = serializers.CharField(source="variant__label", allow_null=True)
    total = serializers.IntegerField()
    holdout = serializers.IntegerField()
    sent = serializers.IntegerField(source="sent_at")
    delivered = serializers.IntegerField(source="delivered_at")
    opened = serializers.IntegerField(source="opened_at")
    clicked = serializers.IntegerField(source="clicked_at")
    converted = serializers.IntegerField(source="converted_at")
    revenue = serializers.IntegerField(allow_null=True)
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    conversion_rate = serializers.FloatField(allow_null=True)


class CampaignResultsSerializer(serializers.Serializer):
    """``journeys.selectors.campaign_results`` as JSON: the results page's figures."""

    total = serializers.IntegerField(help_text="Deliveries, holdout included.")
    holdout = serializers.IntegerField(help_text="Deliveries held out (never sent).")
    pending = serializers.IntegerField(help_text="Waiting to be sent (or being sent).")
    funnel = FunnelSerializer(help_text="Sends reaching each stage, from the timestamps.")
    revenue = serializers.IntegerField(help_text="Attributed order revenue (yen).")
    outcomes = OutcomeSerializer(many=True, help_text="Not sent or deferred, by reason.")
    lift = LiftSerializer()
    latency = LatencySerializer()
    by_variant = VariantResultSerializer(many=True)


def results_data(results: dict) -> dict:
    """The selector's dict in the API's shape: the funnel as an object, the lift as data."""
    lift = results["lift"]
    return {
        **results,
        "funnel": dict(results["funnel"]),
        "lift": {**dataclasses.asdict(lift), "significant": lift.significant},
    }


CAMPAIGN_RESULTS_EXAMPLE = OpenApiExample(
    "A completed email with a holdout group",
    value={
        "total": 2000,
        "holdout": 200,
        "pending": 0,
        "funnel": {"sent": 1780, "delivered": 1760, "opened": 702, "clicked": 233, "converted": 61},
        "revenue": 412300,
        "outcomes": [
            {"status": "suppressed", "label": "Suppressed", "reason": "no_consent", "count": 20}
        ],
        "lift": {
            "treatment_n": 1800,
            "treatment_converted": 61,
            "holdout_n": 200,
            "holdout_converted": 2,
            "enough": True,
            "treatment_rate": 0.0339,
            "holdout_rate": 0.01,
            "difference": 0.0239,
            "ci_low": 0.0082,
            "ci_high": 0.0396,
            "relative": 2.39,
            "significant": True,
        },
        "latency": {"n": 1780, "p50": 4.2, "p95": 18.0},
        "by_variant": [
            {
                "step": 31,
                "step_position": 1,
                "step_name": "",
                "variant": "A",
                "total": 2000,
                "holdout": 200,
                "sent": 1780,
                "delivered": 1760,
                "opened": 702,
                "clicked": 233,
                "converted": 61,
                "revenue": 412300,
                "open_rate": 0.394,
                "click_rate": 0.131,
                "conversion_rate": 0.0343,
            }
        ],
    },
    response_only=True,
)


class CampaignViewSet(DepartmentScopedReadOnlyViewSet):
    """Campaigns with their steps and variants, scoped to the asking user's departments."""

    queryset = Campaign.objects.select_related("owner_department")
    serializer_class = CampaignSummarySerializer
    detail_serializer_class = CampaignDetailSerializer
    filterset_class = CampaignFilter
    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]

    def shape_queryset(self, queryset):
        if self.action in ("retrieve", "transition"):
            variants = Variant.objects.order_by("label")
            steps = CampaignStep.objects.order_by("position").prefetch_related(
                Prefetch("variants", queryset=variants)
            )
            return queryset.select_related(
                "created_by", "approved_by", "task_assignee"
            ).prefetch_related(Prefetch("steps", queryset=steps), "experience_values")
        return queryset

    def get_serializer_class(self):
        if self.action == "transition":
            return CampaignTransitionSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Move a campaign through its lifecycle (approve, pause, resume…)",
        request=CampaignTransitionSerializer,
        responses={
            200: CampaignDetailSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A bad action, or the campaign's status or content does not allow it.",
                examples=[
                    OpenApiExample(
                        "Unknown action",
                        value={"action": ['"launch" is not a valid choice.']},
                        response_only=True,
                    ),
                    OpenApiExample(
                        "Not a draft",
                        value={"status": ["only a draft is approved"]},
                        response_only=True,
                    ),
                ],
            ),
            403: OpenApiResponse(description="Your role does not allow this action."),
            404: OpenApiResponse(description="No campaign with this id is visible to you."),
        },
        examples=[
            OpenApiExample("Approve", value={"action": "approve"}, request_only=True),
            OpenApiExample(
                "Reject with a note",
                value={"action": "reject", "note": "Add the English subject, please."},
                request_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"], authentication_classes=[SessionAuthentication])
    def transition(self, request: Request, pk=None) -> Response:
        """Session only: approvals and stops are a person's decision, audited by name."""
        campaign = self.get_object()
        incoming = CampaignTransitionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        service_call(
            campaign_transition,
            campaign=campaign,
            action=incoming.validated_data["action"],
            note=incoming.validated_data["note"],
            by=request.user,
        )
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(
            CampaignDetailSerializer(campaign, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Funnel, revenue and lift against the holdout group",
        responses={200: CampaignResultsSerializer},
        examples=[CAMPAIGN_RESULTS_EXAMPLE],
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def results(self, request: Request, pk=None) -> Response:
        """The figures of the campaign's results page, as ``journeys.selectors`` computes them."""
        from journeys.selectors import campaign_results

        results = results_data(campaign_results(self.get_object()))
        return Response(CampaignResultsSerializer(results).data)


# --- deliveries -----------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(Delivery.Status.values)})
class DeliveryStatusFilter(django_filters.ChoiceFilter):
    """A delivery status, named in the schema as an enum."""


class DeliveryFilter(django_filters.FilterSet):
    """Ids, never model choices, so no department learns which ids another one holds."""

    campaign = IdFilter(field_name="campaign_id")
    customer = IdFilter(field_name="customer_id")
    step = IdFilter(field_name="step_id")
    status = DeliveryStatusFilter(choices=Delivery.Status.choices)
    occurrence = django_filters.CharFilter()

    class Meta:
        model = Delivery
        fields = []


class DeliveryCursorPagination(CursorPagination):
    """Newest first by id: stable under inserts and one index range per page, at any depth."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        return query_int(request, self.page_size_query_param, self.page_size, 1, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        return bound_schema_parameters(
            super().get_schema_operation_parameters(view),
            {self.page_size_query_param: (1, self.max_page_size)},
        )

    def decode_cursor(self, request):
        """A cursor this API did not hand out is the client's mistake: 400 naming it, not 404."""
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise APIValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None


_EMAIL = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+")


class DeliverySerializer(serializers.ModelSerializer):
    """One send; ``address`` (and addresses quoted in ``error``) masked without ``view_pii``."""

    status = enum_field(Delivery.Status)
    step_position = serializers.IntegerField(source="step.position", read_only=True)
    variant = serializers.SlugRelatedField(slug_field="label", read_only=True, allow_null=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "campaign",
            "step",
            "step_position",
            "customer",
            "occurrence",
            "variant",
            "status",
            "reason",
            "address",
            "due_at",
            "created_at",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "converted_at",
            "order",
            "revenue",
            "attempts",
            "error",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_pii", False):
            kind = "email" if instance.campaign.channel == Campaign.Channel.EMAIL else "other"
            data["address"] = mask_identifier(kind, instance.address)
            error = data["error"]
            if instance.address:
                error = error.replace(instance.address, data["address"])
            data["error"] = _EMAIL.sub(lambda m: mask_identifier("email", m.group()), error)
        return data


DELIVERY_EXAMPLE = OpenApiExample(
    "A page of deliveries (masked)",
    value={
        "next": "http://localhost:8000/api/v1/deliveries/?campaign=12&cursor=cD0xMjM0NQ%3D%3D",
        "previous": None,
        "results": [
            {
                "id": 12346,
                "campaign": 12,
                "step": 31,
                "step_position": 1,
                "customer": 4711,
                "occurrence": "r202611271000",
                "variant": "A",
                "status": "clicked",
                "reason": "",
                "address": "h***@example.jp",
                "due_at": "2026-11-27T10:00:00+09:00",
                "created_at": "2026-11-27T10:00:00+09:00",
                "sent_at": "2026-11-27T10:00:04+09:00",
                "delivered_at": None,
                "opened_at": "2026-11-27T12:31:10+09:00",
                "clicked_at": "2026-11-27T12:31:40+09:00",
                "converted_at": None,
                "order": None,
                "revenue": None,
                "attempts": 1,
                "error": "",
            }
        ],
    },
    response_only=True,
)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Deliveries of the campaigns the asking user can see, newest first (cursor pages).

    Filter with ``?campaign=…&status=…&customer=…``. Addresses are masked for roles
    without personal-data access; an unmasked page is written to the audit log.
    """

    queryset = Delivery.objects.select_related("campaign", "step", "variant")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    pagination_class = DeliveryCursorPagination
    permission_classes = [HasDepartmentMembership]
    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]

    def get_queryset(self) -> QuerySet[Delivery]:
        visible = Campaign.objects.visible_to(self.request.user).values("pk")
        return super().get_queryset().filter(campaign__in=visible)

    @extend_schema(summary="One delivery of a visible campaign")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        delivery = self.get_object()
        show_pii = can_view_pii(request.user)
        context = {**self.get_serializer_context(), "show_pii": show_pii}
        if show_pii:
            audit_record(
                actor=request.user,
                action="delivery.view_pii",
                target=delivery,
                detail={"rows": 1},
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return Response(DeliverySerializer(delivery, context=context).data)

    @extend_schema(
        summary="Deliveries of visible campaigns, newest first, with cursor pagination",
        examples=[DELIVERY_EXAMPLE],
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        show_pii = can_view_pii(request.user)
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), "show_pii": show_pii}
        data = DeliverySerializer(page, many=True, context=context).data
        if show_pii and page:
            audit_record(
                actor=request.user,
                action="delivery.view_pii",
                detail={
                    "filters": {
                        key: request.query_params.get(key)
                        for key in DeliveryFilter.base_filters
                        if key in request.query_params
                    },
                    "rows": len(page),
                },
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return self.get_paginated_response(data)


# --- staff tasks ----------------------------------------------------------------------------


class CampaignRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name"]


class StaffTaskSerializer(serializers.ModelSerializer):
    """A task of the asking salesperson; the customer's name masked without ``view_pii``."""

    status = enum_field(StaffTask.Status)
    outcome_code = serializers.CharField(read_only=True)
    campaign = CampaignRefSerializer(read_only=True)
    customer_name = serializers.SerializerMethodField()
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = StaffTask
        fields = [
            "id",
            "campaign",
            "customer",
            "customer_name",
            "store",
            "title",
            "instructions",
            "due_at",
            "status",
            "outcome_code",
            "outcome",
            "completed_at",
            "created_at",
        ]

    def get_customer_name(self, task) -> str:
        name = task.customer.full_name
        return name if self.context.get("show_pii") else mask_text(name)


class StaffTaskQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[*StaffTask.Status.values, "all"], default=StaffTask.Status.OPEN
    )
    scope = serializers.ChoiceField(
        choices=["mine", "department"],
        default="mine",
        help_text=(
            "mine: assigned to you, or unassigned in your departments and stores; "
            "department: every task of the departments you manage."
        ),
    )


class StaffTaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """The asking user's staff tasks (visits, calls), as the tasks page lists them.

    Session only: a task belongs to a person, and an API token is nobody in particular.
    """

    queryset = StaffTask.objects.none()
    lookup_value_regex = r"\d+"
    serializer_class = StaffTaskSerializer
    filterset_class = None
    permission_classes = [HasDepartmentMembership]

    @extend_schema(
        summary="My staff tasks: visits and calls, soonest due first",
        parameters=[StaffTaskQuerySerializer],
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        from journeys.selectors import staff_tasks_for

        query = StaffTaskQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tasks = staff_tasks_for(request.user, **query.validated_data)
        page = self.paginate_queryset(tasks)
        context = {**self.get_serializer_context(), "show_pii": can_view_pii(request.user)}
        data = StaffTaskSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    @extend_schema(summary="One of my staff tasks (or of a department I manage)")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        from journeys.selectors import staff_task_for

        task = staff_task_for(request.user, int(kwargs["pk"]))
        context = {**self.get_serializer_context(), "show_pii": can_view_pii(request.user)}
        return Response(StaffTaskSerializer(task, context=context).data)


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("personas", PersonaViewSet)
    router.register("journeys", JourneyViewSet)
    router.register("campaigns", CampaignViewSet)
    router.register("deliveries", DeliveryViewSet, basename="delivery")
    router.register("staff-tasks", StaffTaskViewSet, basename="staff-task")


# Stages are listed inside their journey and revisions inside their persona or journey, so
# their own endpoints are mounted here rather than as router resources with a list.
urlpatterns = [
    path(
        "stages/<int:pk>/",
        StageViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="stage-detail",
    ),
    path(
        "revisions/<int:pk>/restore/",
        RevisionViewSet.as_view({"post": "restore"}),
        name="revision-restore",
    ),
]
