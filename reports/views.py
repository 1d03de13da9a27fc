"""Circle ④ pages, and the four-circle home page that opens the product."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from reports import selectors
from reports.charts import monthly_orders_figure


@dataclass(frozen=True)
class CirclePage:
    """How a circle is introduced to people: its number, name, page and purpose."""

    slug: str
    number: str
    name: Promise
    url_name: str
    summary: Promise


CIRCLE_PAGES = (
    CirclePage(
        "customer",
        "①",
        _("Customer"),
        "customers:index",
        _(
            "One profile per person, however many ways they reach us: identifiers, consent, "
            "life situations and segments."
        ),
    ),
    CirclePage(
        "experience",
        "②",
        _("Experience"),
        "experience:index",
        _(
            "The touchpoints where we meet customers online, offline and in the app, and what "
            "they do there."
        ),
    ),
    CirclePage(
        "platform",
        "③",
        _("Platform"),
        "journeys:index",
        _(
            "Personas and journeys shared by marketing and sales, and the campaigns that act "
            "on them."
        ),
    ),
    CirclePage(
        "strategy",
        "④",
        _("Strategy"),
        "reports:index",
        _("How well the loop turns: loyalty (NPS), lifetime value and sales over time."),
    ),
)
CIRCLE_PAGE_BY_SLUG = {page.slug: page for page in CIRCLE_PAGES}


def home(request):
    """The four circles, with each card's figures fetched by htmx after the page shows.

    ``?inline=1`` computes every card's figures on the server: the no-JavaScript path.
    """
    inline = request.GET.get("inline") == "1"
    now = timezone.now()
    cards = [
        {
            "circle": page,
            "result": (
                selectors.circle_figures(page.slug, user=request.user, now=now) if inline else None
            ),
        }
        for page in CIRCLE_PAGES
    ]
    return render(request, "reports/home.html", {"cards": cards})


def circle_figures(request, circle: str):
    """Headline figures of one circle: a fragment for htmx, a small page otherwise."""
    page = CIRCLE_PAGE_BY_SLUG.get(circle)
    if page is None:
        raise Http404
    result = selectors.circle_figures(circle, user=request.user, now=timezone.now())
    template = "reports/circle_figures.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#figures"
    response = render(request, template, {"circle": page, "result": result})
    patch_vary_headers(response, ("HX-Request",))
    return response


def index(request):
    """Circle ④: NPS and LTV, and orders and revenue per month over the last year."""
    now = timezone.now()
    months = selectors.monthly_orders(now=now)
    figure = monthly_orders_figure(
        [row.month for row in months],
        [row.orders for row in months],
        [row.revenue for row in months],
    )
    return render(
        request,
        "reports/index.html",
        {
            "active_circle": "strategy",
            "result": selectors.circle_figures("strategy", user=request.user, now=now),
            "months": months,
            "has_orders": any(row.orders for row in months),
            # plotly escapes <, > and / in its JSON, so it is safe inside a <script> element.
            "chart_json": figure.to_json(),
        },
    )
