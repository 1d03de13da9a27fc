"""Circle ② pages: surveys — list, summary of answers, create and edit, test links."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.org.models import Department
from config.org.selectors import get_visible_or_404
from customers.models import AttributeDefinition, Customer
from experience.models import Survey, Touchpoint
from experience.surveys import (
    editable_departments,
    invitation_create,
    invitation_url,
    survey_can_edit,
    survey_create,
    survey_list,
    survey_summary,
    survey_update,
)

PERIODS = {30: _("Last 30 days"), 90: _("Last 90 days"), 365: _("Last 12 months")}
DEFAULT_PERIOD = 90


def _period(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def survey_index(request: HttpRequest) -> HttpResponse:
    """Surveys the user's departments own or were shared, with answers of the last 90 days."""
    since = timezone.now() - dt.timedelta(days=DEFAULT_PERIOD)
    return render(
        request,
        "experience/surveys/list.html",
        {
            "active_circle": "experience",
            "surveys": survey_list(request.user, since=since),
            "can_create": editable_departments(request.user).exists(),
        },
    )


class TestLinkForm(forms.Form):
    customer = forms.IntegerField(label=_("Customer ID"), min_value=1)


def _detail_page(request, survey: Survey, *, link_form=None, link: str = "", status=200):
    days = _period(request)
    summary = survey_summary(
        survey, since=timezone.now() - dt.timedelta(days=days), user=request.user
    )
    return render(
        request,
        "experience/surveys/detail.html",
        {
            "active_circle": "experience",
            "survey": survey,
            "summary": summary,
            "days": days,
            "periods": PERIODS.items(),
            "can_edit": survey_can_edit(survey=survey, user=request.user),
            "link_form": link_form or TestLinkForm(),
            "link": link,
        },
        status=status,
    )


def _visible_survey(request, pk: int) -> Survey:
    return get_visible_or_404(
        Survey.objects.select_related("owner_department", "touchpoint", "attribute"),
        request.user,
        pk=pk,
    )


def survey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One survey: score distribution, NPS, answer rate, latest comments, monthly trend."""
    return _detail_page(request, _visible_survey(request, pk))


@require_POST
def survey_test_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Editors: create an invitation for one customer and show its public link."""
    survey = _visible_survey(request, pk)
    if not survey_can_edit(survey=survey, user=request.user):
        raise PermissionDenied
    form = TestLinkForm(request.POST)
    if form.is_valid():
        customer = Customer.objects.filter(pk=form.cleaned_data["customer"]).first()
        if customer is None:
            form.add_error("customer", gettext("No customer has this ID."))
        else:
            try:
                invitation = invitation_create(survey=survey, customer=customer)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                return _detail_page(
                    request, survey, link=invitation_url(invitation, request=request)
                )
    return _detail_page(request, survey, link_form=form, status=400)


CHOICES_HELP = _(
    "Preference surveys: one choice per line as “value | Japanese label | English label”, "
    "2 to 12 lines."
)


class SurveyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Survey.Kind.choices)
    question = forms.CharField(
        label=_("Question (Japanese)"), widget=forms.Textarea(attrs={"rows": 2})
    )
    question_en = forms.CharField(
        label=_("Question (English)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Shown to English readers; the Japanese question is used when empty."),
    )
    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=CHOICES_HELP,
    )
    attribute = forms.ModelChoiceField(
        label=_("Profile attribute"),
        required=False,
        queryset=AttributeDefinition.objects.none(),
        help_text=_("Preference surveys: the answer is stored in this customer attribute."),
    )
    touchpoint = forms.ModelChoiceField(
        label=_("Touchpoint"), required=False, queryset=Touchpoint.objects.none()
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    owner_department = forms.ModelChoiceField(
        label=_("Owner department"), queryset=Department.objects.none()
    )

    def __init__(self, *args, user, survey: Survey | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["touchpoint"].queryset = Touchpoint.objects.visible_to(user)
        self.fields["attribute"].queryset = AttributeDefinition.objects.visible_to(user).filter(
            type__in=[AttributeDefinition.Type.CHOICE, AttributeDefinition.Type.TEXT]
        )
        if survey is None:
            self.fields["owner_department"].queryset = editable_departments(user)
        else:
            del self.fields["owner_department"]

    def clean_choices(self) -> list[dict]:
        parsed = []
        for line in self.cleaned_data["choices"].splitlines():
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            value = parts[0]
            label = parts[1] if len(parts) > 1 and parts[1] else value
            label_en = parts[2] if len(parts) > 2 else ""
            parsed.append({"value": value, "label": label, "label_en": label_en})
        return parsed

    @staticmethod
    def choices_text(choices: list[dict]) -> str:
        return "\n".join(
            " | ".join(
                part for part in (c["value"], c.get("label", ""), c.get("label_en", "")) if part
            )
            for c in choices
        )


def _form_page(request: HttpRequest, *, survey: Survey | None) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = SurveyForm(request.POST, user=user, survey=survey)
        if form.is_valid():
            data = dict(form.cleaned_data)
            owner = data.pop("owner_department", None)
            try:
                if survey is None:
                    saved = survey_create(by=user, owner_department=owner, **data)
                else:
                    saved = survey_update(survey=survey, by=user, **data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    root = field.split("[")[0].split(".")[0]
                    if root in form.fields:
                        form.add_error(
                            root, [f"{field}: {e}" if root != field else e for e in errors]
                        )
                    else:
                        form.add_error(None, errors)
            else:
                messages.success(request, gettext("Survey saved."))
                return redirect("experience:survey", pk=saved.pk)
    else:
        initial = {"is_active": True}
        if survey is not None:
            initial = {
                "name": survey.name,
                "kind": survey.kind,
                "question": survey.question,
                "question_en": survey.question_en,
                "choices": SurveyForm.choices_text(survey.choices or []),
                "attribute": survey.attribute_id,
                "touchpoint": survey.touchpoint_id,
                "is_active": survey.is_active,
            }
        form = SurveyForm(initial=initial, user=user, survey=survey)
    return render(
        request,
        "experience/surveys/form.html",
        {"active_circle": "experience", "form": form, "survey": survey},
        status=400 if request.method == "POST" else 200,
    )


def survey_new(request: HttpRequest) -> HttpResponse:
    """A new survey, for editors and managers of a department."""
    if not editable_departments(request.user).exists():
        raise PermissionDenied
    return _form_page(request, survey=None)


def survey_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a survey the user may edit (viewers answer 403, other departments 404)."""
    survey = _visible_survey(request, pk)
    if not survey_can_edit(survey=survey, user=request.user):
        raise PermissionDenied
    return _form_page(request, survey=survey)


urlpatterns = [
    path("surveys/", survey_index, name="surveys"),
    path("surveys/new/", survey_new, name="survey_new"),
    path("surveys/<int:pk>/", survey_detail, name="survey"),
    path("surveys/<int:pk>/edit/", survey_edit, name="survey_edit"),
    path("surveys/<int:pk>/test-link/", survey_test_link, name="survey_test_link"),
]
