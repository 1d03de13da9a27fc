"""Surveys: NPS, satisfaction (CSAT) and preference questions answered on public pages.

Writes (``survey_*``, ``invitation_*``, ``response_submit``) and reads (``survey_list``,
``survey_summary``, the 360 panel) of one topic. A customer reaches a survey through a
signed one-time link: the token signs the invitation's id, the invitation row says when it
expires and whether it was answered, and the response's one-to-one reference to the
invitation makes a second answer impossible even when two arrive at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import (
    Avg,
    Count,
    FilteredRelation,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, Role
from config.org.selectors import departments_where
from config.org.services import audit_record
from customers.models import AttributeDefinition, Customer
from customers.panels import ProfilePanel, register_profile_panel
from customers.selectors import can_view_pii, customer_merge_winner, mask_text
from experience.event_types import event_type_ensure
from experience.ingest import events_record
from experience.models import (
    Event,
    EventType,
    Order,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Touchpoint,
)
from experience.nps import nps_category, nps_counts, nps_score

logger = logging.getLogger(__name__)

TOKEN_SALT = "survey-invitation"
EVENT_TYPE = "survey_answered"
EVENT_SOURCE = "survey"
EVENT_SCHEMA = {"survey_id": "integer", "score": "integer", "kind": "string", "choice": "string"}
COMMENT_MAX = 2000
MIN_CHOICES, MAX_CHOICES = 2, 12
SCORE_RANGES = {Survey.Kind.NPS: (0, 10), Survey.Kind.CSAT: (1, 5)}
DEFAULT_VALID_DAYS = 30
SURVEY_FIELDS = (
    "name",
    "kind",
    "question",
    "question_en",
    "choices",
    "attribute",
    "touchpoint",
    "is_active",
)


# --- errors -------------------------------------------------------------------------------


class InvitationError(Exception):
    """A survey link that cannot be answered; ``status`` is the HTTP status to answer with."""

    status = 400


class InvitationInvalid(InvitationError):
    """A forged, truncated or unknown link: says nothing about which."""

    status = 404


class InvitationExpired(InvitationError):
    """The link is genuine but its time (or its survey) is over."""

    status = 410


class AlreadyAnswered(InvitationError):
    """The invitation was answered before: one answer per link."""

    status = 409


# --- who may do what ----------------------------------------------------------------------


def editable_departments(user) -> QuerySet[Department]:
    """Departments the user may create surveys for (editor or manager there)."""
    return departments_where(user, Role.EDITOR)


def survey_can_edit(*, survey: Survey, user) -> bool:
    """Editors of the owning department (or of an edit-share), and administrators."""
    return Survey.objects.editable_by(user).filter(pk=survey.pk).exists()


# --- surveys ------------------------------------------------------------------------------


def _clean_choices(choices) -> list[dict]:
    if not isinstance(choices, list):
        raise ValidationError({"choices": ["expected a list of {value, label} objects"]})
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        raise ValidationError(
            {"choices": [f"a preference survey needs {MIN_CHOICES} to {MAX_CHOICES} choices"]}
        )
    cleaned, errors, seen = [], {}, set()
    for index, item in enumerate(choices):
        where = f"choices[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["expected an object with value and label"]
            continue
        value = str(item.get("value") or "").strip()
        label = str(item.get("label") or "").strip()
        label_en = str(item.get("label_en") or "").strip()
        if not value:
            errors[f"{where}.value"] = ["is required"]
        elif len(value) > 100:
            errors[f"{where}.value"] = ["is longer than 100 characters"]
        elif value in seen:
            errors[f"{where}.value"] = [f"{value!r} is used twice"]
        if not label:
            errors[f"{where}.label"] = ["is required"]
        seen.add(value)
        cleaned.append({"value": value, "label": label, "label_en": label_en})
    if errors:
        raise ValidationError(errors)
    return cleaned


def _attribute_values(definition: AttributeDefinition) -> list:
    return [c[0] if isinstance(c, list | tuple) else c for c in definition.choices or []]


def _clean_survey(fields: dict, *, instance: Survey, by) -> dict:
    """Validated survey fields; every problem is reported under its field name."""
    unknown = set(fields) - set(SURVEY_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "unknown field"))
    data = {name: getattr(instance, name) for name in SURVEY_FIELDS}
    data.update(fields)
    errors: dict[str, list[str]] = {}
    for name in ("name", "question", "question_en"):
        data[name] = str(data.get(name) or "").strip()
    if not data["name"]:
        errors["name"] = ["is required"]
    elif len(data["name"]) > 200:
        errors["name"] = ["is longer than 200 characters"]
    if not data["question"]:
        errors["question"] = ["is required"]
    if data["kind"] not in Survey.Kind.values:
        errors["kind"] = [f"expected one of: {', '.join(Survey.Kind.values)}"]
    attribute = data.get("attribute")
    touchpoint = data.get("touchpoint")
    if data["kind"] == Survey.Kind.PREFERENCE:
        try:
            data["choices"] = _clean_choices(data.get("choices"))
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if attribute is not None:
            if not isinstance(attribute, AttributeDefinition):
                errors["attribute"] = ["expected an attribute definition"]
            elif attribute.type not in (
                AttributeDefinition.Type.CHOICE,
                AttributeDefinition.Type.TEXT,
            ):
                errors["attribute"] = ["must be a choice or text attribute"]
            elif attribute.type == AttributeDefinition.Type.CHOICE and "choices" not in errors:
                allowed = _attribute_values(attribute)
                for index, choice in enumerate(data["choices"]):
                    if choice["value"] not in allowed:
                        errors[f"choices[{index}].value"] = [
                            f"{choice['value']!r} is not a choice of the attribute "
                            f"{attribute.key!r}"
                        ]
    else:
        if data.get("choices"):
            errors["choices"] = ["only preference surveys have choices"]
        if attribute is not None:
            errors["attribute"] = ["only preference surveys store the answer in an attribute"]
        data["choices"], data["attribute"] = [], None
    if touchpoint is not None and not (
        isinstance(touchpoint, Touchpoint)
        and Touchpoint.objects.visible_to(by).filter(pk=touchpoint.pk).exists()
    ):
        errors["touchpoint"] = ["no such touchpoint is visible to you"]
    data["is_active"] = bool(data.get("is_active", True))
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic
def survey_create(*, by, owner_department: Department, **fields) -> Survey:
    """A new survey of a department the user edits for; validated per kind."""
    if not editable_departments(by).filter(pk=owner_department.pk).exists():
        raise PermissionDenied("You may not create surveys for this department.")
    fields.setdefault("kind", Survey.Kind.NPS)
    survey = Survey(owner_department=owner_department)
    for name, value in _clean_survey(fields, instance=survey, by=by).items():
        setattr(survey, name, value)
    survey.save()
    audit_record(actor=by, action="survey.create", target=survey, department=owner_department)
    return survey


@transaction.atomic
def survey_update(*, survey: Survey, by, **fields) -> Survey:
    """Change a survey the user may edit; the kind cannot change once people answered."""
    if not survey_can_edit(survey=survey, user=by):
        raise PermissionDenied("You may not edit this survey.")
    if (
        "kind" in fields
        and fields["kind"] != survey.kind
        and SurveyResponse.objects.filter(survey=survey).exists()
    ):
        raise ValidationError({"kind": ["cannot change once customers have answered"]})
    cleaned = _clean_survey(fields, instance=survey, by=by)
    changed = [name for name, value in cleaned.items() if getattr(survey, name) != value]
    for name in changed:
        setattr(survey, name, cleaned[name])
    if changed:
        survey.save(update_fields=changed)
        audit_record(
            actor=by,
            action="survey.update",
            target=survey,
            department=survey.owner_department,
            detail={"fields": sorted(changed)},
        )
    return survey


# --- invitations and their links -----------------------------------------------------------


@transaction.atomic
def invitation_create(
    *,
    survey: Survey,
    customer: Customer,
    order: Order | None = None,
    touchpoint: Touchpoint | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> SurveyInvitation:
    """Invite one customer (the surviving profile, if merged) to answer one survey."""
    if not survey.is_active:
        raise ValidationError({"survey": ["is not active"]})
    if not isinstance(valid_days, int) or not 1 <= valid_days <= 365:
        raise ValidationError({"valid_days": ["expected a whole number of days from 1 to 365"]})
    customer = customer_merge_winner(customer)
    now = timezone.now()
    return SurveyInvitation.objects.create(
        survey=survey,
        customer=customer,
        order=order,
        touchpoint=touchpoint or survey.touchpoint,
        created_at=now,
        expires_at=now + dt.timedelta(days=valid_days),
    )


def customer_for_identifiers(identifiers) -> Customer:
    """The one existing customer that identifiers (kind → value) name; never creates one.

    Raises ``ValidationError`` naming ``identifiers`` or ``identifiers.<kind>`` when an
    identifier is malformed, names nobody, or two of them name different people.
    """
    from customers.identity import IdentifierError, normalize_identifier
    from customers.models import Identity

    if not isinstance(identifiers, dict) or not identifiers:
        raise ValidationError({"identifiers": ["expected an object of kind → value"]})
    lookups, errors = Q(), {}
    for kind, value in identifiers.items():
        try:
            lookups |= Q(kind=kind, value=normalize_identifier(kind, value))
        except IdentifierError as exc:
            errors[f"identifiers.{kind}"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    ids = {
        customer_merge_winner(identity.customer).pk
        for identity in Identity.objects.filter(lookups).select_related("customer")
    }
    if not ids:
        raise ValidationError({"identifiers": ["no customer has these identifiers"]})
    if len(ids) > 1:
        raise ValidationError({"identifiers": ["these identifiers name different customers"]})
    return Customer.objects.get(pk=ids.pop())


def invitation_token(invitation: SurveyInvitation) -> str:
    """The signed token of a survey link: the invitation id and its signature."""
    return signing.Signer(salt=TOKEN_SALT).sign(str(invitation.pk))


def invitation_from_token(token: str) -> SurveyInvitation:
    """The invitation a link names, with its survey.

    Raises :class:`InvitationInvalid` for a forged or unknown token and
    :class:`InvitationExpired` for an unanswered invitation past its time or of a closed
    survey; an answered one is returned (the caller shows "already answered").
    """
    try:
        pk = int(signing.Signer(salt=TOKEN_SALT).unsign(token))
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise InvitationInvalid from exc
    invitation = SurveyInvitation.objects.select_related("survey").filter(pk=pk).first()
    if invitation is None:
        raise InvitationInvalid
    if invitation.answered_at is None and (
        invitation.expires_at <= timezone.now() or not invitation.survey.is_active
    ):
        raise InvitationExpired
    return invitation


def invitation_url(invitation: SurveyInvitation, *, request=None) -> str:
    """The public link to send; absolute when a request (or ``SITE_URL``) says the host."""
    path = reverse("survey_public:respond", args=[invitation_token(invitation)])
    if request is not None:
        return request.build_absolute_uri(path)
    base = settings.SITE_URL
    return f"{base.rstrip('/')}{path}" if base else path


# --- answers -----------------------------------------------------------------------------


def _clean_answer(survey: Survey, *, score, choice, comment) -> dict:
    errors: dict[str, list[str]] = {}
    comment = str(comment or "").strip()
    if len(comment) > COMMENT_MAX:
        errors["comment"] = [f"is longer than {COMMENT_MAX} characters"]
    if survey.kind in SCORE_RANGES:
        low, high = SCORE_RANGES[survey.kind]
        if isinstance(score, str) and score.strip().isdigit():
            score = int(score.strip())
        if score is None or score == "":
            errors["score"] = ["is required"]
        elif isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            errors["score"] = [f"expected a whole number from {low} to {high}"]
        choice = ""
    else:
        choice = str(choice or "").strip()
        values = [c.get("value") for c in survey.choices or []]
        if not choice:
            errors["choice"] = ["is required"]
        elif choice not in values:
            errors["choice"] = [f"expected one of: {', '.join(map(str, values))}"]
        score = None
    if errors:
        raise ValidationError(errors)
    return {"score": score, "choice": choice, "comment": comment}


def _event_type() -> EventType:
    return event_type_ensure(
        EVENT_TYPE,
        description="A customer answered a survey (NPS, CSAT or preference).",
        schema=EVENT_SCHEMA,
    )


@transaction.atomic
def response_submit(
    *, invitation: SurveyInvitation, score=None, choice: str = "", comment: str = ""
) -> SurveyResponse:
    """Record the one answer an invitation allows, and let it reach the profile.

    The invitation row is locked; an answered invitation, or a response already linked to
    it (the one-to-one catches two answers racing), raises :class:`AlreadyAnswered` and
    stores nothing. A preference answer is stored in the survey's profile attribute; a
    ``survey_answered`` event is recorded and the after-ingest pipeline refreshes the
    customer's metrics (last NPS) and segments.
    """
    locked = (
        SurveyInvitation.objects.select_for_update()
        .select_related("survey", "customer")
        .get(pk=invitation.pk)
    )
    if locked.answered_at is not None:
        raise AlreadyAnswered
    survey = locked.survey
    now = timezone.now()
    if locked.expires_at <= now or not survey.is_active:
        raise InvitationExpired
    answer = _clean_answer(survey, score=score, choice=choice, comment=comment)
    customer = customer_merge_winner(locked.customer)
    touchpoint_id = locked.touchpoint_id or survey.touchpoint_id
    try:
        with transaction.atomic():
            response = SurveyResponse.objects.create(
                survey=survey,
                customer=customer,
                invitation=locked,
                touchpoint_id=touchpoint_id,
                answered_at=now,
                **answer,
            )
    except IntegrityError as exc:
        raise AlreadyAnswered from exc
    locked.answered_at = now
    locked.save(update_fields=["answered_at"])
    if survey.kind == Survey.Kind.PREFERENCE and survey.attribute_id:
        _store_preference(customer=customer, survey=survey, choice=answer["choice"])
    properties = {"survey_id": survey.pk, "kind": survey.kind}
    if answer["score"] is not None:
        properties["score"] = answer["score"]
    if answer["choice"]:
        properties["choice"] = answer["choice"]
    events_record(
        events=[
            Event(
                customer=customer,
                event_type=_event_type(),
                touchpoint_id=touchpoint_id,
                occurred_at=now,
                source=EVENT_SOURCE,
                event_id=f"response-{response.pk}",
                properties=properties,
            )
        ]
    )
    invitation.answered_at = now
    return response


def _store_preference(*, customer: Customer, survey: Survey, choice: str) -> None:
    """Put the chosen value in the profile attribute; a stale attribute setup only logs."""
    from customers.services import customer_update

    attribute = AttributeDefinition.objects.filter(pk=survey.attribute_id).first()
    if attribute is None:
        return
    try:
        customer_update(customer=customer, by=None, attributes={attribute.key: choice})
    except ValidationError:
        logger.warning(
            "survey %s: answer %r does not fit attribute %r; kept on the response only",
            survey.pk,
            choice,
            attribute.key,
        )


# --- reads ---------------------------------------------------------------------------------


def survey_question(survey: Survey, language: str | None = None) -> str:
    """The question in the reader's language: Japanese by default, English when given."""
    language = language or translation.get_language() or "ja"
    if language.startswith("en") and survey.question_en:
        return survey.question_en
    return survey.question


def choice_label(choice: dict, language: str | None = None) -> str:
    """A preference choice's label in the reader's language."""
    language = language or translation.get_language() or "ja"
    if language.startswith("en") and choice.get("label_en"):
        return choice["label_en"]
    return choice.get("label") or choice.get("value", "")


def survey_list(user, *, since: dt.datetime) -> list[Survey]:
    """Visible surveys with answers, NPS (NPS surveys), mean score (CSAT) and answer rate
    since ``since``.

    Two queries: the surveys with their answers joined once and grouped, then the
    invitations grouped by survey. (Invitation counts as correlated sub-queries would land
    in the GROUP BY and run once per answer row.)
    """
    surveys = list(
        Survey.objects.visible_to(user)
        .select_related("owner_department", "touchpoint")
        .annotate(
            recent=FilteredRelation("responses", condition=Q(responses__answered_at__gte=since))
        )
        .annotate(
            response_count=Count("recent"),
            mean_score=Avg("recent__score"),
            **nps_counts("recent__"),
        )
        .order_by("name", "pk")
    )
    invited = {
        row["survey_id"]: row
        for row in SurveyInvitation.objects.filter(
            survey_id__in=[survey.pk for survey in surveys], created_at__gte=since
        )
        .order_by()
        .values("survey_id")
        .annotate(n=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False)))
    }
    for survey in surveys:
        counts = invited.get(survey.pk, {"n": 0, "answered": 0})
        survey.invitation_count, survey.answered_count = counts["n"], counts["answered"]
        survey.nps = (
            nps_score(total=survey.total, promoters=survey.promoters, detractors=survey.detractors)
            if survey.kind == Survey.Kind.NPS
            else None
        )
        survey.answer_rate = (
            round(survey.answered_count * 100 / survey.invitation_count, 1)
            if survey.invitation_count
            else None
        )
    return surveys


@dataclass(frozen=True)
class SurveySummary:
    """What the survey page shows: distribution, NPS parts, comments, monthly trend."""

    survey: Survey
    since: dt.datetime
    total: int
    distribution: list[dict]
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    mean_score: float | None
    invitations: int
    answered: int
    answer_rate: float | None
    comments: list[dict]
    trend: list[dict]


def _customer_label(customer: Customer, *, show_pii: bool) -> str:
    name = customer.full_name
    if not name:
        return f"#{customer.pk}"
    return f"{name if show_pii else mask_text(name)} (#{customer.pk})"


def survey_summary(
    survey: Survey, *, since: dt.datetime, user, comments: int = 10
) -> SurveySummary:
    """Answers to one survey since ``since``; customers masked unless the user may see PII."""
    responses = SurveyResponse.objects.filter(survey=survey, answered_at__gte=since)
    counts = responses.aggregate(**nps_counts(), answers=Count("pk"), mean=Avg("score"))
    if survey.kind == Survey.Kind.PREFERENCE:
        by_choice = dict(
            responses.order_by().values("choice").annotate(n=Count("pk")).values_list("choice", "n")
        )
        distribution = [
            {"value": c["value"], "label": choice_label(c), "count": by_choice.get(c["value"], 0)}
            for c in survey.choices
        ]
    else:
        low, high = SCORE_RANGES.get(survey.kind, (0, 10))
        by_score = dict(
            responses.order_by().values("score").annotate(n=Count("pk")).values_list("score", "n")
        )
        distribution = [
            {
                "value": score,
                "label": str(score),
                "count": by_score.get(score, 0),
                "category": nps_category(score) if survey.kind == Survey.Kind.NPS else "",
            }
            for score in range(low, high + 1)
        ]
    answers = counts["answers"]
    for row in distribution:
        row["percent"] = round(row["count"] * 100 / answers, 1) if answers else 0
    is_nps = survey.kind == Survey.Kind.NPS
    total = counts["total"] if is_nps else 0
    promoters = counts["promoters"] if is_nps else 0
    detractors = counts["detractors"] if is_nps else 0
    show_pii = can_view_pii(user)
    latest = (
        responses.exclude(comment="").select_related("customer").order_by("-answered_at", "-pk")
    )
    comment_rows = [
        {
            "answered_at": response.answered_at,
            "score": response.score,
            "choice": response.choice,
            "comment": response.comment,
            "customer_id": response.customer_id,
            "customer": _customer_label(response.customer, show_pii=show_pii),
        }
        for response in latest[:comments]
    ]
    trend = [
        {
            "month": row["month"],
            "answers": row["answers"],
            "nps": nps_score(
                total=row["total"], promoters=row["promoters"], detractors=row["detractors"]
            )
            if is_nps
            else None,
            "mean_score": round(row["mean"], 2) if row["mean"] is not None else None,
        }
        for row in responses.annotate(month=TruncMonth("answered_at"))
        .order_by()
        .values("month")
        .annotate(**nps_counts(), answers=Count("pk"), mean=Avg("score"))
        .order_by("month")
    ]
    invited = SurveyInvitation.objects.filter(survey=survey, created_at__gte=since).aggregate(
        invitations=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False))
    )
    return SurveySummary(
        survey=survey,
        since=since,
        total=answers,
        distribution=distribution,
        promoters=promoters,
        passives=total - promoters - detractors,
        detractors=detractors,
        nps=nps_score(total=total, promoters=promoters, detractors=detractors) if is_nps else None,
        mean_score=round(counts["mean"], 2)
        if counts["mean"] is not None and survey.kind == Survey.Kind.CSAT
        else None,
        invitations=invited["invitations"],
        answered=invited["answered"],
        answer_rate=round(invited["answered"] * 100 / invited["invitations"], 1)
        if invited["invitations"]
        else None,
        comments=comment_rows,
        trend=trend,
    )


# --- the customer 360 panel ---------------------------------------------------------------

PANEL_ROWS = 10


def survey_panel_context(*, request, customer: Customer, show_pii: bool) -> dict | None:
    """The customer's latest answers and open invitations.

    Answers are the customer's own behaviour (company-wide); the names of surveys that the
    viewer's departments cannot see are hidden, as on the timeline.
    """
    from experience.timeline import visible_flag

    user = getattr(request, "user", None)
    answers = list(
        SurveyResponse.objects.filter(customer=customer)
        .select_related("survey")
        .annotate(survey_visible=visible_flag(Survey, "survey_id", user))
        .order_by("-answered_at", "-pk")[:PANEL_ROWS]
    )
    open_invitations = list(
        SurveyInvitation.objects.filter(
            customer=customer, answered_at__isnull=True, expires_at__gt=timezone.now()
        )
        .select_related("survey")
        .annotate(survey_visible=visible_flag(Survey, "survey_id", user))
        .order_by("-created_at", "-pk")[:PANEL_ROWS]
    )
    for answer in answers:
        answer.category = (
            nps_category(answer.score)
            if answer.survey.kind == Survey.Kind.NPS and answer.score is not None
            else ""
        )
        answer.shown_comment = answer.comment if show_pii else mask_text(answer.comment)
    return {
        "answers": answers,
        "open_invitations": open_invitations,
        "hidden_name": _("a survey of another department"),
    }


register_profile_panel(
    ProfilePanel(
        name="surveys",
        template="experience/_survey_panel.html",
        context=survey_panel_context,
        order=40,
    )
)
