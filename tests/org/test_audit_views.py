"""The audit log: who may browse it, what each manager sees, filters, paging, CSV; and that
every sensitive action (unmasked view, export, merge, consent change, deletion) writes
exactly one entry naming the action, the actor and the target."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from config.org.models import AuditLog, Role
from config.org.selectors import audit_entries_visible_to
from config.org.services import audit_record
from config.org.tokens import api_token_create
from customers.metrics import metrics_rebuild
from customers.models import Consent, CustomerMerge, CustomerMetrics, Segment, SegmentMembership
from customers.selectors import preference_token
from journeys.feedback import unsubscribe
from journeys.models import Campaign, Suppression
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    IdentityFactory,
    JourneyFactory,
    OrderFactory,
    PersonaFactory,
    SegmentFactory,
    StageFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

URL = reverse("org:audit")
EXPORT = reverse("org:audit_export")
TOKYO = dt.timezone(dt.timedelta(hours=9))


def entry(*, actor=None, action="customer.view_pii", department=None, target=None, at=None):
    row = audit_record(actor=actor, action=action, department=department, target=target)
    if at is not None:
        AuditLog.objects.filter(pk=row.pk).update(at=at)
        row.refresh_from_db()
    return row


def shown_ids(response) -> set[int]:
    """Entry ids of the table rows (``data-entry``), not of anything else on the page."""
    html = response.content.decode()
    return {int(part.split('"', 1)[0]) for part in html.split('data-entry="')[1:]}


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def log(crm, sales, crm_viewer, crm_manager, sales_editor):
    """One entry of each kind a manager must or must not see."""
    return {
        "crm_department": entry(actor=None, action="segment.delete", department=crm),
        "crm_member": entry(actor=crm_viewer, action="customer.view_pii"),
        "own": entry(actor=crm_manager, action="customer.export"),
        "sales_department": entry(actor=sales_editor, action="segment.delete", department=sales),
        "sales_member": entry(actor=sales_editor, action="customer.view_pii"),
        "nobody": entry(actor=None, action="demo.reset"),
    }


# --- who sees what ---------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    for url in (URL, EXPORT):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("login") in response.url


def test_viewers_and_editors_get_403(client, crm_viewer, crm_editor, crm_pii_viewer):
    for user in (crm_viewer, crm_editor, crm_pii_viewer):
        client.force_login(user)
        assert client.get(URL).status_code == 403
        assert client.get(EXPORT).status_code == 403
    assert not AuditLog.objects.filter(action="audit.export").exists()


def test_manager_sees_their_departments_and_their_members_entries_only(client, crm_manager, log):
    client.force_login(crm_manager)
    response = client.get(URL)

    assert response.status_code == 200
    assert shown_ids(response) == {
        log["crm_department"].pk,
        log["crm_member"].pk,
        log["own"].pk,
    }


def test_a_member_of_two_departments_shows_to_both_managers(crm, sales, crm_manager, log):
    both = UserFactory(username="both", department=crm, department__role=Role.VIEWER)
    both.memberships.create(department=sales, role=Role.VIEWER)
    shared = entry(actor=both)
    sales_manager = UserFactory(username="sm", department=sales, department__role=Role.MANAGER)

    assert shared in audit_entries_visible_to(crm_manager)
    assert set(audit_entries_visible_to(sales_manager)) == {
        log["sales_department"],
        log["sales_member"],
        shared,
    }


def test_superuser_sees_every_entry(client, superuser, log):
    client.force_login(superuser)
    assert shown_ids(client.get(URL)) == {row.pk for row in log.values()}


def test_entries_are_newest_first_with_times_in_tokyo(client, crm, crm_manager):
    at = dt.datetime(2026, 3, 31, 15, 30, 5, tzinfo=dt.UTC)  # 2026-04-01 00:30:05 in Tokyo
    older = entry(actor=crm_manager, action="customer.export", at=at)
    newer = entry(actor=crm_manager, action="customer.view_pii", at=at + dt.timedelta(hours=1))
    client.force_login(crm_manager)
    html = client.get(URL).content.decode()

    assert html.index(f'data-entry="{newer.pk}"') < html.index(f'data-entry="{older.pk}"')
    assert "2026-04-01 00:30:05" in html
    assert "2026-03-31 15:30" not in html


# --- filters ---------------------------------------------------------------------------


def test_filters_by_action_actor_department_target_type_and_tokyo_dates(
    client, crm, sales, crm_viewer, crm_manager, superuser, log
):
    customer = CustomerFactory()
    on_customer = entry(actor=crm_viewer, action="customer.view_pii", target=customer)
    april_first = entry(
        actor=crm_viewer,
        action="consent.set",
        at=dt.datetime(2026, 3, 31, 15, 30, tzinfo=dt.UTC),  # 2026-04-01 00:30 in Tokyo
    )
    client.force_login(superuser)

    def ids(**query) -> set[int]:
        response = client.get(URL, query)
        assert response.status_code == 200, response.content
        return shown_ids(response)

    assert ids(action="segment.delete") == {log["crm_department"].pk, log["sales_department"].pk}
    assert ids(action="customer.") == {
        log["crm_member"].pk,
        log["own"].pk,
        log["sales_member"].pk,
        on_customer.pk,
    }
    assert ids(actor="crm-viewer") == {log["crm_member"].pk, on_customer.pk, april_first.pk}
    assert ids(department=sales.pk) == {log["sales_department"].pk}
    assert ids(target_type="customers.customer") == {on_customer.pk}
    assert ids(date_from="2026-04-01", date_to="2026-04-01") == {april_first.pk}
    assert april_first.pk not in ids(date_to="2026-03-31")
    assert april_first.pk not in ids(date_from="2026-04-02")
    assert ids(actor="crm-viewer", action="customer.view_pii") == {
        log["crm_member"].pk,
        on_customer.pk,
    }


def test_a_manager_cannot_filter_on_a_department_they_do_not_manage(client, sales, crm_manager):
    client.force_login(crm_manager)
    response = client.get(URL, {"department": sales.pk})

    assert response.status_code == 400
    assert 'data-field="department"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2026-02-30"}, "date_to"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"department": "x"}, "department"),
        ({"target_type": "nothing.here"}, "target_type"),
        ({"before": "-3"}, "before"),
    ],
)
def test_bad_filters_answer_400_naming_the_field(client, superuser, query, field):
    client.force_login(superuser)
    response = client.get(URL, query)
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()

    export = client.get(EXPORT, query)
    assert export.status_code == 400
    assert field in export.content.decode()
    assert not AuditLog.objects.filter(action="audit.export").exists()


def test_pages_by_keyset_without_gaps_or_repeats(client, crm, crm_manager, monkeypatch):
    monkeypatch.setattr("config.org.views_audit.PAGE_SIZE", 2)
    same_time = timezone.now()
    made = [entry(actor=crm_manager, action="segment.delete", at=same_time) for _ in range(5)]
    client.force_login(crm_manager)

    seen: list[int] = []
    query = {"action": "segment.delete"}
    for _page in range(4):
        response = client.get(URL, query)
        html = response.content.decode()
        ids = [int(part.split('"', 1)[0]) for part in html.split('data-entry="')[1:]]
        seen += ids
        if 'rel="next"' not in html:
            break
        query = {"action": "segment.delete", "before": ids[-1]}
    assert seen == sorted((row.pk for row in made), reverse=True)


def test_targets_link_to_their_page_while_they_exist(client, crm, superuser):
    customer = CustomerFactory()
    segment = SegmentFactory(owner_department=crm)
    entry(actor=superuser, action="customer.view_pii", target=customer)
    entry(actor=superuser, action="segment.delete", target=segment)
    segment_url = reverse("customers:segment_detail", args=[segment.pk])
    client.force_login(superuser)

    html = client.get(URL).content.decode()
    assert f'href="{reverse("customers:detail", args=[customer.pk])}"' in html
    assert f'href="{segment_url}"' in html

    segment_pk = segment.pk
    segment.delete()
    html = client.get(URL).content.decode()
    assert f'href="{segment_url}"' not in html
    assert f"segment #{segment_pk}" in html


# --- CSV export ------------------------------------------------------------------------


def test_csv_export_has_the_visible_filtered_entries_and_is_itself_audited(
    client, crm, crm_manager, log
):
    formula = entry(actor=crm_manager, action="=HYPERLINK(1)", department=crm)
    client.force_login(crm_manager)
    response = client.get(EXPORT, {"department": crm.pk})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store"
    rows = csv_rows(response)
    header, body = rows[0], rows[1:]
    assert header[0] == "Time (Asia/Tokyo)"
    actions = [row[3] for row in body]
    assert "'=HYPERLINK(1)" in actions  # formula neutralised
    assert "=HYPERLINK(1)" not in actions
    assert sorted(actions) == sorted(["'=HYPERLINK(1)", "segment.delete"])
    assert formula.pk  # written before the download
    export = AuditLog.objects.get(action="audit.export")
    assert export.actor == crm_manager
    assert f"department={crm.pk}" in export.detail["filters"]


def test_csv_export_of_a_manager_leaves_out_other_departments(client, crm_manager, log):
    client.force_login(crm_manager)
    rows = csv_rows(client.get(EXPORT))[1:]
    actors = {row[1] for row in rows}
    assert "sales-editor" not in actors
    assert {row[3] for row in rows} >= {"segment.delete", "customer.view_pii", "audit.export"}


# --- every sensitive action writes exactly one entry ----------------------------------


def only(action: str) -> AuditLog:
    entries = list(AuditLog.objects.filter(action=action))
    assert len(entries) == 1, f"{action}: {len(entries)} entries"
    return entries[0]


def target_of(row: AuditLog):
    return (ContentType.objects.get_for_id(row.target_type_id).model, row.target_id)


@pytest.fixture
def person():
    customer = CustomerFactory(family_name="Tanaka", given_name="Ichiro")
    IdentityFactory(customer=customer, value="ichiro@example.jp")
    return customer


def test_unmasked_profile_views_are_audited_and_masked_ones_are_not(
    client, api, crm_viewer, crm_pii_viewer, person
):
    client.force_login(crm_viewer)
    client.get(reverse("customers:detail", args=[person.pk]))
    api.force_authenticate(crm_viewer)
    api.get(f"/api/v1/customers/{person.pk}/")
    assert not AuditLog.objects.filter(action="customer.view_pii").exists()

    client.force_login(crm_pii_viewer)
    client.get(reverse("customers:detail", args=[person.pk]))
    row = only("customer.view_pii")
    assert (row.actor, target_of(row), row.detail["via"]) == (
        crm_pii_viewer,
        ("customer", str(person.pk)),
        "web",
    )
    api.force_authenticate(crm_pii_viewer)
    api.get(f"/api/v1/customers/{person.pk}/")
    api.get("/api/v1/customers/lookup/", {"kind": "email", "value": "ichiro@example.jp"})
    vias = sorted(AuditLog.objects.filter(action="customer.view_pii").values_list("detail__via"))
    assert vias == [("api",), ("api-lookup",), ("web",)]


def test_rfm_cell_shown_unmasked_is_audited_with_the_customers_shown(
    client, crm_viewer, crm_pii_viewer, person
):
    OrderFactory(customer=person, ordered_at=timezone.now() - dt.timedelta(days=3), total=5000)
    metrics_rebuild(now=timezone.now())
    metrics = CustomerMetrics.objects.get(customer=person)
    url = reverse("reports:rfm_cell", args=[metrics.rfm_recency, metrics.rfm_frequency])
    client.force_login(crm_viewer)
    assert client.get(url).status_code == 200
    assert not AuditLog.objects.filter(action="rfm_cell.view_pii").exists()

    client.force_login(crm_pii_viewer)
    assert client.get(url).status_code == 200
    row = only("rfm_cell.view_pii")
    assert row.actor == crm_pii_viewer
    assert row.detail["customers"] == [person.pk]


def test_segment_members_shown_unmasked_are_audited_on_the_page_and_the_api(
    client, api, crm, crm_viewer, crm_pii_viewer, person
):
    segment = SegmentFactory(owner_department=crm)
    SegmentMembership.objects.create(segment=segment, customer=person)
    url = f"/api/v1/segments/{segment.pk}/members/"
    page = reverse("customers:segment_detail", args=[segment.pk])
    api.force_authenticate(crm_viewer)
    assert api.get(url).status_code == 200
    client.force_login(crm_viewer)
    assert client.get(page).status_code == 200
    assert not AuditLog.objects.filter(action="segment.members_view_pii").exists()

    api.force_authenticate(crm_pii_viewer)
    assert api.get(url).status_code == 200
    row = only("segment.members_view_pii")
    assert (row.actor, target_of(row), row.department, row.detail) == (
        crm_pii_viewer,
        ("segment", str(segment.pk)),
        crm,
        {"via": "api", "customers": [person.pk]},
    )
    client.force_login(crm_pii_viewer)
    assert client.get(page).status_code == 200
    assert (
        AuditLog.objects.filter(
            action="segment.members_view_pii", detail__via="web", actor=crm_pii_viewer
        ).count()
        == 1
    )


def test_customer_and_segment_exports_are_audited(client, crm, crm_viewer, person):
    segment = SegmentFactory(owner_department=crm)
    SegmentMembership.objects.create(segment=segment, customer=person)
    client.force_login(crm_viewer)
    for fmt in ("csv", "xlsx"):
        response = client.get(reverse("customers:export"), {"format": fmt})
        assert response.status_code == 200
    response = client.get(reverse("customers:segment_export", args=[segment.pk]))
    assert response.status_code == 200

    rows = list(AuditLog.objects.filter(action="customer.export").order_by("pk"))
    assert [(row.actor, row.detail["format"]) for row in rows] == [
        (crm_viewer, "csv"),
        (crm_viewer, "xlsx"),
        (crm_viewer, "csv"),
    ]
    assert target_of(rows[2]) == ("segment", str(segment.pk))
    assert rows[2].department == crm


def test_report_journey_and_direct_mail_downloads_are_audited(
    client, crm, crm_viewer, crm_pii_viewer, person
):
    client.force_login(crm_viewer)
    response = client.get(reverse("reports:download", args=["customers", "rfm", "csv"]))
    assert response.status_code == 200
    row = only("report.export")
    assert (row.actor, row.detail["report"], row.detail["block"]) == (
        crm_viewer,
        "customers",
        "rfm",
    )

    journey = JourneyFactory(persona=PersonaFactory(owner_department=crm))
    StageFactory(journey=journey)
    assert client.get(reverse("journeys:journey_export_csv", args=[journey.pk])).status_code == 200
    row = only("journey.export")
    assert (row.actor, target_of(row), row.department) == (
        crm_viewer,
        ("journey", str(journey.pk)),
        crm,
    )

    campaign = CampaignFactory(owner_department=crm, channel=Campaign.Channel.DIRECT_MAIL)
    DeliveryFactory(step=CampaignStepFactory(campaign=campaign), customer=person)
    client.force_login(crm_pii_viewer)
    response = client.get(reverse("journeys:campaign_dm_csv", args=[campaign.pk]))
    assert response.status_code == 200
    row = only("campaign.dm_export")
    assert (row.actor, target_of(row)) == (crm_pii_viewer, ("campaign", str(campaign.pk)))


def test_merge_and_undo_are_audited(client, crm_editor, crm_manager):
    winner, loser = CustomerFactory(), CustomerFactory()
    client.force_login(crm_editor)
    response = client.post(reverse("customers:merge"), {"winner": winner.pk, "loser": loser.pk})
    assert response.status_code == 302
    row = only("customer.merge")
    assert (row.actor, target_of(row)) == (crm_editor, ("customer", str(winner.pk)))

    client.force_login(crm_manager)
    merge = CustomerMerge.objects.get()
    assert client.post(reverse("customers:merge_undo", args=[merge.pk])).status_code == 302
    row = only("customer.merge_undo")
    assert (row.actor, target_of(row)) == (crm_manager, ("customer", str(winner.pk)))


def test_every_consent_change_is_audited_once_and_no_change_writes_nothing(
    client, api, crm, crm_editor, person
):
    api.force_authenticate(crm_editor)
    url = f"/api/v1/customers/{person.pk}/consents/"
    body = {"channel": "email", "status": "granted", "source": "store"}
    assert api.post(url, body, format="json").status_code == 200
    assert api.post(url, body, format="json").status_code == 200  # same status: no change
    row = only("consent.set")
    assert (row.actor, target_of(row), row.detail) == (
        crm_editor,
        ("customer", str(person.pk)),
        {"channel": "email", "status": "granted", "source": "store"},
    )

    token = preference_token(person)
    client.post(reverse("customers:preferences_consents", args=[token]), {})  # untick email
    rows = list(AuditLog.objects.filter(action="consent.set").order_by("pk"))
    assert len(rows) == 2
    assert rows[1].actor is None
    assert rows[1].detail["status"] == Consent.Status.WITHDRAWN

    campaign = CampaignFactory(owner_department=crm)
    api.post(url, body, format="json")
    delivery = DeliveryFactory(step=CampaignStepFactory(campaign=campaign), customer=person)
    VariantFactory(step=delivery.step)
    unsubscribe(delivery.pk)
    rows = list(AuditLog.objects.filter(action="consent.set").order_by("pk"))
    assert len(rows) == 4
    assert (rows[3].actor, rows[3].detail["status"]) == (None, Consent.Status.WITHDRAWN)


def test_deletions_are_audited(client, api, crm, crm_editor, crm_manager, person):
    client.force_login(crm_editor)
    segment = SegmentFactory(owner_department=crm)
    assert client.post(reverse("customers:segment_delete", args=[segment.pk])).status_code == 302
    assert not Segment.objects.filter(pk=segment.pk).exists()
    row = only("segment.delete")
    assert (row.actor, target_of(row)) == (crm_editor, ("segment", str(segment.pk)))

    journey = JourneyFactory(persona=PersonaFactory(owner_department=crm))
    first = StageFactory(journey=journey, position=1)
    StageFactory(journey=journey, position=2, name="Purchase")
    assert client.post(reverse("journeys:stage_delete", args=[first.pk])).status_code == 302
    row = only("stage.delete")
    assert (row.actor, target_of(row), row.detail["stage"]) == (
        crm_editor,
        ("journey", str(journey.pk)),
        first.pk,
    )

    campaign = CampaignFactory(owner_department=crm)
    for position in (1, 2):
        VariantFactory(step=CampaignStepFactory(campaign=campaign, position=position))
    assert client.post(reverse("journeys:step_delete", args=[campaign.pk, 2])).status_code == 302
    row = only("campaign.step_delete")
    assert (row.actor, target_of(row)) == (crm_editor, ("campaign", str(campaign.pk)))

    identity = person.identities.get()
    api.force_authenticate(crm_editor)
    response = api.delete(f"/api/v1/customers/{person.pk}/identities/{identity.pk}/")
    assert response.status_code == 204
    row = only("customer.identity_remove")
    assert (row.actor, target_of(row)) == (crm_editor, ("customer", str(person.pk)))

    client.force_login(crm_manager)
    suppression = Suppression.objects.create(channel="email", value="x@example.jp", reason="bounce")
    client.post(reverse("journeys:suppression_remove", args=[suppression.pk]))
    assert only("suppression.remove").actor == crm_manager

    token, _secret = api_token_create(name="Shop", department=crm, source="shop", by=crm_manager)
    assert client.post(reverse("org:token_revoke", args=[token.pk])).status_code == 200
    row = only("api_token.revoke")
    assert (row.actor, target_of(row)) == (crm_manager, ("apitoken", str(token.pk)))
