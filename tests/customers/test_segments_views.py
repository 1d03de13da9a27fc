"""Segment pages: list, builder with live count, detail, refresh, sharing, permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.models import AuditLog, Share
from config.org.services import share_grant
from customers.models import CustomerMetrics, Segment, SegmentMembership
from customers.segments import segment_refresh
from tests.factories import ConsentFactory, CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

EMAIL = {"type": "consent", "channel": "email", "status": "granted"}


def builder_post(**fields) -> dict:
    """Form fields of the builder: root group ``r`` and its rows."""
    return {"r-node": "group", "r-op": "and", **fields}


def test_list_shows_own_and_shared_segments_with_counts(
    client, crm, sales, crm_viewer, sales_editor, django_assert_num_queries
):
    own = SegmentFactory(owner_department=crm, name="Own", member_count=12)
    shared = SegmentFactory(owner_department=sales, name="Theirs")
    SegmentFactory(owner_department=sales, name="Hidden")
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    client.force_login(crm_viewer)
    url = reverse("customers:segment_list")
    client.get(url)

    # session, user, memberships (menu + scope), content type cached, segments, editable?
    with django_assert_num_queries(5):
        html = client.get(url).content.decode()

    assert "Own" in html
    assert "Theirs" in html
    assert "Hidden" not in html
    assert "Shared with you" in html
    assert reverse("customers:segment_detail", args=[own.pk]) in html
    assert "New segment" not in html  # a viewer creates nothing


def test_another_departments_segment_answers_404(client, sales, crm_editor):
    other = SegmentFactory(owner_department=sales)
    client.force_login(crm_editor)

    for name in ("segment_detail", "segment_edit"):
        assert client.get(reverse(f"customers:{name}", args=[other.pk])).status_code == 404
    assert client.post(reverse("customers:segment_refresh", args=[other.pk])).status_code == 404


def test_viewer_cannot_edit_and_shared_editor_can(client, crm, sales, crm_viewer, sales_editor):
    segment = SegmentFactory(owner_department=crm)
    client.force_login(crm_viewer)
    assert client.get(reverse("customers:segment_edit", args=[segment.pk])).status_code == 403
    assert client.get(reverse("customers:segment_create")).status_code == 403

    share_grant(obj=segment, department=sales, can_edit=True, by=None)
    client.force_login(sales_editor)
    assert client.get(reverse("customers:segment_edit", args=[segment.pk])).status_code == 200


def test_create_page_saves_a_segment_from_builder_rows(client, crm, crm_editor):
    ConsentFactory(channel="email")
    client.force_login(crm_editor)

    response = client.post(
        reverse("customers:segment_create"),
        {
            "name": "Email opt-ins",
            "description": "",
            "kind": "dynamic",
            "owner_department": crm.pk,
            **builder_post(
                **{
                    "r-0-node": "condition",
                    "r-0-type": "consent",
                    "r-0-channel": "email",
                    "r-0-status": "granted",
                    "r-1-node": "condition",
                    "r-1-not": "on",
                    "r-1-type": "metric",
                    "r-1-field": "order_count",
                    "r-1-op": "gte",
                    "r-1-value": "2",
                }
            ),
        },
    )

    segment = Segment.objects.get(name="Email opt-ins")
    assert response.status_code == 302
    assert response.url == reverse("customers:segment_detail", args=[segment.pk])
    assert segment.rules == {
        "op": "and",
        "children": [
            EMAIL,
            {
                "op": "not",
                "child": {"type": "metric", "field": "order_count", "op": "gte", "value": 2},
            },
        ],
    }


def test_invalid_rules_are_not_saved_and_the_condition_is_named(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        reverse("customers:segment_create"),
        {
            "name": "Bad",
            "kind": "dynamic",
            "owner_department": crm.pk,
            **builder_post(
                **{
                    "r-0-node": "condition",
                    "r-0-type": "consent",
                    "r-0-channel": "email",
                    "r-1-node": "condition",
                    "r-1-type": "metric",
                    "r-1-field": "order_count",
                    "r-1-op": "gte",
                    "r-1-value": "two",
                }
            ),
        },
    )

    assert response.status_code == 200
    assert "Condition 2 (value): expected a number" in response.content.decode()
    assert not Segment.objects.exists()


def test_count_preview_answers_the_count_partial(client, crm_editor):
    ConsentFactory(channel="email")
    ConsentFactory(channel="email")
    ConsentFactory(channel="sms")
    client.force_login(crm_editor)
    data = builder_post(**{"r-0-node": "condition", "r-0-type": "consent", "r-0-channel": "email"})

    response = client.post(
        reverse("customers:segment_count_preview"), data, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.strip().startswith('<output id="segment-count"')
    assert 'data-count="2"' in html
    assert "<html" not in html


def test_count_preview_names_the_bad_condition(client, crm_editor):
    client.force_login(crm_editor)
    data = builder_post(
        **{
            "r-0-node": "condition",
            "r-0-type": "consent",
            "r-0-channel": "email",
            "r-1-node": "group",
            "r-1-op": "or",
            "r-1-0-node": "condition",
            "r-1-0-type": "life_event",
        }
    )

    html = client.post(reverse("customers:segment_count_preview"), data).content.decode()

    assert 'data-state="error"' in html
    assert "Condition 2.1 (kind): is required" in html


def test_builder_adds_removes_and_retypes_rows_and_updates_the_count(client, crm_editor):
    ConsentFactory(channel="email")
    client.force_login(crm_editor)
    url = reverse("customers:segment_builder")
    base = builder_post(**{"r-0-node": "condition", "r-0-type": "consent", "r-0-channel": "email"})

    added = client.post(url, {**base, "r-new": "nps", "action": "add:r"}).content.decode()
    assert 'name="r-1-type"' in added
    assert 'name="r-1-category"' in added
    assert 'hx-swap-oob="true"' in added
    assert 'data-count="0"' in added  # email consent AND promoter: nobody yet

    grouped = client.post(url, {**base, "action": "group:r"}).content.decode()
    assert 'name="r-1-op"' in grouped
    assert 'name="r-1-new"' in grouped

    removed = client.post(url, {**base, "action": "remove:r-0"}).content.decode()
    assert 'name="r-0-type"' not in removed
    assert 'data-count="1"' in removed  # an empty AND group matches everyone

    retyped = client.post(url, {**base, "r-0-type": "identity"}).content.decode()
    assert 'name="r-0-kind"' in retyped
    assert 'name="r-0-channel"' not in retyped


def test_builder_applies_json_from_the_power_user_textarea(client, crm_editor):
    client.force_login(crm_editor)

    html = client.post(
        reverse("customers:segment_builder"),
        {
            **builder_post(),
            "action": "json",
            "rules_json": '{"op": "or", "children": [{"type": "nps", "category": "passive"}]}',
        },
    ).content.decode()

    assert 'name="r-0-category"' in html
    assert '<option value="or" selected>' in html

    bad = client.post(
        reverse("customers:segment_builder"),
        {**builder_post(), "action": "json", "rules_json": '{"op": "or", "children": [1]}'},
    ).content.decode()
    assert "rules.children[0]: expected an object" in bad


def test_edit_page_shows_existing_rows(client, crm, crm_editor):
    segment = SegmentFactory(owner_department=crm, rules={"op": "and", "children": [EMAIL]})
    client.force_login(crm_editor)

    html = client.get(reverse("customers:segment_edit", args=[segment.pk])).content.decode()

    assert 'name="r-0-channel"' in html
    assert f'name="segment" value="{segment.pk}"' in html


def test_detail_shows_rules_members_masked_and_computed_time(client, crm, crm_viewer):
    member = CustomerFactory(family_name="山田", given_name="花子")
    ConsentFactory(customer=member, channel="email")
    CustomerMetrics.objects.create(customer=member, order_count=1)
    segment = SegmentFactory(owner_department=crm, rules=EMAIL)
    segment_refresh(segment=segment)
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:segment_detail", args=[segment.pk])).content.decode()

    assert "email consent granted" in html
    assert f"Customer #{member.pk}" in html
    assert "山田" not in html
    local = timezone.localtime(Segment.objects.get(pk=segment.pk).computed_at)
    assert local.strftime("%Y-%m-%d %H:%M") in html
    assert "Asia/Tokyo" in html
    assert "Refresh membership now" not in html  # viewers do not refresh


def test_detail_shows_names_to_pii_viewers(client, crm, crm_pii_viewer):
    member = CustomerFactory(family_name="山田", given_name="花子")
    segment = SegmentFactory(owner_department=crm)
    SegmentMembership.objects.create(segment=segment, customer=member)
    client.force_login(crm_pii_viewer)

    html = client.get(reverse("customers:segment_detail", args=[segment.pk])).content.decode()

    assert "山田 花子" in html


def test_refresh_button_recomputes(client, crm, crm_editor):
    ConsentFactory(channel="email")
    segment = SegmentFactory(owner_department=crm, rules=EMAIL)
    client.force_login(crm_editor)

    response = client.post(reverse("customers:segment_refresh", args=[segment.pk]))

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert segment.computed_at is not None


def test_managers_share_and_unshare_editors_cannot(client, crm, sales, crm_manager, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    share_url = reverse("customers:segment_share", args=[segment.pk])

    client.force_login(crm_editor)
    assert client.post(share_url, {"department": sales.pk}).status_code == 403
    assert (
        "Share</button>"
        not in client.get(reverse("customers:segment_detail", args=[segment.pk])).content.decode()
    )

    client.force_login(crm_manager)
    client.post(share_url, {"department": sales.pk, "can_edit": "on"})
    assert Share.objects.get(object_id=segment.pk, department=sales).can_edit

    client.post(reverse("customers:segment_unshare", args=[segment.pk, sales.pk]))
    assert not Share.objects.filter(object_id=segment.pk).exists()


def test_export_of_members_is_masked_and_audited(client, crm, crm_viewer, sales_editor):
    member = CustomerFactory(family_name="山田", given_name="花子")
    CustomerFactory(family_name="佐藤")
    segment = SegmentFactory(owner_department=crm)
    SegmentMembership.objects.create(segment=segment, customer=member)
    client.force_login(crm_viewer)

    response = client.get(reverse("customers:segment_export", args=[segment.pk]), {"format": "csv"})

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response.status_code == 200
    assert str(member.pk) in body
    assert "山田" not in body
    assert "佐藤" not in body
    assert AuditLog.objects.filter(action="customer.export").exists()
    client.force_login(sales_editor)
    assert client.get(reverse("customers:segment_export", args=[segment.pk])).status_code == 404
