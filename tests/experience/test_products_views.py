"""The catalogue pages, the product API's PATCH and the 360 panel "Cart and favourites"."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.models import Department
from config.org.tokens import api_token_create
from experience.models import Product, ProductChange
from tests.factories import (
    CartItemFactory,
    CustomerFactory,
    DepartmentFactory,
    FavoriteFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LIST_URL = reverse("experience:products")


def detail_url(product: Product) -> str:
    return reverse("experience:product", args=[product.pk])


def api_url(product: Product) -> str:
    return reverse("product-detail", args=[product.pk])


@pytest.fixture
def rose():
    return ProductFactory(sku="ROSE-01", name="Red rose", category="flowers", price=1500, stock=3)


# --------------------------------------------------------------------------- list


def test_anonymous_visitor_is_sent_to_login(client, rose):
    for url in (LIST_URL, detail_url(rose)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_list_shows_price_stock_badges_favourites_and_open_carts(client, crm_viewer, rose):
    ProductFactory(sku="VASE-01", name="Glass vase", category="vases", price=2000, stock=40)
    FavoriteFactory.create_batch(2, product=rose)
    CartItemFactory(product=rose)
    client.force_login(crm_viewer)

    html = client.get(LIST_URL).content.decode()

    assert "Red rose" in html
    assert "¥1,500" in html
    assert "Low stock" in html
    assert "Glass vase" in html
    row = html[html.index("ROSE-01") : html.index("</tr>", html.index("ROSE-01"))]
    assert row.count('<td class="number">2</td>') == 1
    assert '<td class="number">1</td>' in row


def test_list_searches_sku_or_name_and_filters_by_category(client, crm_viewer, rose):
    ProductFactory(sku="VASE-01", name="Glass vase", category="vases")
    ProductFactory(sku="POT-01", name="Rose pot", category="pots")
    client.force_login(crm_viewer)

    by_name = client.get(LIST_URL, {"q": "rose"}).content.decode()
    by_category = client.get(LIST_URL, {"category": "vases"}).content.decode()

    assert "Red rose" in by_name
    assert "Rose pot" in by_name
    assert "Glass vase" not in by_name
    assert "Glass vase" in by_category
    assert "Red rose" not in by_category


def test_htmx_gets_only_the_results_partial(client, crm_viewer, rose):
    client.force_login(crm_viewer)

    html = client.get(LIST_URL, {"q": "ROSE"}, HTTP_HX_REQUEST="true").content.decode()

    assert html.lstrip().startswith('<section id="product-results"')
    assert "<html" not in html


def test_list_pages_by_fifty(client, crm_viewer):
    ProductFactory.create_batch(51)
    client.force_login(crm_viewer)

    html = client.get(LIST_URL, {"page": 2}).content.decode()

    assert "Page 2 of 2" in html


def test_list_query_count_does_not_grow_with_products(
    client, crm_viewer, django_assert_num_queries
):
    for product in ProductFactory.create_batch(30):
        FavoriteFactory(product=product)
        CartItemFactory(product=product)
    client.force_login(crm_viewer)
    client.get(LIST_URL)

    # session, user, count, page of rows (with both counts), categories, header memberships
    with django_assert_num_queries(6):
        response = client.get(LIST_URL)

    assert len(re.findall(r'href="/experience/products/\d+/"', response.content.decode())) == 30


# --------------------------------------------------------------------------- detail


def test_detail_shows_history_and_masked_fans_to_a_viewer(client, crm_viewer, rose):
    ProductChange.objects.create(
        product=rose,
        field="price",
        old_value=1800,
        new_value=1500,
        changed_at=timezone.now(),
        source="store-nightly",
    )
    fan = CustomerFactory(family_name="山田", given_name="花子")
    FavoriteFactory(product=rose, customer=fan)
    client.force_login(crm_viewer)

    html = client.get(detail_url(rose)).content.decode()

    assert "store-nightly" in html
    assert "1,800" in html
    assert "1 customer" in html
    assert f"Customer #{fan.pk}" in html
    assert "花子" not in html
    assert '<form method="post"' not in html


def test_detail_shows_fan_names_with_personal_data_access(client, crm_pii_viewer, rose):
    FavoriteFactory(product=rose, customer=CustomerFactory(family_name="山田", given_name="花子"))
    client.force_login(crm_pii_viewer)

    assert "花子" in client.get(detail_url(rose)).content.decode()


def test_viewer_cannot_edit(client, crm_viewer, rose):
    client.force_login(crm_viewer)

    response = client.post(detail_url(rose), _form(rose, price=1))

    assert response.status_code == 403
    rose.refresh_from_db()
    assert rose.price == 1500
    assert not ProductChange.objects.exists()


def test_member_of_no_department_cannot_edit(client, rose):
    client.force_login(UserFactory())

    assert client.post(detail_url(rose), _form(rose, price=1)).status_code == 403


@pytest.mark.parametrize("who", ["crm_editor", "sales_editor"])
def test_an_editor_of_any_department_edits_and_the_change_is_recorded(client, request, who, rose):
    client.force_login(request.getfixturevalue(who))

    response = client.post(detail_url(rose), _form(rose, price=1200, stock=9))

    assert response.status_code == 302
    rose.refresh_from_db()
    assert (rose.price, rose.stock) == (1200, 9)
    assert sorted(ProductChange.objects.values_list("field", "source")) == [
        ("price", "dashboard"),
        ("stock", "dashboard"),
    ]
    assert "Saved." in client.get(response.url).content.decode()


def test_a_bad_value_is_refused_naming_the_field(client, crm_editor, rose):
    client.force_login(crm_editor)

    response = client.post(detail_url(rose), _form(rose, price=-5))

    assert response.status_code == 400
    assert "cannot be negative" in response.content.decode()
    assert not ProductChange.objects.exists()


def test_missing_product_is_404(client, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(reverse("experience:product", args=[999999])).status_code == 404


def _form(product: Product, **changes) -> dict:
    data = {
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "stock": product.stock,
        "is_active": "on" if product.is_active else "",
    }
    return {**data, **changes}


# --------------------------------------------------------------------------- API


def test_api_patch_by_an_editor_records_a_change(api, sales_editor, rose):
    api.force_authenticate(sales_editor)

    response = api.patch(api_url(rose), {"price": 1300}, format="json")

    assert response.status_code == 200
    assert response.json()["price"] == "1300"
    change = ProductChange.objects.get()
    assert (change.field, change.old_value, change.new_value, change.source) == (
        "price",
        1500,
        1300,
        "api",
    )


def test_api_patch_by_a_viewer_is_forbidden(api, crm_viewer, rose):
    api.force_authenticate(crm_viewer)

    assert api.patch(api_url(rose), {"price": 1300}, format="json").status_code == 403
    assert api.get(api_url(rose)).status_code == 200
    assert not ProductChange.objects.exists()


def test_api_anonymous_is_refused(api, rose):
    assert api.get(api_url(rose)).status_code in (401, 403)
    assert api.patch(api_url(rose), {"price": 1}, format="json").status_code in (401, 403)


def test_api_patch_rejects_bad_values_naming_the_field(api, crm_editor, rose):
    api.force_authenticate(crm_editor)

    response = api.patch(api_url(rose), {"stock": -3}, format="json")

    assert response.status_code == 400
    assert "stock" in response.json()


def test_api_patch_with_an_integration_token_records_its_source(api, rose):
    store = DepartmentFactory(slug="stores", kind=Department.Kind.SALES_PLANNING)
    _token, secret = api_token_create(
        name="Store system", department=store, source="store-system", by=None
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = api.patch(api_url(rose), {"stock": 12}, format="json")

    assert response.status_code == 200
    assert ProductChange.objects.get().source == "store-system"


def test_api_filters_by_sku(api, crm_viewer, rose):
    ProductFactory(sku="VASE-01")
    api.force_authenticate(crm_viewer)

    rows = api.get(reverse("product-list"), {"sku": "ROSE-01"}).json()["results"]

    assert [row["sku"] for row in rows] == ["ROSE-01"]


# --------------------------------------------------------------------------- 360 panel


def test_profile_panel_shows_cart_items_abandoned_hint_and_favourites(client, crm_viewer, rose):
    hanako = CustomerFactory()
    item = CartItemFactory(
        cart__customer=hanako,
        cart__updated_at=timezone.now() - dt.timedelta(hours=5),
        product=rose,
        quantity=2,
        unit_price=1500,
    )
    item.cart.item_count, item.cart.value = 2, 3000
    item.cart.save()
    FavoriteFactory(customer=hanako, product=ProductFactory(name="Glass vase"))
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:detail", args=[hanako.pk])).content.decode()

    panel = html[html.index('data-testid="cart-panel"') :]
    assert "Red rose" in panel
    assert "¥3,000" in panel
    assert "Abandoned for 5 hours" in panel
    assert "Glass vase" in panel


# --------------------------------------------------------------------------- admin


def test_admin_saves_products_through_the_service_so_changes_are_recorded(client, superuser, rose):
    client.force_login(superuser)
    url = reverse("admin:experience_product_change", args=[rose.pk])

    response = client.post(url, {"sku": rose.sku, **_form(rose, price=990)})
    refused = client.post(url, {"sku": rose.sku, **_form(rose, stock=-1)})

    assert response.status_code == 302
    assert list(ProductChange.objects.values_list("field", "new_value", "source")) == [
        ("price", 990, "admin")
    ]
    assert refused.status_code == 200
    assert "cannot be negative" in refused.content.decode()
