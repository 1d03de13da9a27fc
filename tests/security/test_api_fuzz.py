"""Schemathesis fuzzes every operation of the REST API against our own OpenAPI schema.

The schema is drf-spectacular's, generated in-process (the same document /api/v1/schema/
serves); requests go through the real WSGI application (middleware, CSRF, authentication,
throttles) without a server. Each operation is run as a superuser, as a CRM editor (session
cookie + CSRF token) and, where the operation accepts API tokens, as an integration token
of CRM. Generated data is both schema-valid (positive) and schema-invalid (negative): the
API must never answer 5xx, must answer only documented status codes and content types,
bodies must match the documented schema, and schema-invalid input must be refused with 4xx.

Path parameters are drawn either at random (the 404 path) or from a world of real records
of CRM and Sales, so the success path and the other department's records are fuzzed too.
Every call runs in a savepoint that is rolled back: one call's writes never reach the next.
Schema-invalid bodies are sent as JSON where the operation reads JSON (see ``map_case``).

drf-spectacular emits no OpenAPI links, so there is no stateful (link-following) phase.
"""

from __future__ import annotations

import os
import secrets
import threading
import traceback
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import Phase, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from config.org.models import Role
from config.org.tokens import api_token_create
from config.wsgi import application
from customers.models import ImportJob
from reports.catalog import report_specs
from tests import factories as f
from tests.security.conftest import build_world

MAX_EXAMPLES = 10

RAW_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "with-security-parameters": False,
            "allow-x00": True,
            # Unknown query parameters are ignored by design (DRF), not schema violations.
            "allow-extra-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(RAW_SCHEMA, config=CONFIG)
schema.app = application

load_all_checks()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# Calls made, by "METHOD path" and role: the report quotes their sum.
CALLS: Counter = Counter()
# Path parameters of real records, by operation path; filled once the world exists.
REAL_PATH_PARAMETERS: dict[str, list[dict]] = {}
_server_errors = threading.local()


def _accepts_token(operation) -> bool:
    """Whether the operation lists the ``apiToken`` security scheme."""
    return any(
        "apiToken" in requirement for requirement in operation.definition.raw.get("security", [])
    )


token_schema = schema.include(lambda ctx: _accepts_token(ctx.operation))


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the time, a real record's id (of CRM or of Sales) instead of a random one."""
    real = REAL_PATH_PARAMETERS.get(context.operation.path) if context.operation else None
    if not real:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(real))


@schema.hook
def map_case(context, case):
    """Schema-invalid bodies go as JSON where the operation reads JSON.

    In a form encoding a number, a list or an object all arrive as text (or as nothing,
    from a malformed multipart body), so the API cannot tell "wrong type" from "a value"
    or "no fields": a limitation of the encoding, which the negative check cannot see.
    """
    if (
        case.meta is not None
        and case.meta.generation.mode is GenerationMode.NEGATIVE
        and case.media_type not in (None, "application/json")
        and "application/json" in _body_media_types(case.operation)
    ):
        case.media_type = "application/json"
    return case


def _body_media_types(operation) -> set[str]:
    return set(operation.definition.raw.get("requestBody", {}).get("content", {}))


def _remember_server_error(sender, request=None, **kwargs):
    _server_errors.last = traceback.format_exc()


def _paths(world, extra) -> dict[str, list[dict]]:
    """Every path template of the schema with the real records it can name."""
    ids = {
        "customers": [world["customer"], extra["sales_customer"]],
        "segments": [world["segment"], extra["sales_segment"]],
        "imports": [world["import_job"], extra["sales_import"]],
        "touchpoints": [world["touchpoint"]],
        "event-types": [world["event_type"]],
        "products": [world["product"]],
        "surveys": [world["survey"], extra["sales_survey"]],
        "personas": [world["persona"], extra["sales_persona"]],
        "journeys": [world["journey"]],
        "stages": [world["stage"]],
        "revisions": [world["revision"]],
        "campaigns": [world["campaign"], world["dm_campaign"], extra["sales_campaign"]],
        "deliveries": [world["delivery"]],
        "staff-tasks": [world["task"]],
    }
    paths = {}
    for path in RAW_SCHEMA["paths"]:
        resource = path.removeprefix("/api/v1/").split("/")[0]
        if "{identity_id}" in path:
            paths[path] = [{"id": world["customer"], "identity_id": str(world["identity"])}]
        elif "{slug}" in path:
            paths[path] = [{"slug": slug} for slug in extra["report_slugs"]]
        elif "{id}" in path and resource in ids:
            value = str if "staff-tasks" in path else int
            paths[path] = [{"id": value(pk)} for pk in ids[resource]]
    return paths


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker):
    """Departments, staff, a token and one record of each kind, for the whole module.

    Built inside a transaction rolled back after the module; each test then runs in its own
    savepoint (pytest-django), and each call in another. Django closes "old" connections at
    the start and end of each request, which would close ours mid-transaction, so that
    receiver is off while the module runs (the test client does the same).
    """

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(_remember_server_error)
    with django_db_blocker.unblock(), transaction.atomic():
        crm = f.DepartmentFactory(name="CRM & digital", slug="crm")
        sales = f.DepartmentFactory(name="Sales planning", slug="sales")
        crm_manager = f.UserFactory(
            username="fuzz-manager", department=crm, department__role=Role.MANAGER
        )
        users = {
            "superuser": f.UserFactory(username="fuzz-root", is_superuser=True, is_staff=True),
            "crm_editor": f.UserFactory(
                username="fuzz-editor", department=crm, department__role=Role.EDITOR
            ),
        }
        world = build_world(crm=crm, sales=sales, crm_manager=crm_manager)
        _token, secret = api_token_create(name="Fuzz shop", department=crm, source="shop", by=None)
        sales_customer = f.CustomerFactory()
        f.IdentityFactory(customer=sales_customer)
        extra = {
            "sales_customer": sales_customer.pk,
            "sales_segment": f.SegmentFactory(owner_department=sales).pk,
            "sales_survey": f.SurveyFactory(owner_department=sales).pk,
            "sales_persona": f.PersonaFactory(owner_department=sales).pk,
            "sales_campaign": f.CampaignFactory(owner_department=sales).pk,
            "sales_import": ImportJob.objects.create(
                owner_department=sales,
                kind=ImportJob.Kind.ORDERS,
                file="imports/fuzz.csv",
                original_name="orders.csv",
                sha256="1" * 64,
                source="pos",
            ).pk,
            "report_slugs": [spec.slug for spec in report_specs()],
        }
        for _ in range(3):
            customer = f.CustomerFactory()
            f.IdentityFactory(customer=customer)
            f.OrderFactory(customer=customer)
            f.EventFactory(customer=customer)
        REAL_PATH_PARAMETERS.update(_paths(world, extra))
        credentials = {role: _session_credentials(user) for role, user in users.items()}
        credentials["token"] = ({"Authorization": f"Token {secret}"}, {})
        yield credentials
        transaction.set_rollback(True)
    REAL_PATH_PARAMETERS.clear()
    # Shown with ``-s``: how many requests the module sent, over how many (operation, role).
    print(f"\nAPI fuzz: {sum(CALLS.values())} calls over {len(CALLS)} operation×role pairs")
    signals.got_request_exception.disconnect(_remember_server_error)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _session_credentials(user) -> tuple[dict, dict]:
    """Headers and cookies of a signed-in browser: session cookie and CSRF token."""
    client = Client()
    client.force_login(user)
    csrf = secrets.token_hex(32)
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
    return {"X-CSRFToken": csrf}, cookies


def _call_and_validate(case, headers: dict, cookies: dict, label: str) -> None:
    """One call in a rolled-back savepoint, then every check; a 5xx shows its traceback."""
    _server_errors.last = None
    with transaction.atomic():
        try:
            response = case.call(headers=headers, cookies=cookies)
        finally:
            transaction.set_rollback(True)
    CALLS[label] += 1
    if response.status_code >= 500 and _server_errors.last:
        pytest.fail(f"{label} answered {response.status_code}:\n{_server_errors.last}")
    case.validate_response(response, checks=CHECKS)


# CI replays the same examples for the same schema (derandomized), so a landing never
# depends on luck; FUZZ_RANDOM=1 draws new ones each run, to hunt (`make fuzz`).
FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", MAX_EXAMPLES)),
    phases=[Phase.explicit, Phase.generate],
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["superuser", "crm_editor"])
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_operation_fuzzed(case, role, fuzz_world):
    """Signed in (session + CSRF): no 5xx, only documented answers, bad input refused."""
    headers, cookies = fuzz_world[role]
    _call_and_validate(case, headers, cookies, f"{case.operation.label} as {role}")


@pytest.mark.django_db
@token_schema.parametrize()
@FUZZ_SETTINGS
def test_api_operation_fuzzed_with_token(case, fuzz_world):
    """With CRM's API token, on every operation that accepts tokens: the same checks."""
    headers, cookies = fuzz_world["token"]
    _call_and_validate(case, headers, cookies, f"{case.operation.label} as token")
