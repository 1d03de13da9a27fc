"""The permission matrix: every URL pattern × method × role, with the status it must answer.

Rows are keyed by the pattern's full ``namespace:name``; DRF's format-suffix twin of a route
(``/customers.json``) is keyed ``name .format``. :func:`url_patterns` walks the resolver,
so a new pattern without a row fails ``test_every_url_pattern_has_a_row``.

The world the rows run against is ``tests.security.conftest.build_world``: one record of
each kind owned by CRM and not shared with Sales. A row's ``kwargs`` name values of
``World.refs`` (``pk="segment"``); :class:`Lit` wraps a literal.

Statuses per role come from a few profiles (:func:`roles` builds one from a default and
overrides). ``LOGIN`` means "302 to the login page". Requests carry no form data unless
the row gives ``data``: the matrix asks "may this role reach this handler", not whether
the form is valid, so an allowed POST often answers 200 (form re-shown) or 400.

The admin is not written row by row: :data:`ADMIN_POLICY` gives each registered model a
policy and :func:`admin_rows` derives its changelist/add/change/delete/history rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "crm_viewer", "crm_editor", "crm_manager", "sales_editor", "superuser")
STAFF = ROLES[1:]
LOGIN = "login"
FORMAT = " .format"


@dataclass(frozen=True)
class Lit:
    """A literal URL argument (not a reference into the world)."""

    value: object


@dataclass(frozen=True)
class Row:
    """One URL pattern: how to build its URL and what each method answers per role."""

    key: str
    name: str
    kwargs: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)  # method → role → status | LOGIN
    query: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    api: bool = False
    headers: dict = field(default_factory=dict)
    url: str = ""  # for a pattern ``reverse`` cannot build (a regex catch-all)


def roles(default, **overrides) -> dict:
    """Status per role: ``default`` for every role, then the named exceptions."""
    unknown = set(overrides) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    return {role: overrides.get(role, default) for role in ROLES}


# --- profiles for pages (anonymous is sent to the login page whatever the method) --------
def _page(status=200, **overrides):
    return roles(status, anonymous=LOGIN, **overrides)


READ = _page()  # every member reads it: lists, company-wide customers, reports
READ_OWNED = _page(sales_editor=404)  # a CRM record: Sales gets the "missing" answer
EDIT_OWNED = _page(crm_viewer=403, sales_editor=404)  # change a CRM record
EDIT_ANY = _page(crm_viewer=403)  # editors of any department (create forms)
MANAGE = _page(crm_viewer=403, crm_editor=403, sales_editor=403)  # managers only
# A read page re-renders on POST (no method guard); harmless, CSRF-protected, no write.
READ_ANY = READ
NOT_ALLOWED = _page(
    crm_viewer=405, crm_editor=405, crm_manager=405, sales_editor=405, superuser=405
)


def page(name: str, *, get=READ, post=NOT_ALLOWED, **kw) -> list[Row]:
    """A browser page; ``get``/``post`` are role profiles (``None``: not checked)."""
    expect = {method: profile for method, profile in (("GET", get), ("POST", post)) if profile}
    return [Row(key=name, name=name, expect=expect, **kw)]


def public(name: str, *, get=200, post=405, **kw) -> list[Row]:
    """A public page reached through a signed link: every role gets the same answer."""
    expect = {"GET": roles(get), "POST": roles(post)}
    return [Row(key=name, name=name, expect=expect, **kw)]


# --- profiles for the API (session auth only: DRF answers anonymous with 403) ------------
def _api(status=200, **overrides):
    return roles(status, anonymous=403, **overrides)


API_NOT_ALLOWED = _api(
    crm_viewer=405, crm_editor=405, crm_manager=405, sales_editor=405, superuser=405
)
API_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def api(
    name: str, *, kwargs=None, formats: bool = False, viewer_first=False, **methods
) -> list[Row]:
    """An API route and (``formats``) its ``.json`` twin; methods not given answer 405.

    ``viewer_first``: a permission class refuses viewers any unsafe method (403) before
    DRF looks at whether the route offers it.
    """
    kwargs = kwargs or {}
    refused = roles(405, anonymous=403, crm_viewer=403) if viewer_first else API_NOT_ALLOWED
    base = {m: API_NOT_ALLOWED if m == "GET" else refused for m in API_METHODS}
    expect = {**base, **methods}
    rows = [Row(key=name, name=name, kwargs=kwargs, expect=expect, api=True)]
    if formats:
        rows.append(
            Row(
                key=name + FORMAT,
                name=name,
                kwargs={**kwargs, "format": Lit("json")},
                expect=expect,
                api=True,
            )
        )
    return rows


def api_write(status: int, *, viewer=403, sales=404) -> dict:
    """An API write: allowed roles get ``status``; viewers 403, Sales 404 (record hidden)."""
    return _api(status, crm_viewer=viewer, sales_editor=sales)


API_READ = _api()
API_READ_OWNED = _api(sales_editor=404)
API_CREATE = _api(crm_viewer=403)  # POST {} by an editor: 400, set per row
API_EDIT_OWNED = _api(crm_viewer=403, sales_editor=404)

PK = {"pk": "customer"}


def done(status: int, *, viewer=403, sales=404, editor=None) -> dict:
    """A write: allowed roles get ``status`` (200 form re-shown, 302 done, 400 bad input)."""
    return _page(
        status,
        crm_viewer=viewer,
        crm_editor=status if editor is None else editor,
        sales_editor=sales,
    )


def _rows() -> list[Row]:
    rows: list[Row] = []
    add = rows.extend

    # --- home and ① customers ---------------------------------------------------------------
    add(page("home", post=READ_ANY))
    add(page("customers:index", post=READ_ANY))
    add(page("customers:detail", kwargs={"pk": "customer"}, post=READ_ANY))
    add(page("customers:segment_list", post=READ_ANY))
    add(page("customers:segment_create", get=EDIT_ANY, post=EDIT_ANY))
    add(page("customers:segment_builder", get=NOT_ALLOWED, post=READ))
    add(page("customers:segment_count_preview", get=NOT_ALLOWED, post=READ))
    seg = {"pk": "segment"}
    add(page("customers:segment_detail", kwargs=seg, get=READ_OWNED, post=READ_OWNED))
    add(page("customers:segment_edit", kwargs=seg, get=EDIT_OWNED, post=EDIT_OWNED))
    add(page("customers:segment_refresh", kwargs=seg, get=NOT_ALLOWED, post=done(302)))
    add(page("customers:segment_delete", kwargs=seg, get=NOT_ALLOWED, post=done(302)))
    add(
        page(
            "customers:segment_share",
            kwargs=seg,
            get=NOT_ALLOWED,
            post=done(302, editor=403),
            data={"department": "sales", "can_edit": Lit("")},
        )
    )
    add(
        page(
            "customers:segment_unshare",
            kwargs={"pk": "segment", "department_id": "sales"},
            get=NOT_ALLOWED,
            post=done(302, editor=403),
        )
    )
    add(page("customers:segment_export", kwargs=seg, get=READ_OWNED, post=READ_OWNED))
    add(page("customers:imports"))
    add(page("customers:import_upload", get=EDIT_ANY, post=EDIT_ANY))
    job = {"pk": "import_job"}
    add(page("customers:import_detail", kwargs=job, get=READ_OWNED))
    # Viewers see the mapping read-only; saving it is an edit.
    add(page("customers:import_mapping", kwargs=job, get=READ_OWNED, post=done(400)))
    add(page("customers:import_progress", kwargs=job, get=READ_OWNED))
    add(page("customers:import_run", kwargs=job, get=NOT_ALLOWED, post=done(400)))
    add(page("customers:export"))
    add(page("customers:merge_candidates"))
    add(page("customers:merge", get=NOT_ALLOWED, post=done(400, sales=400)))
    add(
        page(
            "customers:merge_undo",
            kwargs={"pk": "merge"},
            get=NOT_ALLOWED,
            post=done(302, editor=403, sales=403),
        )
    )
    pref = {"token": "preference_token"}
    add(public("customers:preferences", kwargs=pref))
    add(public("customers:preferences_consents", kwargs=pref, get=405, post=302))
    add(public("customers:preferences_date_add", kwargs=pref, get=405, post=400))
    add(
        public(
            "customers:preferences_date_remove",
            kwargs={"token": "preference_token", "date_id": "date"},
            get=405,
            post=302,
        )
    )

    # --- ② experience --------------------------------------------------------------------------
    add(page("experience:index", post=READ_ANY))
    add(page("experience:values", post=READ_ANY))
    add(page("experience:touchpoint_create", get=EDIT_ANY, post=done(400, sales=400)))
    tp = {"pk": "touchpoint"}
    add(page("experience:touchpoint", kwargs=tp, get=READ_OWNED, post=READ_OWNED))
    add(page("experience:touchpoint_edit", kwargs=tp, get=EDIT_OWNED, post=done(400)))
    add(
        page(
            "experience:activity_record",
            kwargs={"customer_pk": "customer"},
            get=NOT_ALLOWED,
            post=done(400, sales=400),
        )
    )
    add(page("experience:event_types", post=done(400, sales=400)))
    # Event types are listed to everyone (company-wide registry): Sales gets 403, not 404.
    add(
        page(
            "experience:event_type_edit",
            kwargs={"pk": "event_type"},
            get=_page(crm_viewer=403, sales_editor=403),
            post=done(302, sales=403),
        )
    )
    add(page("experience:products", post=READ_ANY))
    add(page("experience:product", kwargs={"pk": "product"}, post=done(400, sales=400)))
    add(page("experience:surveys", post=READ_ANY))
    add(page("experience:survey_new", get=EDIT_ANY, post=done(400, sales=400)))
    sv = {"pk": "survey"}
    add(page("experience:survey", kwargs=sv, get=READ_OWNED, post=READ_OWNED))
    add(page("experience:survey_edit", kwargs=sv, get=EDIT_OWNED, post=done(400)))
    add(page("experience:survey_test_link", kwargs=sv, get=NOT_ALLOWED, post=done(400)))
    add(page("experience:situations", post=READ_ANY))
    add(
        page(
            "experience:situation_handle",
            kwargs={"pk": "life_event"},
            get=NOT_ALLOWED,
            post=done(302),
        )
    )
    add(page("experience:situation_rules", post=READ_ANY))
    add(page("experience:situation_rule_create", get=EDIT_ANY, post=EDIT_ANY))
    rule = {"pk": "rule"}
    add(page("experience:situation_rule_edit", kwargs=rule, get=EDIT_OWNED, post=EDIT_OWNED))
    add(page("experience:situation_rule_toggle", kwargs=rule, get=NOT_ALLOWED, post=done(302)))
    add(public("survey_public:respond", kwargs={"token": "survey_token"}, post=400))
    # Not answered yet: "thanks" sends the person back to the question.
    add(public("survey_public:thanks", kwargs={"token": "survey_token"}, get=302))
    add(public("tracking:open", kwargs={"token": "open_token"}))
    add(public("tracking:click", kwargs={"token": "click_token"}, get=302))
    add(public("tracking:unsubscribe", kwargs={"token": "unsubscribe_token"}, post=200))

    # --- ③ platform -------------------------------------------------------------------------
    add(page("journeys:index", post=READ_ANY))
    add(page("journeys:campaigns"))
    add(page("journeys:campaign_new", get=EDIT_ANY, post=done(400, sales=400)))
    # No preset named: 404 for anyone who may create campaigns.
    add(page("journeys:preset_create", get=NOT_ALLOWED, post=done(404, sales=404)))
    cp = {"pk": "campaign"}
    add(page("journeys:campaign_detail", kwargs=cp, get=READ_OWNED))
    add(page("journeys:campaign_edit", kwargs=cp, get=EDIT_OWNED, post=done(400)))
    add(page("journeys:step_save", kwargs=cp, get=NOT_ALLOWED, post=done(400)))
    add(
        page(
            "journeys:step_delete",
            kwargs={"pk": "campaign", "position": "position"},
            get=NOT_ALLOWED,
            post=done(302),
        )
    )
    # No step/variant/customer chosen: 400 to whoever may see the campaign.
    add(page("journeys:campaign_preview", kwargs=cp, get=_page(400, sales_editor=404)))
    add(page("journeys:campaign_send_test", kwargs=cp, get=NOT_ALLOWED, post=done(302)))
    add(
        page(
            "journeys:campaign_action",
            kwargs={"pk": "campaign", "action": Lit("approve")},
            get=NOT_ALLOWED,
            post=done(302, editor=403),
        )
    )
    add(
        page(
            "journeys:campaign_dm_csv",
            kwargs={"pk": "dm_campaign"},
            get=_page(crm_viewer=403, crm_editor=403, crm_manager=403, sales_editor=404),
        )
    )
    add(page("journeys:calendar"))
    add(page("journeys:tasks"))
    # Any member of the task's department records a visit (staff_task_can_complete).
    add(
        page(
            "journeys:task_complete",
            kwargs={"pk": "task"},
            get=NOT_ALLOWED,
            post=done(302, viewer=302),
        )
    )
    # Managers read the company-wide policy; only the administrator changes it.
    add(page("journeys:contact_policy", get=MANAGE, post=_page(403, superuser=400)))
    add(page("journeys:suppressions", get=MANAGE, post=done(400, editor=403, sales=403)))
    add(
        page(
            "journeys:suppression_remove",
            kwargs={"pk": "suppression"},
            get=NOT_ALLOWED,
            post=done(302, editor=403, sales=403),
        )
    )
    add(page("journeys:persona_new", get=EDIT_ANY, post=done(422, sales=422)))
    add(page("journeys:persona_detail", kwargs={"pk": "persona"}, get=READ_OWNED))
    persona = {"kind": Lit("persona"), "pk": "persona"}
    # Whoever sees a record may discuss it, viewers included.
    add(page("journeys:comments", kwargs=persona, get=READ_OWNED, post=done(302, viewer=302)))
    add(
        page(
            "journeys:comment_resolve",
            kwargs={**persona, "comment_pk": "comment"},
            get=NOT_ALLOWED,
            post=done(302),
        )
    )
    add(page("journeys:notifications"))
    add(page("journeys:notifications_read", get=NOT_ALLOWED, post=_page(302)))
    add(page("journeys:notifications_badge"))
    add(
        page(
            "journeys:share",
            kwargs=persona,
            get=NOT_ALLOWED,
            post=done(302, editor=403),
            data={"department": "sales", "can_edit": Lit("")},
        )
    )
    add(
        page(
            "journeys:unshare",
            kwargs={**persona, "department_id": "sales"},
            get=NOT_ALLOWED,
            post=done(302, editor=403),
        )
    )
    add(page("journeys:journey_new", get=EDIT_ANY, post=done(400, sales=400)))
    jr = {"pk": "journey"}
    add(page("journeys:journey_detail", kwargs=jr, get=READ_OWNED))
    add(page("journeys:journey_duplicate", kwargs=jr, get=EDIT_OWNED, post=done(400)))
    add(page("journeys:journey_export_csv", kwargs=jr, get=READ_OWNED))
    add(page("journeys:journey_print", kwargs=jr, get=READ_OWNED))
    add(page("journeys:journey_history", kwargs=jr, get=READ_OWNED))
    add(page("journeys:stage_add", kwargs=jr, get=NOT_ALLOWED, post=done(302)))
    st = {"pk": "stage"}
    add(page("journeys:stage_move", kwargs=st, get=NOT_ALLOWED, post=done(302)))
    add(page("journeys:stage_delete", kwargs=st, get=NOT_ALLOWED, post=done(302)))
    add(page("journeys:persona_history", kwargs={"pk": "persona"}, get=READ_OWNED))
    add(
        page(
            "journeys:revision_restore", kwargs={"pk": "revision"}, get=NOT_ALLOWED, post=done(302)
        )
    )
    add(
        page(
            "journeys:cell",
            kwargs={**persona, "field": Lit("profile")},
            get=READ_OWNED,
            post=done(422),
        )
    )
    # Presence heartbeat: POST only.
    add(page("journeys:live", kwargs=persona, get=NOT_ALLOWED, post=READ_OWNED))

    # --- ④ reports -----------------------------------------------------------------------------
    add(page("reports:index", post=READ_ANY))
    add(page("reports:circle_figures", kwargs={"circle": Lit("customer")}, post=READ_ANY))
    add(page("reports:subscriptions", post=READ))
    add(
        page(
            "reports:subscription_toggle",
            kwargs={"pk": "subscription"},
            get=NOT_ALLOWED,
            post=_page(302, crm_viewer=404, crm_editor=404, sales_editor=404),
        )
    )
    # A cell's customers are personal data (viewers 403); POST saves it as a segment.
    add(
        page(
            "reports:rfm_cell",
            kwargs={"recency": Lit(1), "frequency": Lit(1)},
            post=done(400, sales=400),
        )
    )
    add(page("reports:report", kwargs={"slug": Lit("overview")}, post=READ_ANY))
    add(
        page(
            "reports:download",
            kwargs={"slug": Lit("customers"), "block": Lit("rfm"), "fmt": Lit("csv")},
            post=READ_ANY,
        )
    )

    # --- settings, accounts, language -------------------------------------------------------
    add(
        page(
            "org:tokens",
            get=MANAGE,
            post=_page(400, crm_viewer=403, crm_editor=403, sales_editor=403),
        )
    )
    add(
        page(
            "org:token_revoke",
            kwargs={"pk": "token"},
            get=NOT_ALLOWED,
            post=_page(200, crm_viewer=403, crm_editor=403, sales_editor=403),
        )
    )
    add(public("login", post=200))
    rows.append(
        Row(
            key="logout",
            name="logout",
            expect={"GET": roles(405, anonymous=302), "POST": roles(302)},
        )
    )
    add(page("password_change", post=READ))
    add(page("password_change_done"))
    add(public("password_reset", post=200))
    add(public("password_reset_done"))
    add(
        public(
            "password_reset_confirm", kwargs={"uidb64": Lit("MQ"), "token": Lit("x-y")}, post=200
        )
    )
    add(public("password_reset_complete"))
    add(public("set_language", get=302, post=302))

    # --- API -----------------------------------------------------------------------------------
    # Session authentication only (token auth is for ingestion): anonymous gets 403. Input is
    # validated before the service's permission check, so a viewer sending ``{}`` to a write
    # gets 400; rows with ``data`` send a valid body so the 403 itself is checked.
    add(api("api-me", GET=API_READ))
    add(api("api-root", GET=API_READ))
    add(api("api-schema", GET=API_READ))
    rows.extend(
        Row(
            key=row.key, name=row.name, expect=row.expect, api=True, headers={"accept": "text/html"}
        )
        for row in api("api-docs", GET=API_READ)
    )
    for name in ("api-events", "api-events-slash"):
        # Integration tokens only: a signed-in browser session is not a token.
        rows.append(
            Row(key=name, name=name, api=True, expect={"GET": roles(401), "POST": roles(401)})
        )
    add(api("api-reports", GET=API_READ))
    add(api("api-report", kwargs={"slug": Lit("overview")}, GET=API_READ))
    st_api = {"pk": "stage"}
    add(api("stage-detail", kwargs=st_api, GET=API_READ_OWNED, PATCH=api_write(400)))
    add(api("revision-restore", kwargs={"pk": "revision"}, POST=api_write(200)))

    # Customers are company-wide; unsafe methods need an editor anywhere (viewers 403 first).
    add(api("customer-list", GET=API_READ, POST=api_write(201, sales=201), viewer_first=True))
    add(api("customer-lookup", GET=_api(400), viewer_first=True))
    add(
        api(
            "customer-detail",
            kwargs=PK,
            GET=API_READ,
            PATCH=api_write(200, sales=200),
            viewer_first=True,
        )
    )
    add(
        api(
            "customer-consents",
            kwargs=PK,
            GET=API_READ,
            POST=api_write(400, sales=400),
            viewer_first=True,
        )
    )
    add(api("customer-identities", kwargs=PK, POST=api_write(400, sales=400), viewer_first=True))
    add(
        api(
            "customer-remove-identity",
            kwargs={"pk": "customer", "identity_id": "identity"},
            DELETE=api_write(204, sales=204),
            viewer_first=True,
        )
    )
    add(api("segment-list", GET=API_READ, POST=api_write(400, viewer=400, sales=400)))
    add(
        api(
            "segment-detail",
            kwargs=seg,
            GET=API_READ_OWNED,
            PUT=api_write(400, viewer=400),
            PATCH=api_write(200),
            DELETE=api_write(400),
        )
    )
    add(api("segment-contains", kwargs=seg, GET=_api(400, sales_editor=404)))
    add(api("segment-count", kwargs=seg, GET=API_READ_OWNED))
    add(api("segment-members", kwargs=seg, GET=API_READ_OWNED))
    add(api("import-job-list", GET=API_READ, POST=api_write(415, sales=415)))
    add(api("import-job-detail", kwargs=job, GET=API_READ_OWNED))
    add(api("import-job-errors", kwargs=job, GET=API_READ_OWNED))
    add(api("import-job-run", kwargs=job, POST=api_write(409)))
    add(api("touchpoint-list", GET=API_READ))
    add(api("touchpoint-detail", kwargs=tp, GET=API_READ_OWNED))
    add(api("survey-list", GET=API_READ))
    add(api("survey-detail", kwargs=sv, GET=API_READ_OWNED))
    add(api("survey-invitations", kwargs=sv, POST=api_write(400)))
    add(api("event-type-list", GET=API_READ))
    add(api("event-type-detail", kwargs={"pk": "event_type"}, GET=API_READ))
    add(api("product-list", GET=API_READ, viewer_first=True))
    add(
        api(
            "product-detail",
            kwargs={"pk": "product"},
            GET=API_READ,
            PATCH=api_write(200, sales=200),
            viewer_first=True,
        )
    )
    ps = {"pk": "persona"}
    add(api("persona-list", GET=API_READ, POST=api_write(400, viewer=400, sales=400)))
    add(api("persona-detail", kwargs=ps, GET=API_READ_OWNED, PATCH=api_write(400)))
    add(api("persona-comments", kwargs=ps, GET=API_READ_OWNED, POST=api_write(400, viewer=400)))
    add(api("persona-revisions", kwargs=ps, GET=API_READ_OWNED))
    add(api("journey-list", GET=API_READ, POST=api_write(400, viewer=400, sales=400)))
    add(api("journey-detail", kwargs=jr, GET=API_READ_OWNED, PATCH=api_write(400)))
    add(api("journey-comments", kwargs=jr, GET=API_READ_OWNED, POST=api_write(400, viewer=400)))
    add(api("journey-duplicate", kwargs=jr, POST=api_write(400, viewer=400)))
    add(api("journey-revisions", kwargs=jr, GET=API_READ_OWNED))
    add(api("campaign-list", GET=API_READ))
    add(api("campaign-detail", kwargs=cp, GET=API_READ_OWNED))
    add(api("campaign-results", kwargs=cp, GET=API_READ_OWNED))
    rows.extend(
        Row(
            key=row.key,
            name=row.name,
            kwargs=row.kwargs,
            expect=row.expect,
            api=True,
            data={"action": Lit("request_approval")},
        )
        for row in api("campaign-transition", kwargs=cp, POST=api_write(200))
    )
    add(api("delivery-list", GET=API_READ))
    add(api("delivery-detail", kwargs={"pk": "delivery"}, GET=API_READ_OWNED))
    add(api("staff-task-list", GET=API_READ))
    add(api("staff-task-detail", kwargs={"pk": "task"}, GET=API_READ_OWNED))

    # --- issue 9: data-subject requests, audit log, CSP reports ---------------------------
    # Subject requests: a manager who also has view_pii, or the administrator. The matrix's
    # manager has no view_pii, so only the superuser passes.
    admin_only = _page(403, superuser=200)
    add(page("customers:subject_export", kwargs=PK, get=admin_only))
    add(
        page("customers:subject_erase", kwargs=PK, get=admin_only, post=_page(403, superuser=200))
    )  # no confirmation: form again
    refused = {m: _api(403, superuser=405) for m in API_METHODS}
    add(
        api(
            "customer-personal-data",
            kwargs=PK,
            **{**refused, "GET": _api(403, superuser=200)},
        )
    )
    add(
        api(
            "customer-erase",
            kwargs=PK,
            **{**refused, "POST": _api(403, superuser=200)},
        )
    )
    add(page("org:audit", get=MANAGE))
    add(page("org:audit_export", get=MANAGE))
    # Not a CSP report (form-encoded, empty): 415 to anyone.
    add(public("csp_report", get=405, post=415))
    # The API's catch-all: unknown paths answer a JSON 404.
    rows.append(
        Row(
            key="api-not-found",
            name="api-not-found",
            url="/api/v1/no-such-thing/",
            expect={"GET": roles(404, anonymous=403)},
            api=True,
        )
    )
    return rows


ROWS: list[Row] = _rows()


# --- the URL patterns ---------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    key: str
    name: str
    route: str


def _walk(resolver, prefix: str = "", namespace: str | None = None):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = entry.name or ""
            full = f"{namespace}:{name}" if namespace and name else name
            yield full, prefix + str(entry.pattern)


def url_patterns(*, admin: bool = False) -> list[Pattern]:
    """Every URL pattern (non-admin by default; ``admin=True``: only the admin's)."""
    found = []
    for name, route in _walk(get_resolver()):
        is_admin = name.startswith("admin:") or route.startswith("admin/")
        if is_admin != admin:
            continue
        is_format = "(?P<format>" in route or "<drf_format_suffix:format>" in route
        found.append(Pattern(key=name + (FORMAT if is_format else ""), name=name, route=route))
    return found


# --- the admin -----------------------------------------------------------------------------
# Who reaches the admin: only ``is_staff`` users, and only through the model permissions the
# administrator grants them. Department staff work in the product pages; none of the matrix
# roles but the superuser is staff, so every admin URL sends them to the admin's login page.
# The policy says what a staff user given a model's permissions reaches (config/admin_site.py
# enforces it; test_admin_policy_is_enforced checks the two agree):
#   "department": DepartmentScopedAdmin — their departments' rows (and shares), nothing else;
#   "read-only": the administrator's, and only shown (append-only logs, read models);
#   "superuser": organisation-wide control or unmasked personal data — the administrator's.
DEPARTMENT, READ_ONLY, SUPERUSER = "department", "read-only", "superuser"
ADMIN_LOGIN = "admin-login"

ADMIN_POLICY = {
    "auth.group": SUPERUSER,
    "axes.accessattempt": SUPERUSER,
    "axes.accessfailurelog": SUPERUSER,
    "axes.accesslog": SUPERUSER,
    "customers.attributedefinition": DEPARTMENT,
    "customers.consent": READ_ONLY,
    "customers.consentchange": READ_ONLY,
    "customers.customer": SUPERUSER,
    "customers.customermerge": READ_ONLY,
    "customers.customermetrics": READ_ONLY,
    "customers.erasedidentifier": READ_ONLY,
    "customers.identity": SUPERUSER,
    "customers.importantdate": SUPERUSER,
    "customers.importjob": DEPARTMENT,
    "customers.importrowerror": SUPERUSER,  # rows about people
    "customers.lifeevent": SUPERUSER,
    "customers.segment": DEPARTMENT,
    "customers.segmentmembership": SUPERUSER,  # rows about people
    "django_q.failure": SUPERUSER,
    "django_q.ormq": SUPERUSER,
    "django_q.schedule": SUPERUSER,
    "django_q.success": SUPERUSER,
    "experience.cart": SUPERUSER,
    "experience.cartitem": SUPERUSER,
    "experience.event": SUPERUSER,
    "experience.eventfollowup": READ_ONLY,
    "experience.eventtype": SUPERUSER,
    "experience.experiencevalue": SUPERUSER,
    "experience.favorite": SUPERUSER,
    "experience.order": SUPERUSER,
    "experience.orderline": SUPERUSER,
    "experience.product": SUPERUSER,
    "experience.productchange": READ_ONLY,
    "experience.situationrule": DEPARTMENT,
    "experience.survey": DEPARTMENT,
    "experience.surveyinvitation": SUPERUSER,  # rows about people
    "experience.surveyresponse": SUPERUSER,  # rows about people
    "experience.touchpoint": DEPARTMENT,
    "journeys.campaign": DEPARTMENT,
    "journeys.campaignrun": DEPARTMENT,
    "journeys.campaignstep": DEPARTMENT,
    "journeys.comment": DEPARTMENT,
    "journeys.contactpolicy": SUPERUSER,
    "journeys.delivery": SUPERUSER,  # rows about people
    "journeys.enrollment": SUPERUSER,  # rows about people
    "journeys.journey": DEPARTMENT,
    "journeys.notification": READ_ONLY,
    "journeys.persona": DEPARTMENT,
    "journeys.presence": READ_ONLY,
    "journeys.revision": DEPARTMENT,  # read-only, scoped like its persona or journey
    "journeys.scoringrule": SUPERUSER,
    "journeys.stafftask": SUPERUSER,
    "journeys.stage": DEPARTMENT,
    "journeys.suppression": SUPERUSER,
    "journeys.variant": DEPARTMENT,
    "org.apitoken": SUPERUSER,
    "org.auditlog": READ_ONLY,
    "org.department": SUPERUSER,
    "org.loginsession": READ_ONLY,
    "org.membership": SUPERUSER,
    "org.share": SUPERUSER,
    "org.user": SUPERUSER,
    "reports.campaignoutcome": READ_ONLY,
    "reports.clvfit": READ_ONLY,
    "reports.clvsegmentvalue": READ_ONLY,
    "reports.clvsummary": READ_ONLY,
    "reports.cohort": READ_ONLY,
    "reports.cohortmonth": READ_ONLY,
    "reports.customerprediction": READ_ONLY,
    "reports.dailyanswers": READ_ONLY,
    "reports.dailydeliveries": READ_ONLY,
    "reports.dailyevents": READ_ONLY,
    "reports.dailyorders": READ_ONLY,
    "reports.dormancyday": READ_ONLY,
    "reports.dormancymonth": READ_ONLY,
    "reports.headlinesnapshot": READ_ONLY,
    "reports.reportsubscription": SUPERUSER,
    "reports.rfmcell": READ_ONLY,
    "reports.rollupstate": READ_ONLY,
}
# Admins that offer no add form even to the administrator (made elsewhere, or a singleton).
ADMIN_NO_ADD = {
    "org.apitoken",  # created on /settings/tokens/, where the secret is shown once
    "journeys.comment",  # written on the maps, where mentions notify people
    "journeys.revision",  # written by every change on the maps, never by hand
    "journeys.contactpolicy",  # one per company, made on first use (the world makes it)
    "customers.importrowerror",  # written by the import, shown read-only
    "experience.surveyinvitation",  # sent by campaigns and the API
    "axes.accessattempt",
    "axes.accessfailurelog",
    "axes.accesslog",
    "django_q.failure",
    "django_q.success",
    "django_q.ormq",
}
# Admins that never delete (append-only or singleton), beyond the read-only policy.
ADMIN_NO_DELETE = {"customers.importrowerror", "journeys.contactpolicy", "journeys.revision"}
# The world record each admin change page opens (others open a missing pk: 302 to index).
ADMIN_RECORDS = {
    "customers.customer": "customer",
    "customers.segment": "segment",
    "customers.importjob": "import_job",
    "customers.lifeevent": "life_event",
    "customers.customermerge": "merge",
    "experience.touchpoint": "touchpoint",
    "experience.eventtype": "event_type",
    "experience.product": "product",
    "experience.survey": "survey",
    "experience.situationrule": "rule",
    "journeys.persona": "persona",
    "journeys.journey": "journey",
    "journeys.stage": "stage",
    "journeys.comment": "comment",
    "journeys.revision": "revision",
    "journeys.campaign": "campaign",
    "journeys.delivery": "delivery",
    "journeys.stafftask": "task",
    "journeys.suppression": "suppression",
    "org.apitoken": "token",
    "reports.reportsubscription": "subscription",
}
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")


def admin_rows(registry) -> list[Row]:
    """Rows for every registered model's five admin pages, from :data:`ADMIN_POLICY`."""
    rows = []
    for model in registry:
        label = model._meta.label_lower
        policy = ADMIN_POLICY[label]
        record = ADMIN_RECORDS.get(label)
        for view in ADMIN_VIEWS:
            name = f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"
            kwargs = {}
            if view in ("change", "delete", "history"):
                kwargs = {"object_id": record or Lit(987654)}
            status = 200
            if (view == "add" and (policy == READ_ONLY or label in ADMIN_NO_ADD)) or (
                view == "delete" and (policy == READ_ONLY or label in ADMIN_NO_DELETE)
            ):
                status = 403
            elif view != "changelist" and view != "add" and not record:
                status = 302  # a missing object: the admin goes back to its index
            rows.append(
                Row(
                    key=name,
                    name=name,
                    kwargs=kwargs,
                    expect={"GET": roles(ADMIN_LOGIN, anonymous=LOGIN, superuser=status)},
                )
            )
    return rows
