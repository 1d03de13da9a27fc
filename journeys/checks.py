"""System checks of the campaign platform: what the law needs before marketing goes out.

Japan's Act on Regulation of Transmission of Specified Electronic Mail (特定電子メール法)
requires every advertising message to name its sender (name and postal address) and to
carry a working way to opt out. Messages are rendered outside any request, so the opt-out
link is absolute only with ``SITE_URL``. ``manage.py check --deploy`` therefore fails in
production (``DEBUG`` off) while any of these settings is empty.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

SENDER_SETTINGS = {
    "COMPANY_NAME": (
        "journeys.E001",
        "the sender's name shown in every marketing message and on public pages",
    ),
    "COMPANY_ADDRESS": (
        "journeys.E002",
        "the sender's postal address in the footer of every marketing email",
    ),
    "SITE_URL": (
        "journeys.E003",
        "the public address that makes unsubscribe links in messages absolute",
    ),
}


@register("compliance", deploy=True)
def sender_identity_check(app_configs=None, **kwargs) -> list[Error]:
    """Errors for each empty sender-identity setting when ``DEBUG`` is off."""
    if settings.DEBUG:
        return []
    errors = []
    for name, (check_id, purpose) in SENDER_SETTINGS.items():
        if not str(getattr(settings, name, "") or "").strip():
            errors.append(
                Error(
                    f"{name} is empty: it is {purpose}, which Japan's Specified Electronic "
                    "Mail Act requires in every advertising message.",
                    hint=f"Set the {name} environment variable (see README, Configuration).",
                    id=check_id,
                )
            )
    return errors
