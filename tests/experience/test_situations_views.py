"""Pages of detected situations and of their rules: scoping, masking, handling, editing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from customers.models import LifeEvent
from experience.models import SituationRule
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    LifeEventFactory,
    SituationRuleFactory,
)

pytestmark = pytest.mark.django_db

LIST = reverse("experience:situations")
RULES = reverse("experience:situation_rules")


def detection(rule, **kwargs) -> LifeEvent:
    return LifeEventFactory(
        kind=rule.kind,
        source=f"rule:{rule.pk}",
        department=rule.owner_department,
        confidence=rule.confidence,
        detail={"rule_id": rule.pk, "rule_name": rule.name},
        **kwargs,
    )


# --- the detections list ----------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client):
    life_event = LifeEventFactory()
    for url in (
        LIST,
        RULES,
        reverse("experience:situation_rule_create"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("login") in response["Location"]
    response = client.post(reverse("experience:situation_handle", args=[life_event.pk]))
    assert response.status_code == 302
    life_event.refresh_from_db()
    assert life_event.handled_at is None


def test_a_department_sees_its_rules_detections_and_unowned_ones(client, crm, sales, crm_viewer):
    ours = detection(SituationRuleFactory(owner_department=crm, name="Ours"))
    theirs = detection(SituationRuleFactory(owner_department=sales, name="Theirs"))
    signal = LifeEventFactory(kind="moving", source="address_change", department=None)
    client.force_login(crm_viewer)

    response = client.get(LIST)

    assert response.status_code == 200
    shown = {life_event.pk for life_event in response.context["page_obj"]}
    assert shown == {ours.pk, signal.pk}
    assert theirs.pk not in shown
    assert "Theirs" not in response.content.decode()


def test_detections_of_a_rule_shared_with_the_department_are_visible(
    client, crm, sales, crm_viewer, superuser
):
    rule = SituationRuleFactory(owner_department=sales)
    shared = detection(rule)
    share_grant(obj=rule, department=crm, can_edit=False, by=superuser)
    client.force_login(crm_viewer)

    response = client.get(LIST)

    assert [life_event.pk for life_event in response.context["page_obj"]] == [shared.pk]


def test_names_are_masked_without_personal_data_access(client, crm, crm_viewer, crm_pii_viewer):
    customer = CustomerFactory(family_name="佐藤", given_name="花子")
    detection(SituationRuleFactory(owner_department=crm), customer=customer)

    client.force_login(crm_viewer)
    masked = client.get(LIST).content.decode()
    client.force_login(crm_pii_viewer)
    shown = client.get(LIST).content.decode()

    assert "佐藤" not in masked
    assert f"Customer #{customer.pk}" in masked
    assert "佐藤 花子" in shown


def test_filters_default_to_unhandled_and_recent_with_counts_per_kind(client, crm, crm_viewer):
    rule = SituationRuleFactory(owner_department=crm)
    new = detection(rule)
    detection(rule, handled_at=timezone.now())
    detection(rule, detected_at=timezone.now() - dt.timedelta(days=60))
    moving = LifeEventFactory(kind="moving", source="address_change")
    client.force_login(crm_viewer)

    default = client.get(LIST)
    only_moving = client.get(LIST, {"kind": "moving"})
    handled = client.get(LIST, {"state": "handled"})
    everything = client.get(LIST, {"state": "all", "period": "all"})

    assert {e.pk for e in default.context["page_obj"]} == {new.pk, moving.pk}
    assert [(v, n) for v, _label, n in default.context["kind_counts"]] == [
        ("marriage", 1),
        ("moving", 1),
    ]
    assert [e.pk for e in only_moving.context["page_obj"]] == [moving.pk]
    assert len(only_moving.context["kind_counts"]) == 2  # counts ignore the kind filter
    assert len(handled.context["page_obj"]) == 1
    assert everything.context["page_obj"].paginator.count == 4


def test_a_bad_filter_is_a_400(client, crm_viewer):
    client.force_login(crm_viewer)
    assert client.get(LIST, {"period": "forever"}).status_code == 400


def test_htmx_filtering_returns_only_the_results(client, crm_viewer):
    client.force_login(crm_viewer)
    response = client.get(LIST, headers={"HX-Request": "true"})
    content = response.content.decode()
    assert 'id="situation-results"' in content
    assert "<html" not in content


def test_the_list_runs_a_fixed_number_of_queries(
    client, crm, crm_editor, django_assert_num_queries
):
    rule = SituationRuleFactory(owner_department=crm)
    for _ in range(3):
        detection(rule)
    LifeEventFactory(kind="moving", source="address_change")
    client.force_login(crm_editor)
    client.get(LIST)  # warm the session and content-type caches

    with django_assert_num_queries(10):
        response = client.get(LIST)
    for _ in range(5):
        detection(rule)
    with django_assert_num_queries(10):
        again = client.get(LIST)

    assert len(response.context["page_obj"]) == 4
    assert len(again.context["page_obj"]) == 9


# --- marking handled --------------------------------------------------------------------


def test_an_editor_marks_handled_with_htmx_and_gets_the_row(client, crm, crm_editor):
    life_event = detection(SituationRuleFactory(owner_department=crm))
    client.force_login(crm_editor)

    response = client.post(
        reverse("experience:situation_handle", args=[life_event.pk]),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith(f'<tr id="life-event-{life_event.pk}">')
    assert "Handled" in content
    life_event.refresh_from_db()
    assert life_event.handled_by == crm_editor


def test_marking_handled_without_javascript_goes_back_to_the_list(client, crm, crm_editor):
    life_event = detection(SituationRuleFactory(owner_department=crm))
    client.force_login(crm_editor)

    response = client.post(
        reverse("experience:situation_handle", args=[life_event.pk]),
        {"next": f"{LIST}?state=all"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?state=all"
    evil = client.post(
        reverse("experience:situation_handle", args=[life_event.pk]),
        {"next": "https://evil.example/"},
    )
    assert evil["Location"] == LIST


def test_a_viewer_cannot_mark_handled(client, crm, crm_viewer):
    life_event = detection(SituationRuleFactory(owner_department=crm))
    client.force_login(crm_viewer)

    list_page = client.get(LIST).content.decode()
    response = client.post(reverse("experience:situation_handle", args=[life_event.pk]))

    assert "Mark handled" not in list_page
    assert response.status_code == 403
    life_event.refresh_from_db()
    assert life_event.handled_at is None


def test_another_department_cannot_handle_a_detection_it_cannot_see(client, sales, crm_editor):
    life_event = detection(SituationRuleFactory(owner_department=sales))
    client.force_login(crm_editor)

    response = client.post(reverse("experience:situation_handle", args=[life_event.pk]))

    assert response.status_code == 404
    life_event.refresh_from_db()
    assert life_event.handled_at is None


def test_the_list_refuses_get_on_the_handle_url(client, crm_editor):
    life_event = LifeEventFactory()
    client.force_login(crm_editor)
    assert (
        client.get(reverse("experience:situation_handle", args=[life_event.pk])).status_code == 405
    )


# --- rules ------------------------------------------------------------------------------


def test_rules_page_lists_visible_rules_with_recent_detections(client, crm, sales, crm_viewer):
    ours = SituationRuleFactory(owner_department=crm, name="Wedding pages")
    SituationRuleFactory(owner_department=sales, name="Sales secret rule")
    detection(ours)
    detection(ours, detected_at=timezone.now() - dt.timedelta(days=45))
    client.force_login(crm_viewer)

    response = client.get(RULES)

    assert response.status_code == 200
    assert [(r.name, r.recent_detections, r.can_edit) for r in response.context["rules"]] == [
        ("Wedding pages", 1, False)
    ]
    content = response.content.decode()
    assert "Sales secret rule" not in content
    assert reverse("experience:situation_rule_create") not in content


def test_an_editor_creates_a_rule(client, crm, crm_editor):
    page_view = EventTypeFactory(name="page_view")
    client.force_login(crm_editor)

    response = client.post(
        reverse("experience:situation_rule_create"),
        {
            "name": "Baby pages",
            "kind": "childbirth",
            "event_type": page_view.pk,
            "property": "path",
            "operator": "contains",
            "value": "baby",
            "min_count": 3,
            "window_days": 30,
            "cooldown_days": 180,
            "confidence": 0.5,
            "is_active": "on",
            "owner_department": crm.pk,
        },
    )

    assert response.status_code == 302
    rule = SituationRule.objects.get()
    assert (rule.name, rule.owner_department, rule.min_count) == ("Baby pages", crm, 3)


def test_the_rule_form_names_each_bad_field(client, crm, crm_editor):
    page_view = EventTypeFactory(name="page_view")
    client.force_login(crm_editor)

    response = client.post(
        reverse("experience:situation_rule_create"),
        {
            "name": "Broken",
            "kind": "other",
            "event_type": page_view.pk,
            "property": "results",
            "operator": "gte",
            "value": "many",
            "min_count": 1,
            "window_days": 30,
            "cooldown_days": 30,
            "confidence": 0.5,
            "owner_department": crm.pk,
        },
    )

    assert response.status_code == 400
    assert "value" in response.context["form"].errors
    assert not SituationRule.objects.exists()


def test_an_editor_cannot_create_a_rule_for_another_department(client, sales, crm_editor):
    client.force_login(crm_editor)
    response = client.post(
        reverse("experience:situation_rule_create"),
        {
            "name": "Theirs",
            "kind": "other",
            "event_type": EventTypeFactory(name="page_view").pk,
            "min_count": 1,
            "window_days": 30,
            "cooldown_days": 30,
            "confidence": 0.5,
            "owner_department": sales.pk,
        },
    )
    assert response.status_code == 400  # not one of the departments offered
    assert not SituationRule.objects.exists()


def test_a_viewer_cannot_create_rules(client, crm_viewer):
    client.force_login(crm_viewer)
    assert client.get(reverse("experience:situation_rule_create")).status_code == 403


def test_the_edit_page_previews_how_many_customers_match_now(client, crm, crm_editor):
    rule = SituationRuleFactory(owner_department=crm)
    for customer in CustomerFactory.create_batch(2):
        EventFactory(customer=customer, event_type=rule.event_type, properties={"path": "/wedding"})
    client.force_login(crm_editor)

    response = client.get(reverse("experience:situation_rule_edit", args=[rule.pk]))

    assert response.status_code == 200
    assert response.context["preview"] == 2
    assert "would detect 2 customers" in response.content.decode()


def test_an_editor_changes_and_switches_off_a_rule(client, crm, crm_editor):
    rule = SituationRuleFactory(owner_department=crm)
    client.force_login(crm_editor)

    client.post(
        reverse("experience:situation_rule_edit", args=[rule.pk]),
        {
            "name": "Renamed",
            "kind": rule.kind,
            "event_type": rule.event_type_id,
            "property": "path",
            "operator": "contains",
            "value": "bridal",
            "min_count": 2,
            "window_days": 14,
            "cooldown_days": 90,
            "confidence": 0.7,
            "is_active": "on",
        },
    )
    client.post(reverse("experience:situation_rule_toggle", args=[rule.pk]))

    rule.refresh_from_db()
    assert (rule.name, rule.value, rule.window_days, rule.is_active) == (
        "Renamed",
        "bridal",
        14,
        False,
    )


def test_other_departments_and_viewers_cannot_edit_rules(client, crm, sales_editor, crm_viewer):
    rule = SituationRuleFactory(owner_department=crm)
    edit = reverse("experience:situation_rule_edit", args=[rule.pk])
    toggle = reverse("experience:situation_rule_toggle", args=[rule.pk])

    client.force_login(sales_editor)
    assert client.get(edit).status_code == 404
    assert client.post(toggle).status_code == 404
    client.force_login(crm_viewer)
    assert client.get(edit).status_code == 403
    assert client.post(toggle).status_code == 403
    rule.refresh_from_db()
    assert rule.is_active


# --- the 360 page -----------------------------------------------------------------------


def test_the_customer_page_shows_situations_with_confidence_and_status(client, crm, crm_viewer):
    customer = CustomerFactory()
    rule = SituationRuleFactory(owner_department=crm, name="Wedding pages", confidence=0.6)
    detection(rule, customer=customer)
    LifeEventFactory(
        customer=customer, kind="moving", source="address_change", handled_at=timezone.now()
    )
    client.force_login(crm_viewer)

    content = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert "Marriage" in content
    assert "Moving house" in content
    assert "60%" in content
    assert "Wedding pages" in content
    assert "address_change" in content
    assert "Not handled yet" in content
    assert "Handled" in content
    assert LIST in content
