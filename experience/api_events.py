"""``POST /api/v1/events``: the event ingestion endpoint of integrations (web shop, app…).

Tokens only: a signed-in staff session is not an integration (it has no ``source`` to
make ``event_id`` idempotent), so this endpoint answers 401/403 to it and names the token
it needs. Staff record activities through the dashboard instead.

Responses: 200 with ``{"accepted", "duplicates", "rejected": [{index, field, reason}]}``
when at least one item was stored or was a duplicate (rejections, if any, are listed);
400 with the same body when every item was rejected; 400 for malformed JSON or a body
without an ``events`` list, 413 for more than 1,000 items, 401 for a wrong or revoked
token; nothing is stored in any of these error cases.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    parser_classes,
    permission_classes,
    throttle_classes,
)
from rest_framework.exceptions import NotAuthenticated, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from config.org.authentication import ApiTokenAuthentication
from experience.ingest import MAX_ITEMS, BatchTooLarge, events_ingest


class HasApiToken(BasePermission):
    """Only callers authenticated by an API token (integrations)."""

    message = "This endpoint needs an API token: send 'Authorization: Bearer <token>'."

    def has_permission(self, request: Request, view) -> bool:
        if request.auth is None:
            raise NotAuthenticated(self.message)
        return True


class IdentifiersSerializer(serializers.Serializer):
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    app = serializers.CharField(required=False, help_text="App user ID")
    pos = serializers.CharField(required=False, help_text="POS member ID")
    cookie = serializers.CharField(required=False, help_text="Web cookie ID")
    line = serializers.CharField(required=False, help_text="LINE ID")
    dmp = serializers.CharField(required=False, help_text="External DMP ID")
    custom = serializers.CharField(required=False)


class EventItemSerializer(serializers.Serializer):
    """Documentation of one item; items are validated one by one by the ingest service."""

    type = serializers.CharField(help_text="A registered event type, e.g. page_view.")
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601 with a time zone; at most 5 minutes ahead, at most 3 years old."
    )
    event_id = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Your ID of the event; a second event with the same ID from the same "
        "source is counted as a duplicate and not stored.",
    )
    identifiers = IdentifiersSerializer(help_text="At least one identifier of the person.")
    touchpoint = serializers.CharField(required=False, help_text="Code of an active touchpoint.")
    properties = serializers.DictField(
        required=False,
        help_text="Checked against the event type's property schema; properties the "
        "schema does not name are stored as they are.",
    )
    values = serializers.ListField(
        child=serializers.ChoiceField(
            choices=["deal", "convenience", "fun", "reassurance", "empathy"]
        ),
        required=False,
        help_text="Experience values the interaction delivered.",
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventItemSerializer(many=True, help_text=f"At most {MAX_ITEMS} items.")


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in 'events', from 0.")
    field = serializers.CharField(help_text="e.g. type, occurred_at, identifiers.email.")
    reason = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored by this request.")
    duplicates = serializers.IntegerField(help_text="Events already stored (same event_id).")
    rejected = RejectionSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


VALID_BATCH = OpenApiExample(
    "A valid batch",
    request_only=True,
    value={
        "events": [
            {
                "type": "product_view",
                "occurred_at": "2026-11-22T10:15:00+09:00",
                "event_id": "web-7f3a-0001",
                "identifiers": {"cookie": "c-8d2f91"},
                "touchpoint": "web-shop",
                "properties": {"sku": "FL-0001", "price": 3200},
            },
            {
                "type": "add_to_cart",
                "occurred_at": "2026-11-22T10:16:30+09:00",
                "event_id": "web-7f3a-0002",
                "identifiers": {"cookie": "c-8d2f91", "email": "hanako@example.jp"},
                "properties": {"sku": "FL-0001", "quantity": 1, "price": 3200},
                "values": ["convenience"],
            },
        ]
    },
)
ALL_ACCEPTED = OpenApiExample(
    "All accepted",
    response_only=True,
    status_codes=["200"],
    value={"accepted": 2, "duplicates": 0, "rejected": []},
)
MIXED = OpenApiExample(
    "Mixed batch: some items rejected, the others stored",
    response_only=True,
    status_codes=["200"],
    value={
        "accepted": 1,
        "duplicates": 1,
        "rejected": [
            {"index": 2, "field": "type", "reason": "unknown event type 'page_veiw'"},
            {
                "index": 3,
                "field": "properties.price",
                "reason": "must be a number (schema type number), got string",
            },
            {"index": 4, "field": "identifiers.email", "reason": "not a valid email address"},
        ],
    },
)
ALL_REJECTED = OpenApiExample(
    "Every item rejected",
    response_only=True,
    status_codes=["400"],
    value={
        "accepted": 0,
        "duplicates": 0,
        "rejected": [
            {
                "index": 0,
                "field": "occurred_at",
                "reason": "has no time zone: add Z or an offset such as +09:00",
            }
        ],
    },
)
MALFORMED = OpenApiExample(
    "Malformed JSON",
    response_only=True,
    status_codes=["400"],
    value={"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)"},
)
WRONG_TOKEN = OpenApiExample(
    "Wrong or revoked token",
    response_only=True,
    status_codes=["401"],
    value={"detail": "Invalid or revoked API token."},
)
TOO_LARGE = OpenApiExample(
    "Too many items",
    response_only=True,
    status_codes=["413"],
    value={"detail": "a batch holds at most 1000 events; this one has 1500"},
)


class IngestThrottle(SimpleRateThrottle):
    """Rate per token (not per address): scope ``ingest``, ``API_THROTTLE_INGEST``."""

    scope = "ingest"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


def _events_create(request: Request) -> Response:
    """Validate a batch item by item and store the valid events."""
    body = request.data
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise ParseError('The body must be a JSON object {"events": [...]}.')
    token = request.auth
    try:
        result = events_ingest(
            items=events, source=token.source, department=token.department, by=None
        )
    except BatchTooLarge as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    data = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [
            {"index": r.index, "field": r.field, "reason": r.reason} for r in result.rejected
        ],
    }
    stored_or_known = result.accepted + result.duplicates
    code = status.HTTP_200_OK if stored_or_known or not events else status.HTTP_400_BAD_REQUEST
    return Response(data, status=code)


def _endpoint(view):
    return api_view(["POST"])(
        authentication_classes([ApiTokenAuthentication])(
            permission_classes([HasApiToken])(
                throttle_classes([IngestThrottle])(parser_classes([JSONParser])(view))
            )
        )
    )


events_create = extend_schema(
    operation_id="events_ingest",
    summary="Send a batch of behaviour events",
    description=__doc__,
    request=EventBatchSerializer,
    responses={
        200: IngestResultSerializer,
        400: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="IngestRefusal",
                serializers=[IngestResultSerializer, ErrorSerializer],
                resource_type_field_name=None,
            ),
            description="Every item rejected (same body), or malformed JSON ({detail}).",
        ),
        401: OpenApiResponse(ErrorSerializer, description="Missing, wrong or revoked token."),
        403: OpenApiResponse(ErrorSerializer, description="Not called with an API token."),
        413: OpenApiResponse(ErrorSerializer, description="More than 1,000 items."),
    },
    examples=[VALID_BATCH, ALL_ACCEPTED, MIXED, ALL_REJECTED, MALFORMED, WRONG_TOKEN, TOO_LARGE],
    tags=["events"],
)(_endpoint(_events_create))
# ``/api/v1/events/`` too, left out of the schema so the operation is listed once.
events_create_slash = extend_schema(exclude=True)(_endpoint(_events_create))
