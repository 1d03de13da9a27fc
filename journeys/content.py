"""Message content: validating, personalising and previewing what a campaign step sends.

A variant's ``content`` maps a language code to ``{"subject": …, "body": …}`` (optionally
``"html"``), written in Django template syntax. It is rendered by a dedicated template
engine that sees nothing but the context built here:

- ``customer``: a read-only :class:`CustomerView` (``first_name`` = given name,
  ``last_name`` = family name, ``name`` in Japanese order for Japanese readers, kana);
- ``recommendations``: popular products the person has not bought (one query, run only if
  the template uses it);
- ``products``: the products the enrolment is about (``context["product_ids"]``: cart
  items, restocked favourites, price drops), listed by ``{% product_block products %}``;
- ``unsubscribe_url`` and ``company_name``.

The engine has no loaders and only a curated set of tags (no ``include``, ``extends``,
``load``, ``debug``…), so a template cannot read files, other objects or settings. The
text is rendered with autoescaping off; the HTML part is derived from it (escaped,
paragraphs, links turned into signed click URLs and an open pixel when a delivery is
given) unless the variant supplies its own ``html``, which is rendered with autoescaping on.
Every marketing email ends with the sender's identity and an unsubscribe link, as Japan's
Act on Regulation of Transmission of Specified Electronic Mail requires; marketing SMS, LINE
and push messages end with one line naming the sender and the same unsubscribe link.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db.models import Count, Exists, OuterRef, Subquery
from django.template import Context, Engine, Library, TemplateSyntaxError, defaulttags
from django.template.base import Template
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from customers.selectors import can_view_pii, mask_text

register = Library()
"""The tags and filters message templates may use (a curated subset of Django's)."""

SAFE_TAGS = (
    "autoescape",
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
for _name in SAFE_TAGS:
    register.tag(_name, defaulttags.register.tags[_name])

FIELDS = ("subject", "body", "html")
SUBJECT_REQUIRED = frozenset({"email"})
SMS_MAX_CHARS = 670
"""Japanese carriers join at most ten 67-character UCS-2 segments into one long SMS."""
SUBJECT_MAX_CHARS = 200
RECOMMENDATIONS = 3
RECOMMENDATION_DAYS = 90
URL_RE = re.compile(r"https?://[^\s<>\"'（）「」、。]+", re.IGNORECASE)
TRAILING_PUNCTUATION = ".,:;!?)]}'\""


class ContentError(ValueError):
    """A template that cannot be rendered; names the variant and the field."""


class MessageEngine(Engine):
    """A template engine for message content: Django's filters, a few tags, nothing else."""

    default_builtins = ["django.template.defaultfilters", "journeys.content"]


@functools.cache
def _engine(*, autoescape: bool, debug: bool = False) -> MessageEngine:
    return MessageEngine(
        dirs=[], app_dirs=False, loaders=[], autoescape=autoescape, debug=debug, libraries={}
    )


@functools.lru_cache(maxsize=512)
def _compiled(source: str, autoescape: bool) -> Template:
    """Templates are compiled once per process: a 10,000-person send reuses the same few."""
    return _engine(autoescape=autoescape).from_string(source)


# --- what templates see -------------------------------------------------------------------


class CustomerView:
    """The person as message templates see them: names only, read-only.

    ``masked`` shows the names as staff without personal-data access see them (previews).
    """

    __slots__ = (
        "family_name",
        "family_name_kana",
        "given_name",
        "given_name_kana",
        "language",
        "name",
        "name_kana",
    )

    def __init__(self, customer, *, language: str, masked: bool = False) -> None:
        set_ = object.__setattr__
        shown = mask_text if masked else str
        names = ("family_name", "given_name", "family_name_kana", "given_name_kana")
        for field in names:
            set_(self, field, shown(getattr(customer, field) or ""))
        set_(self, "language", language)
        japanese_order = language == "ja"
        set_(self, "name", _join(self.family_name, self.given_name, japanese_order))
        set_(self, "name_kana", _join(self.family_name_kana, self.given_name_kana, japanese_order))

    def __setattr__(self, name, value):
        raise AttributeError("read-only")

    @property
    def first_name(self) -> str:
        return self.given_name

    @property
    def last_name(self) -> str:
        return self.family_name

    @property
    def full_name(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def _join(family: str, given: str, japanese_order: bool) -> str:
    parts = [family, given] if japanese_order else [given, family]
    return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class ProductView:
    """A product as templates see it."""

    id: int
    sku: str
    name: str
    category: str
    price: int

    def __str__(self) -> str:
        return self.name


class LazyProducts:
    """A product list read on first use, so templates that do not list products cost nothing."""

    def __init__(self, loader) -> None:
        self._loader = loader
        self._items: list[ProductView] | None = None

    def _load(self) -> list[ProductView]:
        if self._items is None:
            self._items = [
                ProductView(id=p[0], sku=p[1], name=p[2], category=p[3], price=int(p[4]))
                for p in self._loader()
            ]
        return self._items

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return bool(self._load())

    def __getitem__(self, index):
        return self._load()[index]


PRODUCT_COLUMNS = ("pk", "sku", "name", "category", "price")


def _recommendations(customer_id: int | None):
    """Best sellers of the last 90 days that the person has never bought: one query."""
    from experience.models import OrderLine, Product

    def load():
        since = timezone.now() - dt.timedelta(days=RECOMMENDATION_DAYS)
        sold = (
            OrderLine.objects.filter(product=OuterRef("pk"), order__ordered_at__gte=since)
            .order_by()
            .values("product")
            .annotate(n=Count("pk"))
            .values("n")
        )
        products = Product.objects.filter(is_active=True, stock__gt=0).annotate(sold=Subquery(sold))
        if customer_id is not None:
            bought = OrderLine.objects.filter(product=OuterRef("pk"), order__customer=customer_id)
            products = products.filter(~Exists(bought))
        return list(
            products.filter(sold__gt=0)
            .order_by("-sold", "pk")
            .values_list(*PRODUCT_COLUMNS)[:RECOMMENDATIONS]
        )

    return LazyProducts(load)


def _context_products(context: dict):
    """The products an enrolment names (``product_ids``, or one ``product_id``), in order."""
    from experience.models import Product

    raw = context.get("product_ids") or (
        [context["product_id"]] if context.get("product_id") else []
    )
    ids = [int(pk) for pk in raw if str(pk).isdigit()][:20]

    def load():
        if not ids:
            return []
        rows = {
            row[0]: row for row in Product.objects.filter(pk__in=ids).values_list(*PRODUCT_COLUMNS)
        }
        return [rows[pk] for pk in ids if pk in rows]

    return LazyProducts(load)


def _yen(value: int) -> str:
    return f"¥{value:,}"


@register.simple_tag(takes_context=True)
def product_block(context, products=None):
    """A list of products with prices: lines in text, a list in HTML."""
    items = list(products or [])
    if not items:
        return ""
    if context.autoescape:
        rows = "".join(
            f"<li>{escape(item.name)} — {escape(_yen(item.price))}</li>" for item in items
        )
        return mark_safe(f"<ul>{rows}</ul>")  # every value is escaped above
    return "\n".join(f"・{item.name} — {_yen(item.price)}" for item in items)


@register.filter
def yen(value) -> str:
    """``3000|yen`` → ``¥3,000``."""
    try:
        return _yen(int(value))
    except (TypeError, ValueError):
        return ""


# --- choosing and rendering -------------------------------------------------------------


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body_text: str
    body_html: str
    language: str


def company_name() -> str:
    return settings.COMPANY_NAME or "Customer Circle"


def choose_language(content: dict, preferred: str | None) -> str | None:
    """The person's language if the content has it, else the company's, else the first."""
    present = [code for code, value in content.items() if isinstance(value, dict)]
    if not present:
        return None
    for code in (preferred, settings.LANGUAGE_CODE):
        if code in present:
            return code
    return present[0]


def render_message(
    *,
    variant,
    customer,
    language: str | None = None,
    context: dict | None = None,
    delivery=None,
    masked: bool = False,
) -> RenderedMessage:
    """The variant's content personalised for ``customer``.

    ``variant.step.campaign`` is read (select it with the variants when rendering a batch);
    ``context`` is the enrolment's (``delivery.enrollment.context`` when not given). With a
    ``delivery``, links in the HTML part become signed click URLs and an open pixel is
    added; without one (previews, tests) links stay as written.
    """
    campaign = variant.step.campaign
    content = variant.content or {}
    language = choose_language(content, language or customer.language)
    if language is None:
        raise ContentError(
            gettext("Variant %(label)s has no content in any language.") % {"label": variant.label}
        )
    fields = content[language]
    if context is None:
        context = {}
        if delivery is not None and delivery.enrollment_id:
            context = delivery.enrollment.context or {}
    from journeys import feedback

    unsubscribe = (
        feedback.unsubscribe_url(delivery.pk)
        if delivery is not None
        else feedback.public_url(feedback.unsubscribe_path("preview"))
    )
    values: dict[str, Any] = {
        "customer": CustomerView(customer, language=language, masked=masked),
        "recommendations": _recommendations(customer.pk),
        "products": _context_products(context),
        "unsubscribe_url": unsubscribe,
        "company_name": company_name(),
        "campaign_name": campaign.name,
    }
    with translation.override(language):
        subject = _render(variant, language, "subject", fields, values, autoescape=False)
        subject = " ".join(subject.split())
        body = _render(variant, language, "body", fields, values, autoescape=False).strip()
        channel = campaign.channel
        if channel == "email":
            body = f"{body}\n\n{_footer(unsubscribe if campaign.is_marketing else None)}"
        elif channel in OPT_OUT_CHANNELS and campaign.is_marketing:
            body = f"{body}\n\n{_opt_out_line(unsubscribe)}"
        own_html = (fields.get("html") or "").strip()
        if own_html:
            html = _render(variant, language, "html", fields, values, autoescape=True)
            html = _track_html_links(html, delivery, exclude=unsubscribe)
            if channel == "email":
                footer_html = _text_to_html(
                    _footer(unsubscribe if campaign.is_marketing else None), None, unsubscribe
                )
                html = f"{html}\n{footer_html}"
        elif channel in ("email", "push", "line", "webhook"):
            html = _text_to_html(body, delivery, unsubscribe)
        else:
            html = ""
        if html and delivery is not None and channel == "email":
            pixel = escape(feedback.open_url(delivery.pk))
            html = f'{html}\n<img src="{pixel}" width="1" height="1" alt="">'
        if html:
            html = _html_document(html, subject=subject, language=language)
    return RenderedMessage(subject=subject, body_text=body, body_html=html, language=language)


def _render(variant, language, field, fields, values, *, autoescape: bool) -> str:
    source = fields.get(field) or ""
    if not source:
        return ""
    try:
        return _compiled(source, autoescape).render(Context(values, autoescape=autoescape))
    except TemplateSyntaxError as exc:
        raise ContentError(
            gettext("Variant %(label)s, content.%(language)s.%(field)s: %(error)s")
            % {"label": variant.label, "language": language, "field": field, "error": exc}
        ) from exc
    except Exception as exc:  # a template must never take a batch down silently
        raise ContentError(
            gettext(
                "Variant %(label)s, content.%(language)s.%(field)s cannot be rendered: %(error)s"
            )
            % {"label": variant.label, "language": language, "field": field, "error": exc}
        ) from exc


OPT_OUT_CHANNELS = frozenset({"sms", "line", "push"})
"""Text channels whose advertising messages end with the sender and a way to opt out."""


def _opt_out_line(unsubscribe: str) -> str:
    """Sender and opt-out link for short channels (SMS, LINE, push): one line."""
    return gettext("%(company)s / Stop: %(url)s") % {"company": company_name(), "url": unsubscribe}


def _footer(unsubscribe: str | None) -> str:
    """Who sent this and how to stop it (sender identity is in every email)."""
    lines = ["—", company_name()]
    if settings.COMPANY_ADDRESS:
        lines.append(settings.COMPANY_ADDRESS)
    if unsubscribe:
        lines.append(gettext("To stop receiving these emails: %(url)s") % {"url": unsubscribe})
    return "\n".join(lines)


def _split_url(raw: str) -> tuple[str, str]:
    """A URL found in text, minus trailing punctuation that belongs to the sentence."""
    url = raw
    while url and url[-1] in TRAILING_PUNCTUATION:
        url = url[:-1]
    return url, raw[len(url) :]


def _text_to_html(text: str, delivery, unsubscribe: str | None) -> str:
    """Escaped paragraphs and line breaks, with links (tracked when a delivery is given)."""
    from journeys import feedback

    def linked(part: str) -> str:
        out, last = [], 0
        for match in URL_RE.finditer(part):
            url, rest = _split_url(match.group(0))
            href = url
            if delivery is not None and url != unsubscribe:
                href = feedback.click_url(delivery.pk, url)
            out.append(escape(part[last : match.start()]))
            out.append(f'<a href="{escape(href)}">{escape(url)}</a>{escape(rest)}')
            last = match.end()
        out.append(escape(part[last:]))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n{2,}", text.replace("\r\n", "\n")) if p.strip()]
    return "\n".join(
        "<p>{}</p>".format("<br>\n".join(linked(line) for line in paragraph.split("\n")))
        for paragraph in paragraphs
    )


HREF_RE = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


def _track_html_links(html: str, delivery, *, exclude: str) -> str:
    if delivery is None:
        return html
    from django.utils.html import escape as esc

    from journeys import feedback

    def replace(match):
        url = match.group(1).replace("&amp;", "&")
        if url == exclude:
            return match.group(0)
        return f'href="{esc(feedback.click_url(delivery.pk, url))}"'

    return HREF_RE.sub(replace, html)


def _html_document(body: str, *, subject: str, language: str) -> str:
    return (
        f'<!doctype html>\n<html lang="{language}">\n<head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# --- validation --------------------------------------------------------------------------


def validate_content(content: dict, *, channel: str) -> None:
    """Raise ``ValidationError`` keyed ``content.<lang>.<field>`` for anything unusable.

    Checks languages and fields, required subject (email) and body (every channel), the
    template syntax (with the line of the error) and the SMS length limit.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(content, dict) or not content:
        raise ValidationError({"content": [gettext("Write the message in at least one language.")]})
    languages = dict(settings.LANGUAGES)
    engine = _engine(autoescape=False, debug=True)
    html_engine = _engine(autoescape=True, debug=True)
    for language, fields in content.items():
        key = f"content.{language}"
        if language not in languages:
            errors[key] = [
                gettext("Unknown language %(code)s (use one of %(codes)s).")
                % {"code": language, "codes": ", ".join(languages)}
            ]
            continue
        if not isinstance(fields, dict):
            errors[key] = [gettext("Expected an object with subject and body.")]
            continue
        for name in fields:
            if name not in FIELDS:
                errors[f"{key}.{name}"] = [gettext("Unknown field.")]
        subject = fields.get("subject") or ""
        body = fields.get("body") or ""
        if not isinstance(subject, str) or not isinstance(body, str):
            errors[key] = [gettext("Subject and body must be text.")]
            continue
        if channel in SUBJECT_REQUIRED and not subject.strip():
            errors[f"{key}.subject"] = [gettext("A subject is required for email.")]
        if len(subject) > SUBJECT_MAX_CHARS:
            errors[f"{key}.subject"] = [
                gettext("At most %(n)d characters.") % {"n": SUBJECT_MAX_CHARS}
            ]
        if not body.strip():
            errors[f"{key}.body"] = [gettext("A message body is required.")]
        if channel == "sms" and len(body) > SMS_MAX_CHARS:
            errors[f"{key}.body"] = [
                gettext(
                    "An SMS holds at most %(n)d characters (10 joined segments of 67); "
                    "this template has %(len)d before personalisation."
                )
                % {"n": SMS_MAX_CHARS, "len": len(body)}
            ]
        for name in FIELDS:
            source = fields.get(name)
            if not isinstance(source, str) or not source:
                continue
            try:
                (html_engine if name == "html" else engine).from_string(source)
            except TemplateSyntaxError as exc:
                errors.setdefault(f"{key}.{name}", []).append(_syntax_message(exc))
    if errors:
        raise ValidationError(errors)


def _syntax_message(exc: TemplateSyntaxError) -> str:
    info = getattr(exc, "template_debug", None)
    if info and info.get("line"):
        return gettext("Line %(line)d: %(error)s") % {"line": info["line"], "error": exc}
    return str(exc)


# --- preview and test send ----------------------------------------------------------------


def preview_message(
    *, campaign, step, variant, customer, viewer=None, ip_address: str | None = None
) -> RenderedMessage:
    """What ``customer`` would get from this variant: no delivery, no tracking.

    Shown to a ``viewer``, the person's names are masked unless the viewer may see
    personal data, and an unmasked preview is audited like an unmasked profile view.
    """
    if step.campaign_id != campaign.pk or variant.step_id != step.pk:
        raise ValidationError({"variant": [gettext("The variant is not part of this step.")]})
    variant.step = step
    step.campaign = campaign
    masked = viewer is not None and not can_view_pii(viewer)
    try:
        rendered = render_message(variant=variant, customer=customer, masked=masked)
    except ContentError as exc:
        raise ValidationError({"content": [str(exc)]}) from exc
    if viewer is not None and not masked:
        from config.org.services import audit_record

        audit_record(
            actor=viewer,
            action="customer.view_pii",
            target=customer,
            detail={"via": "campaign_preview", "campaign": campaign.pk},
            ip_address=ip_address,
        )
    return rendered


def send_test(*, campaign, variant, to_email: str, customer, by) -> None:
    """Email ``to_email`` (a staff member) the variant as ``customer`` would get it.

    Never creates a Delivery and tracks nothing; for channels other than email the test
    email shows what would be sent. Only people who may edit the campaign may send tests,
    only to staff addresses, and each test is audited.
    """
    from config.org.models import User
    from config.org.services import audit_record
    from journeys.services import campaign_can_edit

    if not campaign_can_edit(by, campaign):
        raise PermissionDenied(gettext("You cannot edit this campaign."))
    to_email = (to_email or "").strip()
    try:
        validate_email(to_email)
    except ValidationError as exc:
        raise ValidationError({"to_email": [gettext("Enter a valid email address.")]}) from exc
    if not User.objects.filter(email__iexact=to_email, is_active=True).exists():
        raise ValidationError(
            {"to_email": [gettext("Test messages go to staff members' addresses only.")]}
        )
    step = variant.step
    rendered = preview_message(campaign=campaign, step=step, variant=variant, customer=customer)
    if campaign.channel == "email":
        subject, text, html = rendered.subject, rendered.body_text, rendered.body_html
    else:
        with translation.override(rendered.language):
            subject = gettext("%(campaign)s (%(channel)s)") % {
                "campaign": campaign.name,
                "channel": campaign.get_channel_display(),
            }
        text = "\n\n".join(part for part in (rendered.subject, rendered.body_text) if part)
        html = ""
    message = EmailMultiAlternatives(
        subject=f"[TEST] {subject}",
        body=text,
        from_email=settings.CAMPAIGN_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
        to=[to_email],
        headers={"X-Circle-Test": "1", "Auto-Submitted": "auto-generated"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)
    audit_record(
        actor=by,
        action="campaign.test_send",
        target=campaign,
        department=campaign.owner_department,
        detail={
            "to": to_email,
            "variant": variant.label,
            "step": step.position,
            "customer": customer.pk,
        },
    )


__all__ = [
    "ContentError",
    "CustomerView",
    "RenderedMessage",
    "choose_language",
    "preview_message",
    "render_message",
    "send_test",
    "validate_content",
]
