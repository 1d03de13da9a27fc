"""Scenario presets: proven campaigns a department starts from instead of a blank page.

Each :class:`Preset` is a complete campaign — trigger, entry conditions, steps with
Japanese and English content — created as a *draft* by :func:`preset_create` through the
same ``journeys.services.campaign_create`` as any campaign, so it is validated, audited
and approved like one. Anything can be overridden (name, channel, steps, priority…).

Choices worth knowing:

* **Cart / browse abandonment** wait 60 / 120 minutes after the event and stop when a
  purchase (or an add to cart) comes first (``trigger["unless"]``). A burst of events
  enrols once: a person already in the flow is not enrolled again
  (``journeys.triggers``).
* **Back in stock, low stock, price drop**: the catalogue emits no events when a product
  changes, only ``ProductChange`` rows; the tick turns them into ``product_restocked``,
  ``product_low_stock`` and ``price_dropped`` events for the customers who favourited
  the product (``experience.commerce.product_change_events_emit``), and these presets
  trigger on them, with the product in the message.
* **Dormant reactivation** is a *segment-entry* campaign on "last order more than 120
  days ago": someone enters once when they fall dormant, is messaged once, leaves the
  segment when they buy, and would be messaged again only after a new dormancy. A weekly
  recurring send to the same rule would write to the same people every week.
* **F2 (second purchase) steps**: on a ``purchase`` event by someone with at most one
  purchase and one order on file; days 3, 14 and 30; any later purchase ends it at once,
  and each step re-checks the entry condition (an imported second order ends it too).
* **Spouse's birthday**: 7 days before, in the person's time zone (a florist's classic).
* **Life situation**: moving house — the one situation the platform detects by itself
  (an address change), and a moment when needs change for almost any business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from journeys.models import Campaign

DAY = 24 * 60
FIRST_PURCHASE_RULES = {
    "op": "and",
    "children": [
        {"type": "metric", "field": "order_count", "op": "lte", "value": 1},
        {"op": "not", "child": {"type": "event", "event": "purchase", "min_count": 2}},
    ],
}
DORMANT_RULES = {
    "op": "and",
    "children": [
        {"type": "metric", "field": "last_order_at", "op": "older_than_days", "value": 120}
    ],
}
_PRODUCT_SCHEMA = {"sku": "string", "product_id": "integer", "old": "number", "new": "number"}
# Event types presets name that the platform itself emits or interprets (carts are rebuilt
# from the commerce events), registered on first use so a fresh install can use presets.
PLATFORM_EVENTS = {
    "product_restocked": ("A favourited product is back in stock", _PRODUCT_SCHEMA),
    "product_low_stock": ("A favourited product is running out", _PRODUCT_SCHEMA),
    "price_dropped": ("A favourited product got cheaper", _PRODUCT_SCHEMA),
    "product_view": ("A product page was viewed", {"sku": "string"}),
    "add_to_cart": ("A product was put into the cart", {"sku": "string"}),
    "checkout_completed": ("An online checkout was completed", {}),
    "purchase": ("A purchase", {}),
}


@dataclass(frozen=True)
class Preset:
    """A ready-made campaign; ``steps`` are ``step_save`` arguments."""

    title: Any
    description: Any
    kind: str
    channel: str
    trigger: dict
    steps: list[dict]
    audience_rules: dict = field(default_factory=dict)
    priority: int = 50
    experience_values: tuple[str, ...] = ()
    segment_rules: dict | None = None
    """For segment-entry presets: the rules of the segment created with the campaign."""


def _message(ja_subject: str, ja_body: str, en_subject: str, en_body: str) -> list[dict]:
    return [
        {
            "label": "A",
            "weight": 1,
            "content": {
                "ja": {"subject": ja_subject, "body": ja_body},
                "en": {"subject": en_subject, "body": en_body},
            },
        }
    ]


def _step(position: int, delay_minutes: int, name: str, variants: list[dict], **extra) -> dict:
    return {
        "position": position,
        "name": name,
        "delay_minutes": delay_minutes,
        "variants": variants,
        **extra,
    }


PRESETS: dict[str, Preset] = {
    "cart_abandonment": Preset(
        title=_("Cart abandonment"),
        description=_(
            "An hour after something is put in the cart, remind the customer of it — "
            "unless they bought in the meantime."
        ),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "add_to_cart", "unless": ["purchase", "checkout_completed"]},
        priority=70,
        experience_values=("convenience",),
        steps=[
            _step(
                1,
                60,
                "Reminder",
                _message(
                    "{{ customer.name }}様、カートに商品が残っています",
                    "{{ customer.name }}様\n\nお選びいただいた商品がカートに残っています。"
                    "在庫があるうちにご検討ください。\n\n{% product_block products %}",
                    "{{ customer.first_name }}, you left something in your cart",
                    "Hello {{ customer.first_name }},\n\nThe items you chose are still in "
                    "your cart while stock lasts.\n\n{% product_block products %}",
                ),
            )
        ],
    ),
    "browse_abandonment": Preset(
        title=_("Browse abandonment"),
        description=_(
            "Two hours after a product was viewed, show it again with similar items — "
            "unless it went into the cart or was bought."
        ),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "product_view", "unless": ["add_to_cart", "purchase"]},
        priority=40,
        experience_values=("convenience", "fun"),
        steps=[
            _step(
                1,
                120,
                "Still thinking?",
                _message(
                    "{{ customer.name }}様、気になる商品はございましたか",
                    "{{ customer.name }}様\n\n先ほどご覧いただいた商品です。\n\n"
                    "{% product_block products %}\n\nこちらもおすすめです。\n\n"
                    "{% product_block recommendations %}",
                    "{{ customer.first_name }}, still thinking it over?",
                    "Hello {{ customer.first_name }},\n\nHere is what you were looking at.\n\n"
                    "{% product_block products %}\n\nYou may also like:\n\n"
                    "{% product_block recommendations %}",
                ),
            )
        ],
    ),
    "back_in_stock": Preset(
        title=_("Back in stock"),
        description=_("A favourited product that was sold out is available again."),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "product_restocked", "unless": ["purchase"]},
        priority=60,
        experience_values=("convenience",),
        steps=[
            _step(
                1,
                0,
                "Back in stock",
                _message(
                    "お気に入りの商品が再入荷しました",
                    "{{ customer.name }}様\n\nお気に入りに登録いただいた商品が再入荷しました。\n\n"
                    "{% product_block products %}",
                    "Your favourite is back in stock",
                    "Hello {{ customer.first_name }},\n\nA product you favourited is "
                    "available again.\n\n{% product_block products %}",
                ),
            )
        ],
    ),
    "low_stock": Preset(
        title=_("Low stock"),
        description=_("A favourited product is running out: only a few are left."),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "product_low_stock", "unless": ["purchase"]},
        priority=55,
        experience_values=("convenience",),
        steps=[
            _step(
                1,
                0,
                "Only a few left",
                _message(
                    "お気に入りの商品が残りわずかです",
                    "{{ customer.name }}様\n\nお気に入りの商品の在庫が残りわずかとなりました。\n\n"
                    "{% product_block products %}",
                    "Only a few left of your favourite",
                    "Hello {{ customer.first_name }},\n\nA product you favourited is almost "
                    "sold out.\n\n{% product_block products %}",
                ),
            )
        ],
    ),
    "price_drop": Preset(
        title=_("Price drop"),
        description=_("A favourited product got cheaper."),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "price_dropped", "unless": ["purchase"]},
        priority=60,
        experience_values=("deal",),
        steps=[
            _step(
                1,
                0,
                "Price drop",
                _message(
                    "お気に入りの商品が値下がりしました",
                    "{{ customer.name }}様\n\nお気に入りの商品がお求めやすくなりました。\n\n"
                    "{% product_block products %}",
                    "Your favourite just got cheaper",
                    "Hello {{ customer.first_name }},\n\nA product you favourited now costs "
                    "less.\n\n{% product_block products %}",
                ),
            )
        ],
    ),
    "dormant_reactivation": Preset(
        title=_("Dormant customer reactivation"),
        description=_(
            "Once a customer has not ordered for 120 days, invite them back — once per "
            "dormancy (on entering the segment)."
        ),
        kind=Campaign.Kind.SEGMENT_ENTRY,
        channel=Campaign.Channel.EMAIL,
        trigger={},
        segment_rules=DORMANT_RULES,
        priority=45,
        experience_values=("deal", "empathy"),
        steps=[
            _step(
                1,
                0,
                "We miss you",
                _message(
                    "{{ customer.name }}様、お久しぶりです",
                    "{{ customer.name }}様\n\nしばらくお会いできておりませんが、"
                    "お元気でお過ごしでしょうか。新しい商品が入荷しています。\n\n"
                    "{% product_block recommendations %}",
                    "{{ customer.first_name }}, we miss you",
                    "Hello {{ customer.first_name }},\n\nIt has been a while. Here is what is "
                    "new since your last visit.\n\n{% product_block recommendations %}",
                ),
            )
        ],
    ),
    "f2_steps": Preset(
        title=_("Second purchase (F2) steps"),
        description=_(
            "After a first purchase: thanks and tips on day 3, ideas on day 14, an offer "
            "on day 30 — stopped as soon as the second order arrives."
        ),
        kind=Campaign.Kind.EVENT,
        channel=Campaign.Channel.EMAIL,
        trigger={"event_type": "purchase", "unless": ["purchase"]},
        audience_rules=FIRST_PURCHASE_RULES,
        priority=65,
        experience_values=("reassurance", "empathy"),
        steps=[
            _step(
                1,
                3 * DAY,
                "Day 3: thanks and tips",
                _message(
                    "ご購入ありがとうございました",
                    "{{ customer.name }}様\n\n先日はご購入いただきありがとうございました。"
                    "商品を長くお使いいただくためのヒントをお届けします。",
                    "Thank you for your order",
                    "Hello {{ customer.first_name }},\n\nThank you for your first order. "
                    "Here are a few tips to get the most out of it.",
                ),
                condition=FIRST_PURCHASE_RULES,
            ),
            _step(
                2,
                14 * DAY,
                "Day 14: ideas",
                _message(
                    "{{ customer.name }}様へのおすすめ",
                    "{{ customer.name }}様\n\nご購入の商品と相性のよいアイテムを選びました。\n\n"
                    "{% product_block recommendations %}",
                    "Picked for you, {{ customer.first_name }}",
                    "Hello {{ customer.first_name }},\n\nThese go well with what you bought."
                    "\n\n{% product_block recommendations %}",
                ),
                condition=FIRST_PURCHASE_RULES,
            ),
            _step(
                3,
                30 * DAY,
                "Day 30: offer",
                _message(
                    "2回目のお買い物にお使いいただける特典です",
                    "{{ customer.name }}様\n\n2回目のご購入にご利用いただける特典をご用意しました。"
                    "\n\n{% product_block recommendations %}",
                    "A little something for your next order",
                    "Hello {{ customer.first_name }},\n\nHere is a thank-you for your next "
                    "order.\n\n{% product_block recommendations %}",
                ),
                condition=FIRST_PURCHASE_RULES,
            ),
        ],
    ),
    "spouse_birthday": Preset(
        title=_("Spouse's birthday"),
        description=_(
            "Seven days before the spouse's birthday (in the customer's time zone), "
            "suggest a gift in time — every year."
        ),
        kind=Campaign.Kind.DATE,
        channel=Campaign.Channel.EMAIL,
        trigger={"date_kind": "spouse_birthday", "days_before": 7},
        priority=75,
        experience_values=("empathy", "convenience"),
        steps=[
            _step(
                1,
                0,
                "One week before",
                _message(
                    "奥様・旦那様のお誕生日まであと1週間です",
                    "{{ customer.name }}様\n\n大切な方のお誕生日まであと1週間となりました。"
                    "今からのご注文で当日のお届けに間に合います。\n\n"
                    "{% product_block recommendations %}",
                    "One week to your spouse's birthday",
                    "Hello {{ customer.first_name }},\n\nYour spouse's birthday is a week "
                    "away — order now and it arrives in time.\n\n"
                    "{% product_block recommendations %}",
                ),
            )
        ],
    ),
    "life_situation": Preset(
        title=_("Life situation: moving house"),
        description=_("When a move is detected (a new address), offer what a new home needs."),
        kind=Campaign.Kind.SITUATION,
        channel=Campaign.Channel.EMAIL,
        trigger={"situation": "moving"},
        priority=60,
        experience_values=("reassurance", "convenience"),
        steps=[
            _step(
                1,
                0,
                "New home",
                _message(
                    "新生活のご準備に",
                    "{{ customer.name }}様\n\nお引越しおめでとうございます。"
                    "新しい暮らしに役立つ商品をご案内します。\n\n"
                    "{% product_block recommendations %}",
                    "Settling into your new home",
                    "Hello {{ customer.first_name }},\n\nCongratulations on your move. "
                    "Here is what helps in a new home.\n\n{% product_block recommendations %}",
                ),
            )
        ],
    ),
}


def _ensure_platform_event_types(preset: Preset) -> None:
    """Register the event types the platform itself emits, so a trigger can name them
    before the first one has happened."""
    from experience.event_types import event_type_ensure
    from experience.situations import situation_event_type

    names = [preset.trigger.get("event_type"), *(preset.trigger.get("unless") or [])]
    for name in names:
        if name in PLATFORM_EVENTS:
            description, schema = PLATFORM_EVENTS[name]
            event_type_ensure(name, description=description, schema=schema)
    if preset.kind == Campaign.Kind.SITUATION:
        situation_event_type()


@transaction.atomic
def preset_create(*, key: str, by, owner_department, **overrides) -> Campaign:
    """A draft campaign made from preset ``key``; ``overrides`` are campaign_create fields.

    A segment-entry preset without a ``segment`` override gets a new dynamic segment of
    its rules, owned by the same department. Raises ``ValidationError`` naming ``preset``
    for an unknown key (and whatever ``campaign_create`` raises, nothing written).
    """
    from journeys.services import campaign_create

    preset = PRESETS.get(key)
    if preset is None:
        raise ValidationError(
            {
                "preset": [
                    _("Unknown preset “%(key)s” (use one of %(keys)s).")
                    % {"key": key, "keys": ", ".join(PRESETS)}
                ]
            }
        )
    _ensure_platform_event_types(preset)
    fields: dict[str, Any] = {
        "name": str(preset.title),
        "goal": str(preset.description),
        "channel": preset.channel,
        "kind": preset.kind,
        "trigger": dict(preset.trigger),
        "audience_rules": dict(preset.audience_rules),
        "priority": preset.priority,
        "experience_values": list(preset.experience_values),
        "steps": [dict(step) for step in preset.steps],
        "preset": key,
    }
    fields.update(overrides)
    if preset.segment_rules is not None and fields.get("segment") is None:
        from customers.segments import segment_create

        fields["segment"] = segment_create(
            name=str(_("%(title)s: audience")) % {"title": fields["name"]},
            rules=preset.segment_rules,
            owner_department=owner_department,
            by=by,
            description=str(preset.description),
        )
    return campaign_create(by=by, owner_department=owner_department, **fields)
