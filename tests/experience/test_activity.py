"""Staff record a visit, call or meeting on a customer profile; it lands on the timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from customers.timeline import TimelineFilters, timeline_page
from experience.models import Event, ExperienceValue, Touchpoint
from experience.services import activity_record
from tests.factories import CustomerFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(monkeypatch):
    """The ``events_stored`` calls made (the follow-up task itself is tested elsewhere)."""
    calls = []
    monkeypatch.setattr(
        "experience.pipeline.events_stored", lambda *, touched: calls.append(touched)
    )
    return calls


@pytest.fixture
def customer():
    return CustomerFactory()


@pytest.fixture
def store(crm):
    return TouchpointFactory(
        owner_department=crm,
        code="ginza",
        name="Ginza store",
        kind=Touchpoint.Kind.OFFLINE,
        channel=Touchpoint.Channel.STORE,
    )


def url(customer) -> str:
    return reverse("experience:activity_record", args=[customer.pk])


def form_data(**overrides) -> dict:
    when = timezone.localtime() - dt.timedelta(hours=1)
    data = {
        "activity-kind": "call",
        "activity-touchpoint": "",
        "activity-occurred_at": when.strftime("%Y-%m-%dT%H:%M"),
        "activity-note": "Asked about wedding bouquets",
        "activity-outcome": "Sent a brochure",
        "activity-values": ["reassurance", "empathy"],
    }
    data.update(overrides)
    return data


# --- Service ---------------------------------------------------------------------------------


def test_activity_is_stored_as_a_staff_event_with_note_values_and_follow_up(
    customer, store, crm_editor, stored
):
    at = timezone.now() - dt.timedelta(hours=2)

    event = activity_record(
        customer=customer,
        kind="store_visit",
        touchpoint=store,
        occurred_at=at,
        note="Tried the new roses",
        outcome="Will come back",
        values=["fun"],
        by=crm_editor,
    )

    event = Event.objects.select_related("event_type").get(pk=event.pk)
    assert event.event_type.name == "store_visit"
    assert event.source == "staff"
    assert event.event_id.startswith("staff-")
    assert event.touchpoint == store
    assert event.occurred_at == at
    assert event.properties == {
        "note": "Tried the new roses",
        "outcome": "Will come back",
        "recorded_by": crm_editor.pk,
        "store": "ginza",
    }
    assert ExperienceValue.codes_from_bits(event.value_bits) == ["fun"]
    assert stored == [{"store_visit": [customer.pk]}]


def test_call_and_meeting_carry_the_gist_in_their_registry_property(customer, crm_editor, stored):
    at = timezone.now()
    call = activity_record(
        customer=customer,
        kind="call",
        touchpoint=None,
        occurred_at=at,
        note="Delivery late\nPromised a coupon",
        by=crm_editor,
    )
    meeting = activity_record(
        customer=customer,
        kind="meeting",
        touchpoint=None,
        occurred_at=at,
        note="Yearly plan",
        by=crm_editor,
    )

    assert call.properties["reason"] == "Delivery late"
    assert meeting.properties["purpose"] == "Yearly plan"
    assert call.event_id != meeting.event_id


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"occurred_at": timezone.now() + dt.timedelta(days=1)}, "occurred_at"),
        ({"kind": "page_view"}, "kind"),
        ({"note": ""}, "note"),
        ({"note": "x" * 1001}, "note"),
        ({"values": ["luxury"]}, "values"),
    ],
)
def test_bad_activity_names_the_field_and_stores_nothing(
    customer, crm_editor, stored, override, field
):
    arguments = {
        "customer": customer,
        "kind": "call",
        "touchpoint": None,
        "occurred_at": timezone.now() - dt.timedelta(minutes=5),
        "note": "Called",
        "by": crm_editor,
        **override,
    }

    with pytest.raises(ValidationError) as error:
        activity_record(**arguments)

    assert field in error.value.message_dict
    assert not Event.objects.exists()
    assert stored == []


def test_touchpoint_must_be_visible_to_the_recorder(customer, sales, crm_editor, stored):
    hidden = TouchpointFactory(owner_department=sales)

    with pytest.raises(ValidationError) as error:
        activity_record(
            customer=customer,
            kind="call",
            touchpoint=hidden,
            occurred_at=timezone.now(),
            note="Called",
            by=crm_editor,
        )

    assert "touchpoint" in error.value.message_dict


def test_viewers_cannot_record(customer, crm_viewer, stored):
    with pytest.raises(PermissionDenied):
        activity_record(
            customer=customer,
            kind="call",
            touchpoint=None,
            occurred_at=timezone.now(),
            note="Called",
            by=crm_viewer,
        )


def test_recorded_activity_shows_its_note_on_the_timeline(customer, crm_editor, stored):
    activity_record(
        customer=customer,
        kind="call",
        touchpoint=None,
        occurred_at=timezone.now(),
        note="Asked about wedding bouquets",
        outcome="Sent a brochure",
        by=crm_editor,
    )

    entries, _cursor = timeline_page(customer.pk, filters=TimelineFilters(viewer=crm_editor))

    assert entries[0].kind == "call"
    assert "Asked about wedding bouquets" in entries[0].detail
    assert "Sent a brochure" in entries[0].detail


# --- The panel and its endpoint --------------------------------------------------------------


def test_editor_sees_the_panel_on_the_profile_with_offline_touchpoints_first(
    client, customer, store, crm, crm_editor
):
    TouchpointFactory(owner_department=crm, name="Web shop")
    client.force_login(crm_editor)

    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert "Record a visit, call or meeting" in html
    assert html.index("Ginza store") < html.index("Web shop")
    assert url(customer) in html


def test_viewer_does_not_see_the_panel(client, customer, crm_viewer):
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert "Record a visit, call or meeting" not in html


def test_htmx_post_records_and_swaps_the_form_with_a_confirmation(
    client, customer, store, crm_editor, stored
):
    client.force_login(crm_editor)

    response = client.post(
        url(customer),
        form_data(**{"activity-touchpoint": store.pk}),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response["HX-Trigger"] == "activity-recorded"
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="activity-form">')
    assert "Recorded." in html
    event = Event.objects.get()
    assert event.customer == customer
    assert event.touchpoint == store
    assert event.properties["note"] == "Asked about wedding bouquets"
    assert ExperienceValue.codes_from_bits(event.value_bits) == ["reassurance", "empathy"]
    # The time typed is Tokyo time.
    typed = form_data()["activity-occurred_at"]
    assert timezone.localtime(event.occurred_at).strftime("%Y-%m-%dT%H:%M") == typed


def test_post_without_javascript_goes_back_to_the_profile(client, customer, crm_editor, stored):
    client.force_login(crm_editor)

    response = client.post(url(customer), form_data())

    assert response.status_code == 302
    assert response.url == reverse("customers:detail", args=[customer.pk]) + "#timeline"
    assert Event.objects.filter(customer=customer, event_type__name="call").exists()


def test_future_time_is_refused_on_the_when_field(client, customer, crm_editor, stored):
    client.force_login(crm_editor)
    tomorrow = timezone.localtime() + dt.timedelta(days=1)

    response = client.post(
        url(customer),
        form_data(**{"activity-occurred_at": tomorrow.strftime("%Y-%m-%dT%H:%M")}),
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert "The time cannot be in the future." in html
    assert 'id="id_activity-occurred_at_error"' in html
    assert not Event.objects.exists()


def test_invalid_post_without_javascript_shows_the_form_again(client, customer, crm_editor):
    client.force_login(crm_editor)

    response = client.post(url(customer), form_data(**{"activity-note": ""}))

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Event.objects.exists()


def test_touchpoint_of_another_department_is_not_a_choice(
    client, customer, sales, crm_editor, stored
):
    hidden = TouchpointFactory(owner_department=sales)
    client.force_login(crm_editor)

    response = client.post(
        url(customer), form_data(**{"activity-touchpoint": hidden.pk}), headers={"HX-Request": "1"}
    )

    assert "Select a valid choice" in response.content.decode()
    assert not Event.objects.exists()


def test_shared_touchpoint_is_a_choice(client, customer, sales, crm, crm_editor, stored):
    shared = TouchpointFactory(owner_department=sales, name="Sales visit")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    client.force_login(crm_editor)

    response = client.post(url(customer), form_data(**{"activity-touchpoint": shared.pk}))

    assert response.status_code == 302
    assert Event.objects.get().touchpoint == shared


def test_viewer_gets_403(client, customer, crm_viewer):
    client.force_login(crm_viewer)

    assert client.post(url(customer), form_data()).status_code == 403
    assert not Event.objects.exists()


def test_anonymous_visitor_is_sent_to_login(client, customer):
    response = client.post(url(customer), form_data())

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not Event.objects.exists()


def test_get_is_not_allowed(client, customer, crm_editor):
    client.force_login(crm_editor)

    assert client.get(url(customer)).status_code == 405


def test_unknown_customer_is_404(client, crm_editor):
    client.force_login(crm_editor)

    assert client.post(reverse("experience:activity_record", args=[999999])).status_code == 404
