"""Public links in campaign messages: the open pixel, tracked clicks and unsubscribing.

No login: a signed token is the key (``journeys.feedback``). A forged or tampered token
answers 404 and never redirects anywhere; a click token redirects only to the exact URL it
was signed with. Unsubscribing is a confirm page (GET: mail scanners that follow links
change nothing) and a POST, which is also the RFC 8058 one-click request mail clients send
from the ``List-Unsubscribe-Post`` header — hence no CSRF token: the signed link is the
proof, and it can only unsubscribe.
"""

from __future__ import annotations

import base64

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from experience.views.public import public_language, render_public_page
from journeys import feedback

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@login_not_required
@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """A 1×1 transparent GIF; the first fetch marks the delivery opened."""
    try:
        delivery_id = feedback.open_token_read(token)
    except feedback.BadToken as exc:
        raise Http404 from exc
    if request.method == "GET":
        feedback.open_record(delivery_id)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_not_required
@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and redirect (302) to the URL the token was signed with."""
    try:
        delivery_id, url = feedback.click_token_read(token)
    except feedback.BadToken as exc:
        raise Http404 from exc
    if request.method == "GET":
        feedback.click_record(delivery_id, url)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _render(request, template: str, context: dict, *, token: str, language: str, status=200):
    here = reverse("tracking:unsubscribe", args=[token])
    return render_public_page(
        request, template, context, here=here, language=language, status=status
    )


@login_not_required
@never_cache
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: ask to confirm. POST (the button, or a mail client's one-click): unsubscribe."""
    try:
        delivery = feedback.delivery_for_unsubscribe(token)
    except feedback.BadToken:
        language = public_language(request)
        with translation.override(language):
            return _render(
                request,
                "journeys/public/invalid.html",
                {},
                token=token,
                language=language,
                status=404,
            )
    language = public_language(request, delivery.customer.language)
    with translation.override(language):
        channel = delivery.campaign.get_channel_display()
        if request.method == "POST":
            # RFC 8058: a mail client posts "List-Unsubscribe=One-Click"; the page's button
            # posts "via=page". Either unsubscribes; the consent history says which it was.
            one_click = request.POST.get("via") != "page"
            feedback.unsubscribe(
                delivery.pk,
                source=feedback.ONE_CLICK_SOURCE if one_click else feedback.UNSUBSCRIBE_SOURCE,
            )
            return _render(
                request,
                "journeys/public/unsubscribed.html",
                {"channel": channel},
                token=token,
                language=language,
            )
        return _render(
            request,
            "journeys/public/unsubscribe.html",
            {"channel": channel},
            token=token,
            language=language,
        )


app_name = "tracking"
urlpatterns = [
    path("t/o/<str:token>.gif", open_pixel, name="open"),
    path("t/c/<str:token>/", click, name="click"),
    path("u/<str:token>/", unsubscribe, name="unsubscribe"),
]
