"""Web security glue: session timeouts, the register of signed-in sessions, CSP reports.

* :class:`SessionTimeoutMiddleware` ends a browser session after ``SESSION_IDLE_TIMEOUT``
  seconds without a request or ``SESSION_ABSOLUTE_TIMEOUT`` seconds after the login.
* Every login writes a :class:`~config.org.models.LoginSession` row (and logging out removes
  it), so that :func:`sessions_end` can end all sessions of a person at once: deactivating a
  user or changing their password does so (Django would only refuse those sessions lazily).
* :func:`csp_report` receives the browser's Content-Security-Policy violation reports.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.org.models import LoginSession

logger = logging.getLogger("config.security")

STARTED_KEY = "_circle_started"
SEEN_KEY = "_circle_seen"
REGISTERED_KEY = "_circle_registered"
SEEN_GRANULARITY = 60
"""The last-seen time is written at most once a minute, not on every request."""

CSP_REPORT_MAX_BYTES = 64 * 1024
CSP_REPORT_TYPES = {"application/csp-report", "application/reports+json", "application/json"}

EXPIRED_MESSAGE = _("Your session has expired. Please log in again.")


# --------------------------------------------------------------------------- sessions


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def session_register(request: HttpRequest, user) -> None:
    """List the request's session as one of ``user``'s signed-in sessions."""
    session = request.session
    if session.session_key is None:
        session.save()
    key = session.session_key
    LoginSession.objects.update_or_create(
        session_key=key, defaults={"user": user, "ip_address": _client_ip(request)}
    )
    now = int(time.time())
    session.setdefault(STARTED_KEY, now)
    session[SEEN_KEY] = now
    session[REGISTERED_KEY] = key


def sessions_end(user, *, keep: str | None = None) -> int:
    """End every signed-in session of ``user`` (except ``keep``); returns how many ended."""
    rows = LoginSession.objects.filter(user=user)
    if keep:
        rows = rows.exclude(session_key=keep)
    keys = list(rows.values_list("session_key", flat=True))
    store = _session_store()
    for key in keys:
        store().delete(key)
    LoginSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def on_user_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(STARTED_KEY, None)
        session_register(request, user)


def on_user_logged_out(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session") and request.session.session_key:
        LoginSession.objects.filter(session_key=request.session.session_key).delete()


def on_user_pre_save(sender, instance, update_fields=None, **kwargs) -> None:
    """Remember whether this save deactivates the user or changes their password."""
    instance._circle_end_sessions = False
    if instance.pk is None or kwargs.get("raw"):
        return
    if update_fields is not None and not {"is_active", "password"} & set(update_fields):
        return
    before = sender.objects.filter(pk=instance.pk).values("is_active", "password").first()
    if before is None:
        return
    deactivated = before["is_active"] and not instance.is_active
    instance._circle_end_sessions = deactivated or before["password"] != instance.password


def on_user_post_save(sender, instance, created, **kwargs) -> None:
    """A deactivated user, or one whose password changed, is signed out everywhere.

    Django itself would refuse those sessions at their next request (inactive user, stale
    session hash); ending them here removes them for good. The browser that changed its own
    password keeps its session: Django copies it to a new key, which the middleware lists.
    (A password hash upgraded at login, after a Django upgrade, counts as a change too, as it
    does for Django's own session check.)
    """
    if getattr(instance, "_circle_end_sessions", False):
        instance._circle_end_sessions = False
        sessions_end(instance)


class SessionTimeoutMiddleware:
    """Log out after ``SESSION_IDLE_TIMEOUT`` idle or ``SESSION_ABSOLUTE_TIMEOUT`` seconds.

    An expired page request is redirected to the login page with a message; an htmx request
    gets ``HX-Redirect`` so the whole page goes there; an API request gets 401. Sits after
    the authentication and message middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if session is not None and user is not None and user.is_authenticated:
            expired = self._expired(session)
            if expired:
                return self._expire(request)
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            session is not None
            and user is not None
            and user.is_authenticated
            and session.session_key
            and session.get(REGISTERED_KEY) != session.session_key
        ):
            # A login we did not see (a session older than the register) or a key Django
            # cycled (password change): list the session under its current key.
            LoginSession.objects.filter(
                session_key=session.get(REGISTERED_KEY, ""), user=user
            ).delete()
            session_register(request, user)
        return response

    @staticmethod
    def _expired(session) -> bool:
        now = int(time.time())
        started = session.get(STARTED_KEY)
        seen = session.get(SEEN_KEY)
        if started is None or seen is None:
            session.setdefault(STARTED_KEY, now)
            session[SEEN_KEY] = now
            return False
        if now - seen > settings.SESSION_IDLE_TIMEOUT:
            return True
        if now - started > settings.SESSION_ABSOLUTE_TIMEOUT:
            return True
        if now - seen >= SEEN_GRANULARITY:
            session[SEEN_KEY] = now
        return False

    @staticmethod
    def _expire(request: HttpRequest) -> HttpResponse:
        logout(request)
        if request.path.startswith("/api/"):
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Session realm="api"'
            return response
        messages.warning(request, EXPIRED_MESSAGE)
        if request.headers.get("HX-Request") == "true":
            # Back to the page the user was on afterwards, not to the fragment's URL.
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            next_url = current.path + (f"?{current.query}" if current.query else "")
            response = HttpResponse(status=204)
            response["HX-Redirect"] = redirect_to_login(next_url or "/").url
            return response
        return redirect_to_login(request.get_full_path())


# --------------------------------------------------------------------------- request size


class RequestSizeLimitMiddleware:
    """Refuse (413) a request body larger than the site takes, before anything reads it.

    Django bounds form bodies with ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when ``request.body``
    is read, and DRF's JSON parser reads the stream directly, so an API body had no bound.
    File uploads (multipart) may be as large as an import (``IMPORT_MAX_BYTES``) plus the
    form around it; the import form then names the file when it is over the limit.
    """

    MULTIPART_OVERHEAD = 2**20

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse(status=400)
        if request.content_type == "multipart/form-data":
            limit = settings.IMPORT_MAX_BYTES + self.MULTIPART_OVERHEAD
        else:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            message = _("The request is too large: at most %(limit)s.") % {
                "limit": filesizeformat(limit)
            }
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


# --------------------------------------------------------------------------- login lockout


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """django-axes' answer to a locked-out login: a translated page, 429 Too Many Requests."""
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)),
    }
    return render(request, "registration/lockout.html", context, status=429)


# --------------------------------------------------------------------------- CSP reports


@csrf_exempt
@login_not_required
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log a browser's Content-Security-Policy violation report (both report formats)."""
    content_type = request.content_type.lower()
    if content_type not in CSP_REPORT_TYPES:
        return HttpResponse(status=415)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse(status=400)
    if length > CSP_REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    body = request.read(CSP_REPORT_MAX_BYTES + 1)
    if len(body) > CSP_REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return HttpResponse(status=400)
    items = payload if isinstance(payload, list) else [payload]
    for item in items[:20]:
        if not isinstance(item, dict):
            continue
        report = item.get("csp-report") or item.get("body") or item
        if not isinstance(report, dict):
            continue
        logger.warning(
            "CSP violation: %s blocked %s on %s",
            str(report.get("violated-directive") or report.get("effectiveDirective") or "?")[:200],
            str(report.get("blocked-uri") or report.get("blockedURL") or "?")[:500],
            str(report.get("document-uri") or report.get("documentURL") or "?")[:500],
        )
    return HttpResponse(status=204)
