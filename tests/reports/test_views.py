"""The four-circle home, its htmx figure fragments, the strategy page and the shell."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from experience.models import Survey
from journeys.models import Campaign
from reports.customer_rollups import headline_store
from reports.rollups import rollups_refresh
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    IdentityFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def figures_url(circle: str) -> str:
    return reverse("reports:circle_figures", args=[circle])


def figure(html: str, key: str) -> str:
    """The text of one figure's value (its first <dd>), for asserting on numbers."""
    match = re.search(rf'data-figure="{key}">\s*<dt>.*?</dt>\s*<dd>(.*?)</dd>', html, re.S)
    assert match, f"figure {key} missing"
    return re.sub(r"<small.*?</small>", "", match.group(1)).strip()


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?inline=1",
        "/reports/",
        "/reports/circles/customer/figures/",
        "/customers/",
        "/experience/",
        "/platform/",
        "/accounts/password_change/",
        "/accounts/password_change/done/",
    ],
)
def test_anonymous_visitors_are_sent_to_login(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url.replace('?', '%3F').replace('=', '%3D')}"


def test_login_page_explains_the_product_and_offers_the_language_switch(client):
    html = client.get(reverse("login")).content.decode()

    assert 'id="id_username"' in html
    assert 'id="id_password"' in html
    assert 'type="submit"' in html
    assert "four circles" in html
    assert 'id="language-form"' in html
    assert 'id="language-select"' in html
    assert "Change language" in html
    assert "Log out" not in html


def test_home_shows_four_cards_that_load_their_figures_with_htmx(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(reverse("home")).content.decode()

    for circle in ("customer", "experience", "platform", "strategy"):
        assert f'<section class="circle-card" data-circle="{circle}"' in html
        assert f'hx-get="{figures_url(circle)}" hx-trigger="load"' in html
    assert html.count("<noscript>") == 4
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "htmx.min.js" in html
    assert "plotly-cartesian" not in html  # plotly.js is loaded on chart pages only


def test_home_draws_the_circles_as_keyboard_reachable_svg_links(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(reverse("home")).content.decode()

    rings = re.findall(r'<a href="([^"]+)" class="ring" data-circle="(\w+)" aria-label="', html)
    assert rings == [
        ("/reports/", "strategy"),
        ("/platform/", "platform"),
        ("/experience/", "experience"),
        ("/customers/", "customer"),
    ]


def test_home_shell_has_skip_link_nav_memberships_and_post_logout(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(reverse("home")).content.decode()

    assert '<html lang="en"' in html
    assert '<a class="skip-link" href="#content">Skip to content</a>' in html
    assert '<main id="content"' in html
    assert "CRM &amp; digital · Editor" in html
    assert re.search(r'<form class="logout-form" action="/accounts/logout/" method="post">', html)
    assert 'aria-current="page"' not in html


def test_home_without_javascript_can_render_every_figure_inline(client, crm_editor):
    CustomerFactory.create_batch(2)
    client.force_login(crm_editor)

    html = client.get(reverse("home"), {"inline": "1"}).content.decode()

    assert "hx-get" not in html
    assert figure(html, "customers_total") == "2"
    assert figure(html, "ltv_12m") == "—"


def test_customer_figures(client, crm_editor):
    first, second, _third = CustomerFactory.create_batch(3)
    IdentityFactory.create_batch(2, customer=first)
    IdentityFactory.create_batch(2, customer=second)
    client.force_login(crm_editor)

    html = client.get(figures_url("customer"), headers=HTMX).content.decode()

    assert figure(html, "customers_total") == "3"
    assert figure(html, "customers_multi_identifier_pct") == "66.7%"


def test_figures_are_a_fragment_for_htmx_and_a_page_otherwise(client, crm_editor):
    client.force_login(crm_editor)

    fragment = client.get(figures_url("customer"), headers=HTMX)
    page = client.get(figures_url("customer"))

    assert "<html" not in fragment.content.decode()
    assert fragment.content.decode().lstrip().startswith('<div class="figures"')
    assert "<html" in page.content.decode()
    assert 'data-figure="customers_total"' in page.content.decode()
    assert "HX-Request" in fragment["Vary"]


def test_experience_figures_count_visible_active_touchpoints_and_events_in_30_days(
    client, crm, sales, crm_editor
):
    now = timezone.now()
    TouchpointFactory.create_batch(2, owner_department=crm)
    TouchpointFactory(owner_department=sales)
    EventFactory.create_batch(3, occurred_at=now - dt.timedelta(days=29))
    EventFactory(occurred_at=now - dt.timedelta(days=31))
    client.force_login(crm_editor)

    html = client.get(figures_url("experience"), headers=HTMX).content.decode()

    assert figure(html, "touchpoints_active") == "2"
    assert figure(html, "events_30d") == "3"


def test_platform_figures_leave_out_other_departments_campaigns(
    client, crm, sales, crm_editor, sales_editor
):
    own = CampaignFactory(owner_department=crm, status=Campaign.Status.RUNNING)
    CampaignFactory(owner_department=crm, status=Campaign.Status.DRAFT)
    other = CampaignFactory(owner_department=sales, status=Campaign.Status.RUNNING)
    shared = CampaignFactory(owner_department=sales, status=Campaign.Status.SCHEDULED)
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    DeliveryFactory.create_batch(2, step=CampaignStepFactory(campaign=own))
    DeliveryFactory.create_batch(5, step=CampaignStepFactory(campaign=other))
    client.force_login(crm_editor)

    html = client.get(figures_url("platform"), headers=HTMX).content.decode()

    assert figure(html, "campaigns_active") == "2"
    assert figure(html, "deliveries_30d") == "2"


def test_strategy_figures_nps_and_ltv(client, crm_editor):
    now = timezone.now()
    survey = SurveyFactory(kind=Survey.Kind.NPS)
    for score in (10, 9, 8, 3):  # 2 promoters, 1 passive, 1 detractor → +25
        SurveyResponseFactory(survey=survey, score=score, answered_at=now - dt.timedelta(days=3))
    buyer = OrderFactory(total=120000).customer
    OrderFactory(customer=buyer, total=30000)
    OrderFactory(total=50000)
    client.force_login(crm_editor)

    html = client.get(figures_url("strategy"), headers=HTMX).content.decode()

    assert figure(html, "nps_12m") == "25"
    assert figure(html, "ltv_12m") == "¥100,000"


def test_empty_company_shows_zeros_dashes_and_what_to_do(client, crm_editor):
    client.force_login(crm_editor)

    customer = client.get(figures_url("customer"), headers=HTMX).content.decode()
    strategy = client.get(figures_url("strategy"), headers=HTMX).content.decode()

    assert figure(customer, "customers_total") == "0"
    assert figure(customer, "customers_multi_identifier_pct") == "—"
    assert "No customers yet" in customer
    assert "make demo" in customer
    assert figure(strategy, "nps_12m") == "—"
    assert "No NPS answers yet." in strategy


def test_unknown_circle_is_not_found(client, crm_editor):
    client.force_login(crm_editor)

    assert client.get(figures_url("galaxy"), headers=HTMX).status_code == 404


@pytest.mark.parametrize(
    ("circle", "queries"),
    [
        ("customer", 4),  # session, user, stored headline (none yet), one aggregate
        ("customer-stored", 3),  # session, user, the stored headline
        ("experience", 5),  # session, user, roles, touchpoints, events
        ("platform", 5),  # session, user, roles, campaigns, deliveries
        # session, user, stored headline (none yet), NPS aggregate, orders aggregate
        ("strategy", 5),
        ("strategy-stored", 3),  # session, user, the stored headline
    ],
)
def test_figures_query_count_is_pinned(
    client, crm, crm_editor, django_assert_num_queries, circle, queries
):
    CustomerFactory.create_batch(3)
    TouchpointFactory.create_batch(2, owner_department=crm)
    DeliveryFactory.create_batch(2, step=CampaignStepFactory(campaign__owner_department=crm))
    SurveyResponseFactory.create_batch(2)
    OrderFactory.create_batch(2)
    if circle.endswith("-stored"):
        headline_store(now=timezone.now())
        circle = circle.removesuffix("-stored")
    client.force_login(crm_editor)
    client.get(figures_url(circle), headers=HTMX)  # warms the content-type cache

    with django_assert_num_queries(queries):
        response = client.get(figures_url(circle), headers=HTMX)

    assert response.status_code == 200


def test_home_query_count_is_pinned(client, crm_editor, django_assert_num_queries):
    client.force_login(crm_editor)
    client.get(reverse("home"))

    # session, user, memberships for the header; the figures come later, by htmx
    with django_assert_num_queries(3):
        client.get(reverse("home"))


def test_strategy_page_renders_the_chart_json_and_loads_plotly_only_there(client, crm_editor):
    OrderFactory(total=4000)
    SurveyResponseFactory(score=10)
    rollups_refresh()  # the monthly chart reads the daily orders rollup
    client.force_login(crm_editor)

    html = client.get(reverse("reports:index")).content.decode()

    assert '<h1><span class="circle-number">④</span> Strategy</h1>' in html
    assert "vendor/plotly/plotly-cartesian.min.js" in html
    assert '<script type="application/json" data-chart-for="orders-chart">{"data":' in html
    assert figure(html, "nps_12m") == "100"
    assert figure(html, "ltv_12m") == "¥4,000"
    assert "<script>" not in html


def test_strategy_page_without_orders_explains_the_empty_chart(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(reverse("reports:index")).content.decode()

    assert 'data-chart-for="orders-chart"' not in html
    assert "No completed orders in the last 12 months yet" in html


def test_language_cookie_switches_the_page_to_japanese(client, crm_editor):
    client.force_login(crm_editor)
    client.cookies["django_language"] = "ja"

    html = client.get(reverse("home")).content.decode()

    assert '<html lang="ja"' in html
    assert '<option value="ja" lang="ja" selected>日本語</option>' in html


def test_language_switch_posts_to_set_language_and_returns_to_the_page(client, crm_editor):
    client.force_login(crm_editor)

    response = client.post(reverse("set_language"), {"language": "ja", "next": "/customers/"})

    assert response.status_code == 302
    assert response.url == "/customers/"
    assert client.cookies["django_language"].value == "ja"
    assert '<html lang="ja"' in client.get("/customers/").content.decode()


def test_password_change_pages_render(client, crm_editor):
    client.force_login(crm_editor)

    form = client.get(reverse("password_change")).content.decode()
    done = client.get(reverse("password_change_done")).content.decode()

    assert 'id="id_old_password"' in form
    assert "<h1>Change password</h1>" in form
    assert "<h1>Password changed</h1>" in done
