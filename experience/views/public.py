"""Circle ② public pages: a customer answers a survey through a signed one-time link.

No login: the token is the key. The page speaks the reader's language — ``?lang=ja|en``
first, then the browser's (``Accept-Language``) — and shows nothing about the customer or
the company's staff. A forged or unknown link answers 404, an expired one 410, and a link
already answered 409 with a thank-you, storing nothing the second time.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from experience.models import Survey
from experience.surveys import (
    COMMENT_MAX,
    SCORE_RANGES,
    AlreadyAnswered,
    InvitationError,
    InvitationExpired,
    InvitationInvalid,
    choice_label,
    invitation_from_token,
    response_submit,
    survey_question,
)

LANGUAGES = ("ja", "en")


class AnswerForm(forms.Form):
    """The answer to one survey: a score (NPS, CSAT) or a choice (preference), a comment."""

    comment = forms.CharField(
        label=_("Anything you would like to tell us? (optional)"),
        required=False,
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, survey: Survey, **kwargs):
        super().__init__(*args, **kwargs)
        if survey.kind in SCORE_RANGES:
            low, high = SCORE_RANGES[survey.kind]
            self.fields["score"] = forms.TypedChoiceField(
                label=_("Your score"),
                coerce=int,
                choices=[(n, str(n)) for n in range(low, high + 1)],
                widget=forms.RadioSelect,
                error_messages={"required": _("Please choose a score.")},
            )
        else:
            self.fields["choice"] = forms.ChoiceField(
                label=_("Your choice"),
                choices=[(c["value"], choice_label(c)) for c in survey.choices],
                widget=forms.RadioSelect,
                error_messages={"required": _("Please choose one answer.")},
            )
        self.order_fields(["score", "choice", "comment"])


def public_language(request: HttpRequest, fallback: str | None = None) -> str:
    """The language of a page for customers: ``?lang=``, else theirs, else the browser's."""
    asked = request.GET.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if fallback in LANGUAGES:
        return fallback
    return translation.get_language_from_request(request, check_path=False) or "ja"


def render_public_page(
    request, template: str, context: dict, *, here: str, language: str, status: int = 200
) -> HttpResponse:
    """A page for customers, who have no login: sender identity, language links, no indexing.

    ``here`` is the page's own URL (it carries the signed token), for the language links
    and the form's action.
    """
    context = {
        "company_name": settings.COMPANY_NAME or gettext("Customer Circle"),
        "company_address": settings.COMPANY_ADDRESS,
        "language": language,
        "language_links": [
            {"code": "ja", "label": "日本語", "url": f"{here}?{urlencode({'lang': 'ja'})}"},
            {"code": "en", "label": "English", "url": f"{here}?{urlencode({'lang': 'en'})}"},
        ],
        "action": f"{here}?{urlencode({'lang': language})}",
        **context,
    }
    response = render(request, template, context, status=status)
    response["Content-Language"] = language
    response["X-Robots-Tag"] = "noindex, nofollow"
    # Keeps the token out of other sites' logs; "no-referrer" would make browsers send
    # "Origin: null" with the form, which CSRF protection rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


def _render(request, template: str, context: dict, *, language: str, status: int = 200):
    token = request.resolver_match.kwargs["token"]
    here = reverse("survey_public:respond", args=[token])
    return render_public_page(
        request, template, context, here=here, language=language, status=status
    )


def _refusal(request, error: InvitationError, *, language: str) -> HttpResponse:
    if isinstance(error, AlreadyAnswered):
        title = gettext("You have already answered this survey. Thank you!")
        text = gettext("Each link takes one answer, and we have yours.")
    elif isinstance(error, InvitationExpired):
        title = gettext("This survey link has expired")
        text = gettext("Thank you for your interest. The time to answer this survey is over.")
    else:
        title = gettext("This link is not valid")
        text = gettext(
            "The link may not have been copied completely. Please use the link exactly as we "
            "sent it to you."
        )
    return _render(
        request,
        "experience/public/message.html",
        {"title": title, "text": text, "kind": type(error).__name__},
        language=language,
        status=error.status,
    )


@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def respond(request: HttpRequest, token: str) -> HttpResponse:
    """The survey form (GET) and the answer (POST): one answer per link."""
    language = public_language(request)
    with translation.override(language):
        try:
            invitation = invitation_from_token(token)
        except InvitationError as error:
            return _refusal(request, error, language=language)
        if invitation.answered_at is not None:
            return _refusal(request, AlreadyAnswered(), language=language)
        survey = invitation.survey
        form = AnswerForm(request.POST or None, survey=survey)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                response_submit(
                    invitation=invitation,
                    score=data.get("score"),
                    choice=data.get("choice", ""),
                    comment=data["comment"],
                )
            except InvitationError as error:
                return _refusal(request, error, language=language)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                thanks = reverse("survey_public:thanks", args=[token])
                return redirect(f"{thanks}?{urlencode({'lang': language})}")
        return _render(
            request,
            "experience/public/respond.html",
            {
                "survey": survey,
                "question": survey_question(survey, language),
                "form": form,
                "is_nps": survey.kind == Survey.Kind.NPS,
                "is_csat": survey.kind == Survey.Kind.CSAT,
            },
            language=language,
            status=400 if request.method == "POST" else 200,
        )


@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD"])
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    """After the answer: thank you. Only a genuine, answered link gets this page."""
    language = public_language(request)
    with translation.override(language):
        try:
            invitation = invitation_from_token(token)
        except InvitationInvalid as error:
            return _refusal(request, error, language=language)
        except InvitationExpired:
            invitation = None
        if invitation is None or invitation.answered_at is None:
            return redirect(f"{reverse('survey_public:respond', args=[token])}?lang={language}")
        return _render(request, "experience/public/thanks.html", {}, language=language)
