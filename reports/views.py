"""Circle ④ pages, and the four-circle home page that opens the product."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from config.org.services import audit_record
from config.spreadsheets import FORMATS, download_response
from reports import selectors
from reports.catalog import block_by_key, report_spec, report_specs
from reports.charts import monthly_orders_figure
from reports.forms import ReportFilterForm


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
    """Circle ④: NPS and LTV, orders and revenue per month, and the report catalogue."""
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
            "reports": report_specs(),
        },
    )


def _spec_or_404(slug: str):
    try:
        return report_spec(slug)
    except LookupError:
        raise Http404 from None


def report(request, slug: str):
    """One report of the catalogue; a filter change swaps only the report body (htmx).

    A bad filter answers 400 with the form naming the parameter.
    """
    spec = _spec_or_404(slug)
    form = ReportFilterForm.for_report(request.GET, user=request.user, spec=spec)
    filters = form.filters() if form.is_valid() else None
    template = "reports/report.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#report-body"
    response = render(
        request,
        template,
        {
            "active_circle": "strategy",
            "spec": spec,
            "form": form,
            "filters": filters,
            "blocks": spec.build(request.user, filters) if filters else [],
            "query": request.GET.urlencode(),
        },
        status=200 if filters else 400,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


def report_download(request, slug: str, block: str, fmt: str):
    """The table behind one block of a report, as CSV or XLSX, with the page's filters."""
    spec = _spec_or_404(slug)
    if fmt not in FORMATS:
        raise Http404
    form = ReportFilterForm.for_report(request.GET, user=request.user, spec=spec)
    if not form.is_valid():
        return HttpResponse(form.error_text(), status=400, content_type="text/plain; charset=utf-8")
    filters = form.filters()
    try:
        found = block_by_key(spec.build(request.user, filters), block)
    except LookupError:
        raise Http404 from None
    if found.table is None:
        raise Http404
    audit_record(
        actor=request.user,
        action="report.export",
        detail={
            "report": slug,
            "block": block,
            "format": fmt,
            "period": [filters.period.start.isoformat(), filters.period.end.isoformat()],
            "query": request.GET.urlencode()[:500],
        },
        ip_address=request.META.get("REMOTE_ADDR"),
    )
    return download_response(
        found.table.matrix(),
        fmt=fmt,
        filename=f"{slug}-{block}-{filters.period.start:%Y%m%d}-{filters.period.end:%Y%m%d}",
        title=str(found.title),
    )
