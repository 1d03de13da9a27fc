"""Browser sessions: idle and absolute timeouts, and ending every session of a person.

Real database sessions through the real login form; two ``Client``s are two browsers.
Timeouts are tested by moving the session's recorded times back, not by waiting.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.urls import reverse

from config.org.models import LoginSession
from config.security import SEEN_KEY, STARTED_KEY, sessions_end

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
HOME = reverse("home")
LOGIN = reverse("login")


def browser(user) -> Client:
    """A client signed in through the login form, as a browser would be."""
    client = Client()
    response = client.post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def signed_in(client: Client) -> bool:
    return client.get(HOME).status_code == 200


def age_session(client: Client, *, seen_ago: int, started_ago: int) -> None:
    session = client.session
    session[SEEN_KEY] -= seen_ago
    session[STARTED_KEY] -= started_ago
    session.save()


def test_login_lists_the_session_and_logout_removes_it(crm_editor):
    client = browser(crm_editor)

    row = LoginSession.objects.get(user=crm_editor)
    assert row.session_key == client.session.session_key
    assert row.ip_address == "127.0.0.1"

    client.post(reverse("logout"))
    assert not LoginSession.objects.filter(user=crm_editor).exists()


def test_idle_session_ends_with_a_message_on_the_login_page(crm_editor, settings):
    settings.SESSION_IDLE_TIMEOUT = 600
    client = browser(crm_editor)
    age_session(client, seen_ago=599, started_ago=599)
    assert signed_in(client)

    age_session(client, seen_ago=601, started_ago=0)
    response = client.get(HOME, follow=True)

    assert response.redirect_chain[-1][0].startswith(LOGIN)
    assert "Your session has expired" in response.content.decode()
    assert not signed_in(client)
    assert not LoginSession.objects.filter(user=crm_editor).exists()


def test_active_session_still_ends_after_the_absolute_timeout(crm_editor, settings):
    settings.SESSION_IDLE_TIMEOUT = 600
    settings.SESSION_ABSOLUTE_TIMEOUT = 3600
    client = browser(crm_editor)
    age_session(client, seen_ago=0, started_ago=3599)
    assert signed_in(client)

    age_session(client, seen_ago=0, started_ago=2)

    assert client.get(HOME).url.startswith(LOGIN)


def test_expired_htmx_request_redirects_the_whole_page(crm_editor, settings):
    settings.SESSION_IDLE_TIMEOUT = 600
    client = browser(crm_editor)
    age_session(client, seen_ago=601, started_ago=601)

    response = client.get(
        reverse("customers:index"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/customers/?q=a"},
    )

    assert response["HX-Redirect"] == f"{LOGIN}?next=/customers/%3Fq%3Da"
    assert not signed_in(client)


def test_sessions_end_signs_out_every_browser_of_the_user_only(crm_editor, crm_viewer):
    laptop, phone, colleague = browser(crm_editor), browser(crm_editor), browser(crm_viewer)

    assert sessions_end(crm_editor) == 2

    assert not signed_in(laptop)
    assert not signed_in(phone)
    assert signed_in(colleague)
    assert LoginSession.objects.filter(user=crm_editor).count() == 0


def admin_form_data(page) -> dict:
    """What the browser would post back for an admin change page left as it is."""
    data = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
        forms += inline.formset.initial_forms
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if hasattr(field.widget, "decompress"):  # split date and time
                for index, part in enumerate(field.widget.decompress(value)):
                    data[f"{form.add_prefix(name)}_{index}"] = "" if part is None else part
            elif value is not None and value is not False:
                data[form.add_prefix(name)] = value
    return data


def test_deactivating_a_user_in_the_admin_ends_their_sessions(crm_editor, superuser):
    laptop, phone = browser(crm_editor), browser(crm_editor)
    keys = [laptop.session.session_key, phone.session.session_key]
    admin = Client()
    admin.force_login(superuser)

    url = reverse("admin:org_user_change", args=[crm_editor.pk])
    data = admin_form_data(admin.get(url))
    del data["is_active"]  # the unticked box
    response = admin.post(url, data)

    assert response.status_code == 302
    crm_editor.refresh_from_db()
    assert crm_editor.is_active is False
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert not signed_in(laptop)
    assert not signed_in(phone)


def test_deactivating_by_any_save_ends_sessions(crm_editor):
    client = browser(crm_editor)

    crm_editor.is_active = False
    crm_editor.save(update_fields=["is_active"])

    assert not Session.objects.filter(session_key=client.session.session_key).exists()
    assert not LoginSession.objects.filter(user=crm_editor).exists()


def test_other_saves_keep_sessions(crm_editor):
    client = browser(crm_editor)

    crm_editor.first_name = "Hanako"
    crm_editor.save()

    assert signed_in(client)


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(crm_editor):
    this, other = browser(crm_editor), browser(crm_editor)
    new_password = "a-much-longer-passphrase-2026"

    response = this.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )

    assert response.status_code == 302
    assert signed_in(this)
    assert not signed_in(other)
    # The session Django moved to a new key is listed again, so it can still be ended.
    assert list(
        LoginSession.objects.filter(user=crm_editor).values_list("session_key", flat=True)
    ) == [this.session.session_key]
    sessions_end(crm_editor)
    assert not signed_in(this)


# --------------------------------------------------------------------------- login lockout


def attempt(user, password: str, ip: str = "10.0.0.1") -> int:
    client = Client(REMOTE_ADDR=ip)
    return client.post(LOGIN, {"username": user.username, "password": password}).status_code


def lock_out(user, ip: str = "10.0.0.1") -> None:
    """``AXES_FAILURE_LIMIT`` wrong passwords: the form again each time, then the lockout."""
    codes = [attempt(user, "wrong-password", ip) for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert codes == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]


def test_after_five_wrong_passwords_even_the_right_one_is_refused(crm_editor):
    assert settings.AXES_FAILURE_LIMIT == 5
    lock_out(crm_editor)

    client = Client(REMOTE_ADDR="10.0.0.1")
    response = client.post(LOGIN, {"username": crm_editor.username, "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert not signed_in(client)


def test_lockout_is_per_username_and_address(crm_editor, crm_viewer):
    lock_out(crm_editor)

    assert attempt(crm_viewer, PASSWORD) == 302
    assert attempt(crm_editor, PASSWORD, ip="10.0.0.2") == 302
    assert attempt(crm_editor, PASSWORD) == 429


def test_lockout_ends_after_the_cool_off_or_a_reset(crm_editor):
    lock_out(crm_editor)
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    assert attempt(crm_editor, PASSWORD) == 302

    lock_out(crm_editor)
    assert attempt(crm_editor, PASSWORD) == 429
    call_command("axes_reset", stdout=io.StringIO())
    assert attempt(crm_editor, PASSWORD) == 302
