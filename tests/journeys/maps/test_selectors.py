"""Reads of personas and journey maps: access, live figures, the data overlay, history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import Http404

from config.org.services import share_grant
from customers.models import CustomerMetrics, LifeEvent, SegmentMembership
from experience.models import Event, OrderLine, Survey, Touchpoint
from journeys.maps.selectors import (
    activity_feed,
    can_edit,
    can_share,
    get_journey_for,
    get_persona_for,
    get_record_for,
    get_stage_for,
    journey_stages,
    journey_table,
    persona_figures,
    revision_history,
    revision_kind,
    stage_overlay,
    value_after,
    value_before,
)
from journeys.models import Campaign, Comment, Revision
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    EventFactory,
    JourneyFactory,
    LifeEventFactory,
    OrderFactory,
    PersonaFactory,
    ProductFactory,
    SegmentFactory,
    StageFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


# --- Access ---------------------------------------------------------------------------------


@pytest.fixture
def persona(crm):
    return PersonaFactory(owner_department=crm, name="First-time app buyer")


@pytest.fixture
def journey(persona):
    return JourneyFactory(persona=persona, owner_department=persona.owner_department)


def test_another_departments_persona_journey_and_stage_answer_404(sales_editor, persona, journey):
    stage = StageFactory(journey=journey)

    for fetch, pk in (
        (get_persona_for, persona.pk),
        (get_journey_for, journey.pk),
        (get_stage_for, stage.pk),
    ):
        with pytest.raises(Http404):
            fetch(sales_editor, pk)


def test_missing_records_and_unknown_kinds_answer_404(crm_editor, persona):
    with pytest.raises(Http404):
        get_persona_for(crm_editor, persona.pk + 1000)
    with pytest.raises(Http404):
        get_record_for(crm_editor, "campaign", persona.pk)
    with pytest.raises(Http404):
        get_stage_for(crm_editor, "not-a-number")


def test_anonymous_sees_nothing_and_edits_nothing(persona, journey):
    anonymous = AnonymousUser()

    with pytest.raises(Http404):
        get_persona_for(anonymous, persona.pk)
    assert can_edit(anonymous, journey) is False
    assert can_share(anonymous, journey) is False


def test_owner_editor_edits_owner_viewer_only_sees(crm_editor, crm_viewer, journey):
    stage = StageFactory(journey=journey)

    assert get_record_for(crm_viewer, "stage", stage.pk) == stage
    assert can_edit(crm_editor, journey) is True
    assert can_edit(crm_editor, stage) is True
    assert can_edit(crm_viewer, journey) is False
    assert can_edit(crm_viewer, stage) is False


def test_view_only_share_shows_the_record_but_does_not_allow_edits(
    crm_manager, sales_editor, persona
):
    share_grant(
        obj=persona, department=sales_editor.departments.get(), can_edit=False, by=crm_manager
    )

    assert get_persona_for(sales_editor, persona.pk) == persona
    assert can_edit(sales_editor, persona) is False


def test_edit_share_lets_the_other_departments_editors_edit_stages(
    crm_manager, sales, sales_editor, journey
):
    stage = StageFactory(journey=journey)
    share_grant(obj=journey, department=sales, can_edit=True, by=crm_manager)

    assert get_stage_for(sales_editor, stage.pk) == stage
    assert can_edit(sales_editor, journey) is True
    assert can_edit(sales_editor, stage) is True
    # Co-editing is not owning: only the owner's managers share further.
    assert can_share(sales_editor, journey) is False


def test_only_managers_of_the_owner_and_the_administrator_share(
    crm_manager, crm_editor, superuser, journey
):
    assert can_share(crm_manager, journey) is True
    assert can_share(superuser, journey) is True
    assert can_share(crm_editor, journey) is False
    assert can_share(crm_manager, StageFactory(journey=journey)) is True


# --- Stages ---------------------------------------------------------------------------------


def test_journey_stages_come_in_order_with_only_the_campaigns_the_user_can_see(
    crm, sales, crm_editor, journey, django_assert_num_queries
):
    second = StageFactory(journey=journey, position=2, name="Purchase")
    first = StageFactory(journey=journey, position=1, name="Awareness")
    first.touchpoints.add(TouchpointFactory(owner_department=crm))
    mine = CampaignFactory(owner_department=crm, journey_stage=first, name="Welcome")
    CampaignFactory(owner_department=sales, journey_stage=first, name="Sales only")
    crm_editor.roles_by_department  # noqa: B018 — loaded once per request, like the page does
    ContentType.objects.get_for_model(Campaign)  # cached per process

    # Stages, then touchpoints, experience values and visible campaigns, one query each.
    with django_assert_num_queries(4):
        stages = journey_stages(journey, user=crm_editor)
        assert [stage.pk for stage in stages] == [first.pk, second.pk]
        assert stages[0].linked_campaigns == [mine]
        assert stages[1].linked_campaigns == []
        assert len(stages[0].touchpoints.all()) == 1


# --- Persona figures ------------------------------------------------------------------------


def _metrics(customer, *, revenue, orders, nps):
    CustomerMetrics.objects.create(
        customer=customer, revenue_total=revenue, order_count=orders, last_nps=nps
    )


@pytest.fixture
def segment_world(crm):
    """Eight members with and without metrics, outsiders, a merged profile, events, orders
    and life events around the window edges."""
    segment = SegmentFactory(owner_department=crm)
    members = CustomerFactory.create_batch(8)
    outsiders = CustomerFactory.create_batch(3)
    CustomerFactory(merged_into=outsiders[0])
    for customer in members:
        SegmentMembership.objects.create(segment=segment, customer=customer)
    # (revenue, orders, last NPS) per member; the last two have no metrics row at all.
    for customer, (revenue, orders, nps) in zip(
        members,
        [
            (120_000, 5, 10),
            (40_000, 2, 9),
            (8_000, 1, 7),
            (5_000, 1, 3),
            (0, 0, 6),
            (15_000, 3, None),
        ],
        strict=False,
    ):
        _metrics(customer, revenue=revenue, orders=orders, nps=nps)
    _metrics(outsiders[1], revenue=999_999, orders=9, nps=0)

    channels = [
        TouchpointFactory(owner_department=crm, channel=channel)
        for channel in (
            Touchpoint.Channel.WEB,
            Touchpoint.Channel.APP,
            Touchpoint.Channel.STORE,
            Touchpoint.Channel.EMAIL,
            Touchpoint.Channel.LINE,
            Touchpoint.Channel.SALES_VISIT,
        )
    ]
    web, app, store, email, line, visit = channels
    for touchpoint, count in ((web, 7), (app, 5), (store, 4), (email, 3), (line, 2), (visit, 1)):
        for i in range(count):
            EventFactory(customer=members[i % 8], touchpoint=touchpoint, occurred_at=ago(1 + i))
    EventFactory(customer=members[0], touchpoint=visit, occurred_at=ago(91))  # too old
    EventFactory(customer=members[0], touchpoint=None, occurred_at=ago(2))  # no channel
    EventFactory(customer=outsiders[1], touchpoint=visit, occurred_at=ago(2))  # not a member
    EventFactory(customer=outsiders[1], touchpoint=visit, occurred_at=ago(3))

    products = ProductFactory.create_batch(7)
    for i, product in enumerate(products):
        order = OrderFactory(customer=members[i % 4], ordered_at=ago(10 + i))
        OrderLine.objects.create(order=order, product=product, quantity=i + 1, unit_price=1000)
    old = OrderFactory(customer=members[0], ordered_at=ago(366))
    OrderLine.objects.create(order=old, product=products[0], quantity=50, unit_price=1000)
    foreign = OrderFactory(customer=outsiders[1], ordered_at=ago(5))
    OrderLine.objects.create(order=foreign, product=products[1], quantity=80, unit_price=1000)

    for customer, kind, days in (
        (members[0], LifeEvent.Kind.MARRIAGE, 10),
        (members[0], LifeEvent.Kind.MARRIAGE, 20),  # the same person twice counts once
        (members[1], LifeEvent.Kind.MARRIAGE, 30),
        (members[2], LifeEvent.Kind.MOVING, 40),
        (members[3], LifeEvent.Kind.CHILDBIRTH, 400),  # too old
        (outsiders[1], LifeEvent.Kind.JOB_CHANGE, 5),
    ):
        LifeEventFactory(customer=customer, kind=kind, detected_at=ago(days))
    return segment


def _scalar(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _rows(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _direct_figures(segment_id: int) -> dict:
    """The persona figures computed again with plain SQL and Python, not the selector."""
    t = {
        "member": SegmentMembership._meta.db_table,
        "customer": "customers_customer",
        "metrics": CustomerMetrics._meta.db_table,
        "event": Event._meta.db_table,
        "touchpoint": Touchpoint._meta.db_table,
        "line": OrderLine._meta.db_table,
        "order": "experience_order",
        "product": "experience_product",
        "life": LifeEvent._meta.db_table,
    }
    members = f"SELECT customer_id FROM {t['member']} WHERE segment_id = %s"
    adapt = connection.ops.adapt_datetimefield_value
    size = _scalar(f"SELECT COUNT(*) FROM {t['member']} WHERE segment_id = %s", [segment_id])
    customers = _scalar(f"SELECT COUNT(*) FROM {t['customer']} WHERE merged_into_id IS NULL")
    metric_rows = _rows(
        f"SELECT m.revenue_total, m.order_count, m.last_nps FROM {t['member']} s "
        f"LEFT JOIN {t['metrics']} m ON m.customer_id = s.customer_id WHERE s.segment_id = %s",
        [segment_id],
    )
    revenue = sum(Decimal(str(row[0] or 0)) for row in metric_rows)
    scores = [row[2] for row in metric_rows if row[2] is not None]
    promoters = sum(1 for score in scores if score >= 9)
    detractors = sum(1 for score in scores if score <= 6)
    buyers = sum(1 for row in metric_rows if (row[1] or 0) >= 1)
    repeaters = sum(1 for row in metric_rows if (row[1] or 0) >= 2)
    channels = _rows(
        f"SELECT t.channel, COUNT(*) FROM {t['event']} e JOIN {t['touchpoint']} t "
        f"ON t.id = e.touchpoint_id WHERE e.customer_id IN ({members}) "
        "AND e.occurred_at > %s AND e.occurred_at <= %s GROUP BY t.channel "
        "ORDER BY COUNT(*) DESC, t.channel LIMIT 5",
        [segment_id, adapt(ago(90)), adapt(NOW)],
    )
    products = _rows(
        f"SELECT p.name, SUM(l.quantity) FROM {t['line']} l JOIN {t['order']} o "
        f"ON o.id = l.order_id JOIN {t['product']} p ON p.id = l.product_id "
        f"WHERE o.customer_id IN ({members}) AND o.ordered_at > %s AND o.ordered_at <= %s "
        "GROUP BY p.id, p.name ORDER BY SUM(l.quantity) DESC, p.name LIMIT 5",
        [segment_id, adapt(ago(365)), adapt(NOW)],
    )
    situations = _rows(
        f"SELECT kind, COUNT(DISTINCT customer_id) FROM {t['life']} "
        f"WHERE customer_id IN ({members}) AND detected_at > %s AND detected_at <= %s "
        "GROUP BY kind ORDER BY COUNT(DISTINCT customer_id) DESC, kind LIMIT 5",
        [segment_id, adapt(ago(365)), adapt(NOW)],
    )
    channel_labels = dict(Touchpoint.Channel.choices)
    kind_labels = dict(LifeEvent.Kind.choices)
    return {
        "size": size,
        "share": size / customers,
        "average_ltv": revenue / size,
        "nps": round((promoters - detractors) * 100 / len(scores), 1),
        "nps_responses": len(scores),
        "promoters": promoters,
        "passives": len(scores) - promoters - detractors,
        "detractors": detractors,
        "f2_rate": repeaters / buyers,
        "first_buyers": buyers,
        "repeat_buyers": repeaters,
        "top_channels": [(str(channel_labels[c]), int(n)) for c, n in channels],
        "top_products": [(name, int(q)) for name, q in products],
        "situations": [(str(kind_labels[k]), int(n)) for k, n in situations],
    }


def test_persona_figures_match_a_direct_computation_over_the_database(
    crm, segment_world, django_assert_num_queries
):
    persona = PersonaFactory(owner_department=crm, segment=segment_world)

    with django_assert_num_queries(5):
        figures = persona_figures(persona, now=NOW)

    expected = _direct_figures(segment_world.pk)
    for name, value in expected.items():
        assert getattr(figures, name) == value, name
    assert figures.computed_at == NOW


def test_persona_figures_of_the_fixture_read_as_a_person_would_count_them(crm, segment_world):
    """The same figures, counted by hand from the fixture, so the direct query is checked too."""
    figures = persona_figures(PersonaFactory(owner_department=crm, segment=segment_world), now=NOW)

    assert figures.size == 8
    assert figures.share == 8 / 11  # 8 members + 3 outsiders; the merged profile is not counted
    assert figures.average_ltv == Decimal(188_000) / 8
    # last NPS 10, 9 promoters; 7 passive; 3, 6 detractors → (2 − 2) / 5
    assert (figures.promoters, figures.passives, figures.detractors) == (2, 1, 2)
    assert figures.nps == 0.0
    assert (figures.first_buyers, figures.repeat_buyers) == (5, 3)
    assert figures.f2_rate == 3 / 5
    assert figures.top_channels[0] == ("Website", 7)
    assert len(figures.top_channels) == 5
    assert ("Sales visit", 1) not in figures.top_channels  # sixth, so cut
    assert figures.top_products[0][1] == 7
    assert figures.situations == [("Marriage", 2), ("Moving house", 1)]


def test_persona_without_segment_has_no_figures(crm, django_assert_num_queries):
    persona = PersonaFactory(owner_department=crm)

    with django_assert_num_queries(0):
        assert persona_figures(persona) is None


def test_persona_figures_of_an_empty_segment_are_zero_not_errors(crm):
    persona = PersonaFactory(owner_department=crm, segment=SegmentFactory(owner_department=crm))

    figures = persona_figures(persona, now=NOW)

    assert figures.size == 0
    assert figures.average_ltv is None
    assert figures.nps is None
    assert figures.f2_rate is None
    assert figures.top_channels == figures.top_products == figures.situations == []


# --- Data overlay ---------------------------------------------------------------------------


@pytest.fixture
def overlay_world(crm):
    """Three stages at touchpoints A, B, C; four segment members and one outsider."""
    segment = SegmentFactory(owner_department=crm)
    persona = PersonaFactory(owner_department=crm, segment=segment)
    journey = JourneyFactory(persona=persona, owner_department=crm)
    a, b, c = (TouchpointFactory(owner_department=crm, name=name) for name in "ABC")
    idle = TouchpointFactory(owner_department=crm, name="Idle")
    stages = []
    for position, touchpoints in enumerate(([a, idle], [b], [c]), start=1):
        stage = StageFactory(journey=journey, position=position, name=f"S{position}")
        stage.touchpoints.set(touchpoints)
        stages.append(stage)
    c1, c2, c3, c4 = CustomerFactory.create_batch(4)
    outsider = CustomerFactory()
    for customer in (c1, c2, c3, c4):
        SegmentMembership.objects.create(segment=segment, customer=customer)
    for customer, touchpoint, days in (
        (c1, a, 10),
        (c1, b, 5),  # after A → converts
        (c1, c, 1),  # after B → converts
        (c2, a, 10),
        (c2, b, 20),  # before A → no conversion
        (c2, b, 100),  # outside the window
        (c3, a, 100),  # outside the window: not reached at S1
        (c3, b, 3),
        (c4, a, 2),
        (c4, a, 1),
        (outsider, a, 5),
        (outsider, b, 1),
    ):
        EventFactory(customer=customer, touchpoint=touchpoint, occurred_at=ago(days))
    nps = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS)
    csat = SurveyFactory(owner_department=crm, kind=Survey.Kind.CSAT)
    for survey, customer, touchpoint, score, days in (
        (nps, c1, a, 10, 3),
        (nps, c2, a, 9, 3),
        (nps, c4, a, 3, 3),
        (nps, outsider, a, 0, 3),  # not in the population
        (csat, c1, a, 2, 3),  # not an NPS answer
        (nps, c1, b, 0, 120),  # outside the window
        (nps, c3, b, None, 2),  # no score
    ):
        SurveyResponseFactory(
            survey=survey,
            customer=customer,
            touchpoint=touchpoint,
            score=score,
            answered_at=ago(days),
        )
    return {"journey": journey, "stages": stages, "outsider": outsider}


def test_overlay_reach_conversion_volumes_and_nps_match_a_hand_count(
    overlay_world, django_assert_num_queries
):
    journey = overlay_world["journey"]
    s1, s2, s3 = overlay_world["stages"]
    journey = type(journey).objects.select_related("persona").get(pk=journey.pk)

    with django_assert_num_queries(5):
        overlay = stage_overlay(journey, days=90, now=NOW)

    # S1: c1, c2, c4 reached; only c1 went on to B afterwards.
    assert (overlay[s1.pk].reach, overlay[s1.pk].converted) == (3, 1)
    assert overlay[s1.pk].next_conversion == 1 / 3
    assert overlay[s1.pk].touchpoint_volumes == [("A", 4), ("Idle", 0)]
    # S2: c1, c2, c3 reached; only c1 went on to C afterwards.
    assert (overlay[s2.pk].reach, overlay[s2.pk].converted) == (3, 1)
    assert overlay[s2.pk].next_conversion == 1 / 3
    assert overlay[s2.pk].touchpoint_volumes == [("B", 3)]
    # S3 is last: no next stage to convert to.
    assert overlay[s3.pk].reach == 1
    assert overlay[s3.pk].next_conversion is None
    # NPS at S1: 10, 9 promoters, 3 detractor → (2 − 1) / 3.
    assert overlay[s1.pk].nps_responses == 3
    assert overlay[s1.pk].nps == 33.3
    assert overlay[s2.pk].nps is None
    assert overlay[s2.pk].nps_responses == 0


def test_overlay_without_a_segment_counts_every_customer(overlay_world):
    journey = overlay_world["journey"]
    journey.persona.segment = None
    journey.persona.save()
    s1, s2, _s3 = overlay_world["stages"]

    overlay = stage_overlay(journey, days=90, now=NOW)

    # The outsider is now in: reached at S1 (day 5) and at S2 (day 1), after S1.
    assert (overlay[s1.pk].reach, overlay[s1.pk].converted) == (4, 2)
    assert overlay[s2.pk].reach == 4
    assert overlay[s1.pk].nps_responses == 4


def test_overlay_of_a_single_stage_counts_reach_without_conversion(crm, journey):
    touchpoint = TouchpointFactory(owner_department=crm)
    stage = StageFactory(journey=journey, position=1)
    stage.touchpoints.add(touchpoint)
    for customer in CustomerFactory.create_batch(2):
        EventFactory(customer=customer, touchpoint=touchpoint, occurred_at=ago(1))

    overlay = stage_overlay(journey, now=NOW)

    assert overlay[stage.pk].reach == 2
    assert overlay[stage.pk].next_conversion is None


def test_overlay_of_a_journey_without_stages_is_empty(journey):
    assert stage_overlay(journey, now=NOW) == {}


# --- History and activity -------------------------------------------------------------------


def test_journey_history_includes_its_stages_newest_first(crm_editor, journey):
    stage = StageFactory(journey=journey, name="Awareness")
    older = Revision.objects.create(
        journey=journey, action=Revision.Action.CREATE, author=crm_editor, created_at=ago(2)
    )
    newer = Revision.objects.create(
        journey=journey,
        stage=stage,
        stage_name=stage.name,
        action=Revision.Action.EDIT,
        field="actions",
        before="",
        after="Reads reviews",
        version=1,
        author=crm_editor,
        created_at=ago(1),
    )

    assert list(revision_history(journey=journey)) == [newer, older]
    assert list(revision_history(stage=stage)) == [newer]


def test_activity_feed_merges_visible_changes_and_comments_newest_first(
    crm, sales, crm_editor, persona, journey
):
    hidden = PersonaFactory(owner_department=sales)
    created = Revision.objects.create(
        persona=persona, action=Revision.Action.CREATE, author=crm_editor, created_at=ago(3)
    )
    comment = Comment.objects.create(
        journey=journey, author=crm_editor, body="Check the store visits", created_at=ago(2)
    )
    edited = Revision.objects.create(
        journey=journey, action=Revision.Action.EDIT, field="name", created_at=ago(1)
    )
    Revision.objects.create(persona=hidden, action=Revision.Action.CREATE, created_at=ago(0.5))
    Comment.objects.create(persona=hidden, body="secret", created_at=ago(0.5))

    feed = activity_feed(crm_editor)

    assert [item["object"] for item in feed] == [edited, comment, created]
    assert feed[1]["type"] == "comment"
    assert feed[1]["text"] == "Check the store visits"
    assert activity_feed(crm_editor, limit=2)[-1]["object"] == comment
    assert activity_feed(AnonymousUser()) == []


# --- Export grid ----------------------------------------------------------------------------


def test_journey_table_has_one_column_per_stage_and_one_row_per_lane(
    crm, sales, crm_editor, overlay_world
):
    from journeys.maps.cells import CELLS, cell_display, cell_value

    journey = overlay_world["journey"]
    s1, s2, s3 = overlay_world["stages"]
    s1.actions = "Reads reviews\nAsks a friend"
    s1.emotion = -1
    s1.save()
    CampaignFactory(owner_department=crm, journey_stage=s2, name="Welcome series")
    CampaignFactory(owner_department=sales, journey_stage=s2, name="Hidden from CRM")

    rows = journey_table(journey, user=crm_editor, now=NOW)

    assert rows[0] == ["", "S1", "S2", "S3"]
    lanes = {row[0]: row[1:] for row in rows[1:]}
    stage_lanes = [name for name in CELLS["stage"] if name != "name"]
    for name in stage_lanes:
        label = str(CELLS["stage"][name].label)
        assert lanes[label] == [
            cell_display("stage", name, cell_value(stage, name)) for stage in (s1, s2, s3)
        ]
    assert lanes[str(CELLS["stage"]["actions"].label)][0] == "Reads reviews\nAsks a friend"
    assert lanes["Linked campaigns"] == ["", "Welcome series", ""]
    assert lanes["Reach (last 90 days)"] == ["3", "3", "1"]
    assert lanes["Conversion to the next stage"] == ["33.3%", "33.3%", ""]
    assert lanes["NPS at the stage"] == ["+33.3 (3 answers)", "", ""]
    assert len(rows) == 1 + len(stage_lanes) + 4
    assert all(len(row) == 4 for row in rows)


def test_revision_values_read_like_the_grid(crm_editor, journey):
    from journeys.maps.cells import cell_display

    stage = StageFactory(journey=journey, name="Use")
    edit = Revision.objects.create(
        journey=journey,
        stage=stage,
        stage_name=stage.name,
        action=Revision.Action.EDIT,
        field="emotion",
        before=0,
        after=-2,
        version=1,
    )
    created = Revision.objects.create(
        journey=journey, action=Revision.Action.CREATE, after={"name": journey.name}
    )

    assert revision_kind(edit) == "stage"
    assert revision_kind(created) == "journey"
    assert value_before(edit) == cell_display("stage", "emotion", 0)
    assert value_after(edit) == cell_display("stage", "emotion", -2)
    assert value_after(created) == ""
