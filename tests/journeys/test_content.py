"""Message content: personalisation, language choice, tracked HTML, validation, tests sends."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from config.org.models import AuditLog
from experience.models import OrderLine
from journeys import feedback
from journeys.content import (
    ContentError,
    choose_language,
    preview_message,
    render_message,
    send_test,
    validate_content,
)
from journeys.models import Campaign, Delivery
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
    ProductFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

SITE = "https://circle.example.com"


def make_variant(content, *, channel=Campaign.Channel.EMAIL, department=None, **campaign):
    extra = {"owner_department": department} if department else {}
    step = CampaignStepFactory(campaign=CampaignFactory(channel=channel, **extra, **campaign))
    return VariantFactory(step=step, content=content)


@pytest.fixture(autouse=True)
def site():
    with override_settings(
        SITE_URL=SITE, COMPANY_NAME="花屋サークル", COMPANY_ADDRESS="東京都千代田区1-1"
    ):
        yield


def test_names_follow_the_readers_language():
    variant = make_variant(
        {
            "ja": {"subject": "{{ customer.name }}様", "body": "{{ customer.last_name }}様"},
            "en": {"subject": "Dear {{ customer.name }}", "body": "Hi {{ customer.first_name }}"},
        }
    )
    japanese = CustomerFactory(family_name="山田", given_name="花子", language="ja")
    english = CustomerFactory(family_name="Smith", given_name="Anna", language="en")

    ja = render_message(variant=variant, customer=japanese)
    en = render_message(variant=variant, customer=english)

    assert (ja.language, ja.subject) == ("ja", "山田 花子様")
    assert ja.body_text.startswith("山田様")
    assert (en.language, en.subject) == ("en", "Dear Anna Smith")
    assert en.body_text.startswith("Hi Anna")


@override_settings(LANGUAGE_CODE="ja")
def test_language_falls_back_to_the_company_language_then_the_first():
    assert choose_language({"ja": {}, "en": {}}, "fr") == "ja"
    assert choose_language({"en": {}}, "ja") == "en"
    assert choose_language({}, "ja") is None


def test_templates_see_only_the_context_built_for_them():
    variant = make_variant(
        {
            "en": {
                "subject": "x",
                "body": "[{{ customer.email }}][{{ customer.pk }}][{{ settings }}]",
            }
        }
    )
    customer = CustomerFactory(language="en")

    assert render_message(variant=variant, customer=customer).body_text.startswith("[][][]")


@pytest.mark.parametrize("tag", ["{% debug %}", "{% load i18n %}", '{% include "base.html" %}'])
def test_unsafe_tags_are_refused_naming_the_field(tag):
    with pytest.raises(ValidationError) as caught:
        validate_content({"en": {"subject": "Hi", "body": f"line one\n{tag}"}}, channel="email")

    messages = caught.value.message_dict["content.en.body"]
    assert "Line 2" in messages[0]


def test_validation_names_each_field():
    content = {
        "ja": {"subject": "", "body": "{% if %}"},
        "en": {"subject": "{{ customer.name|nosuchfilter }}", "body": ""},
        "fr": {"subject": "s", "body": "b"},
    }
    with pytest.raises(ValidationError) as caught:
        validate_content(content, channel="email")

    errors = caught.value.message_dict
    assert set(errors) == {
        "content.ja.subject",
        "content.ja.body",
        "content.en.subject",
        "content.en.body",
        "content.fr",
    }
    assert "Line 1" in errors["content.ja.body"][0]


def test_subject_is_optional_outside_email_and_sms_has_a_length_limit():
    validate_content({"ja": {"body": "こんにちは"}}, channel="line")
    with pytest.raises(ValidationError) as caught:
        validate_content({"ja": {"body": "あ" * 671}}, channel="sms")
    assert "670" in caught.value.message_dict["content.ja.body"][0]


def test_render_error_names_variant_and_field():
    variant = make_variant({"en": {"subject": "ok", "body": "{% if %}"}})
    with pytest.raises(ContentError, match=r"Variant A, content\.en\.body"):
        render_message(variant=variant, customer=CustomerFactory(language="en"))


def test_recommendations_are_best_sellers_not_yet_bought_in_one_query(django_assert_num_queries):
    customer = CustomerFactory(language="en")
    bought, popular, other, out_of_stock = (
        ProductFactory(name="Bought", stock=5),
        ProductFactory(name="Popular", stock=5),
        ProductFactory(name="Other", stock=5),
        ProductFactory(name="Gone", stock=0),
    )
    own = OrderFactory(customer=customer)
    OrderLine.objects.create(order=own, product=bought, unit_price=1)
    for product, count in ((popular, 3), (other, 1), (bought, 5), (out_of_stock, 9)):
        for _ in range(count):
            OrderLine.objects.create(order=OrderFactory(), product=product, unit_price=1)
    variant = make_variant(
        {"en": {"subject": "s", "body": "{% for p in recommendations %}{{ p.name }};{% endfor %}"}}
    )
    variant = type(variant).objects.select_related("step__campaign").get(pk=variant.pk)

    with django_assert_num_queries(1):
        rendered = render_message(variant=variant, customer=customer)

    assert rendered.body_text.startswith("Popular;Other;")


def test_product_block_lists_the_enrolment_products_in_order():
    first = ProductFactory(name="Roses", price=3000)
    second = ProductFactory(name="<Tulips>", price=1200)
    variant = make_variant(
        {"en": {"subject": "s", "body": "Still thinking?\n{% product_block products %}"}}
    )
    rendered = render_message(
        variant=variant,
        customer=CustomerFactory(language="en"),
        context={"product_ids": [second.pk, first.pk]},
    )

    assert "・<Tulips> — ¥1,200\n・Roses — ¥3,000" in rendered.body_text
    assert "&lt;Tulips&gt;" in rendered.body_html
    assert "<Tulips>" not in rendered.body_html


def test_every_marketing_email_carries_sender_identity_and_unsubscribe():
    variant = make_variant({"ja": {"subject": "s", "body": "本文"}})
    delivery = DeliveryFactory(
        step=variant.step, variant=variant, customer=CustomerFactory(), status="sending"
    )
    rendered = render_message(variant=variant, customer=delivery.customer, delivery=delivery)

    footer = rendered.body_text.split("本文", 1)[1]
    assert "花屋サークル" in footer
    assert "東京都千代田区1-1" in footer
    assert feedback.unsubscribe_url(delivery.pk) in footer
    assert f'href="{feedback.unsubscribe_url(delivery.pk)}"' in rendered.body_html


def test_html_links_are_tracked_and_an_open_pixel_added_only_with_a_delivery():
    variant = make_variant(
        {"en": {"subject": "s", "body": "See https://shop.example.com/sale?a=1&b=2.\n\nBye"}}
    )
    customer = CustomerFactory(language="en")
    delivery = DeliveryFactory(step=variant.step, variant=variant, customer=customer)

    tracked = render_message(variant=variant, customer=customer, delivery=delivery)
    preview = render_message(variant=variant, customer=customer)

    click = feedback.click_url(delivery.pk, "https://shop.example.com/sale?a=1&b=2")
    assert f'href="{click}"' in tracked.body_html
    assert feedback.open_url(delivery.pk) in tracked.body_html
    assert "https://shop.example.com/sale?a=1&b=2." in tracked.body_text
    assert "/t/" not in preview.body_html
    assert 'href="https://shop.example.com/sale?a=1&amp;b=2"' in preview.body_html
    assert "<p>Bye" in preview.body_html


def test_preview_checks_the_variant_belongs_to_the_step():
    variant = make_variant({"en": {"subject": "s", "body": "b"}})
    other = make_variant({"en": {"subject": "s", "body": "b"}})
    customer = CustomerFactory(language="en")

    rendered = preview_message(
        campaign=variant.step.campaign, step=variant.step, variant=variant, customer=customer
    )
    assert rendered.subject == "s"
    with pytest.raises(ValidationError):
        preview_message(
            campaign=variant.step.campaign, step=variant.step, variant=other, customer=customer
        )


def test_send_test_emails_the_staff_member_without_a_delivery(smtp_server, crm, crm_editor):
    crm_editor.email = "editor@circle.example.com"
    crm_editor.save()
    variant = make_variant(
        {"ja": {"subject": "{{ customer.name }}様へのご案内", "body": "こんにちは"}},
        department=crm,
    )
    customer = CustomerFactory(family_name="山田", given_name="花子")

    send_test(
        campaign=variant.step.campaign,
        variant=variant,
        to_email="editor@circle.example.com",
        customer=customer,
        by=crm_editor,
    )

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["editor@circle.example.com"]
    assert str(received.message["Subject"]) == "[TEST] 山田 花子様へのご案内"
    assert not Delivery.objects.exists()
    assert AuditLog.objects.filter(action="campaign.test_send", actor=crm_editor).count() == 1


def test_send_test_refuses_other_departments_and_outside_addresses(
    smtp_server, crm, crm_editor, sales_editor
):
    crm_editor.email = "editor@circle.example.com"
    crm_editor.save()
    variant = make_variant({"en": {"subject": "s", "body": "b"}}, department=crm)
    args = {"campaign": variant.step.campaign, "variant": variant, "customer": CustomerFactory()}

    with pytest.raises(PermissionDenied):
        send_test(to_email="editor@circle.example.com", by=sales_editor, **args)
    with pytest.raises(ValidationError) as caught:
        send_test(to_email="someone@gmail.example", by=crm_editor, **args)
    assert "to_email" in caught.value.message_dict
    assert smtp_server.messages == []


def test_send_test_of_an_sms_shows_what_would_be_sent(smtp_server, crm, crm_editor):
    crm_editor.email = "editor@circle.example.com"
    crm_editor.save()
    variant = make_variant(
        {"en": {"body": "Sale today, {{ customer.first_name }}"}},
        channel=Campaign.Channel.SMS,
        department=crm,
        name="Flash sale",
    )
    send_test(
        campaign=variant.step.campaign,
        variant=variant,
        to_email="editor@circle.example.com",
        customer=CustomerFactory(given_name="Anna", language="en"),
        by=crm_editor,
    )

    [received] = smtp_server.messages
    assert str(received.message["Subject"]) == "[TEST] Flash sale (SMS)"
    assert "Sale today, Anna" in received.text
