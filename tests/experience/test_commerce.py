"""Commerce state from events (carts, favourites) and recorded product changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.org.models import AuditLog
from experience.commerce import (
    abandoned_carts,
    carts_rebuild,
    favorited_products_restocked,
    favorites_sync,
    price_drops,
    product_changes,
    product_update,
    products_upsert,
)
from experience.models import Cart, CartItem, Favorite, Product, ProductChange
from experience.pipeline import process_stored_events
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    FavoriteFactory,
    OrderFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def ago(hours: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours)


def event(customer, name: str, hours_ago: float, **properties):
    return EventFactory(
        customer=customer,
        event_type=EventTypeFactory(name=name),
        occurred_at=ago(hours_ago),
        properties=properties,
    )


def lines(customer) -> dict[str, tuple[int, Decimal]]:
    return {
        item.product.sku: (item.quantity, item.unit_price)
        for item in CartItem.objects.filter(cart__customer=customer).select_related("product")
    }


@pytest.fixture
def rose():
    return ProductFactory(sku="ROSE", price=1500)


@pytest.fixture
def vase():
    return ProductFactory(sku="VASE", price=2000)


# --------------------------------------------------------------------------- carts


def test_cart_is_adds_minus_removes(rose, vase):
    hanako = CustomerFactory()
    event(hanako, "add_to_cart", 5, sku="ROSE", quantity=2, price=1400)
    event(hanako, "add_to_cart", 4, sku="VASE", quantity=1, price=2000)
    event(hanako, "add_to_cart", 3, sku="ROSE", quantity=1, price=1500)
    event(hanako, "remove_from_cart", 2, sku="VASE")

    carts_rebuild(customer_ids=[hanako.pk])

    cart = Cart.objects.get(customer=hanako)
    assert lines(hanako) == {"ROSE": (3, Decimal(1500))}
    assert cart.item_count == 3
    assert cart.value == 4500
    assert cart.updated_at == ago(2)
    assert cart.converted_at is None


def test_rebuilding_twice_and_out_of_order_arrival_give_the_same_cart(rose, vase):
    hanako = CustomerFactory()
    # Stored in another order than they happened: the remove arrives before the add.
    event(hanako, "remove_from_cart", 1, sku="ROSE")
    event(hanako, "add_to_cart", 3, sku="VASE")
    event(hanako, "add_to_cart", 2, sku="ROSE", quantity=2)

    carts_rebuild(customer_ids=[hanako.pk])
    first = (lines(hanako), list(CartItem.objects.values_list("pk", flat=True)))
    carts_rebuild(customer_ids=[hanako.pk])

    assert lines(hanako) == {"VASE": (1, Decimal(2000))}
    assert (lines(hanako), list(CartItem.objects.values_list("pk", flat=True))) == first
    assert Cart.objects.count() == 1


def test_purchase_empties_the_cart_and_later_adds_open_a_new_one(rose, vase):
    hanako, taro = CustomerFactory(), CustomerFactory()
    event(hanako, "add_to_cart", 5, sku="ROSE")
    event(hanako, "purchase", 4, order_number="W-1")
    event(taro, "add_to_cart", 5, sku="ROSE")
    event(taro, "checkout_completed", 4)
    event(taro, "add_to_cart", 3, sku="VASE")

    carts_rebuild(customer_ids=[hanako.pk, taro.pk])

    bought = Cart.objects.get(customer=hanako)
    assert lines(hanako) == {}
    assert (bought.item_count, bought.value) == (0, 0)
    assert bought.converted_at == ago(4)
    assert bought.updated_at == ago(4)
    reopened = Cart.objects.get(customer=taro)
    assert lines(taro) == {"VASE": (1, Decimal(2000))}
    assert reopened.converted_at is None


def test_a_purchase_arriving_later_empties_a_cart_built_before(rose):
    hanako = CustomerFactory()
    event(hanako, "add_to_cart", 5, sku="ROSE")
    carts_rebuild(customer_ids=[hanako.pk])
    assert lines(hanako) == {"ROSE": (1, Decimal(1500))}

    event(hanako, "purchase", 1)
    carts_rebuild(customer_ids=[hanako.pk])

    assert lines(hanako) == {}
    assert Cart.objects.get(customer=hanako).converted_at == ago(1)


def test_unknown_skus_and_bad_quantities_are_ignored(rose):
    hanako = CustomerFactory()
    event(hanako, "add_to_cart", 3, sku="NO-SUCH-SKU", quantity=1)
    event(hanako, "add_to_cart", 2, sku="ROSE", quantity=-1)
    event(hanako, "add_to_cart", 1, sku="ROSE", quantity=2.0)

    carts_rebuild(customer_ids=[hanako.pk])

    assert lines(hanako) == {"ROSE": (2, Decimal(1500))}


def test_customers_without_cart_events_get_no_cart_and_lose_a_stale_one(rose):
    hanako = CustomerFactory()
    Cart.objects.create(customer=hanako, updated_at=ago(1), item_count=1, value=1)

    carts_rebuild(customer_ids=[hanako.pk])

    assert not Cart.objects.exists()


def test_rebuild_reads_a_batch_in_a_fixed_number_of_queries(
    rose, vase, django_assert_max_num_queries
):
    customers = CustomerFactory.create_batch(20)
    for customer in customers:
        event(customer, "add_to_cart", 3, sku="ROSE")
        event(customer, "add_to_cart", 2, sku="VASE")
    EventTypeFactory(name="purchase")

    with django_assert_max_num_queries(12):
        carts_rebuild(customer_ids=[c.pk for c in customers])

    assert CartItem.objects.count() == 40


def test_abandoned_carts_are_open_idle_and_not_bought_since(rose):
    idle, fresh, bought, bought_in_store = CustomerFactory.create_batch(4)
    event(idle, "add_to_cart", 5, sku="ROSE")
    event(fresh, "add_to_cart", 0.5, sku="ROSE")
    event(bought, "add_to_cart", 5, sku="ROSE")
    event(bought, "purchase", 4)
    event(bought_in_store, "add_to_cart", 5, sku="ROSE")
    OrderFactory(customer=bought_in_store, ordered_at=ago(3))
    carts_rebuild(customer_ids=[idle.pk, fresh.pk, bought.pk, bought_in_store.pk])

    carts = abandoned_carts(idle_for=dt.timedelta(hours=1), now=NOW)

    assert [cart.customer_id for cart in carts] == [idle.pk]


def test_pipeline_rebuilds_carts_and_favourites_of_touched_customers(rose):
    hanako = CustomerFactory()
    event(hanako, "add_to_cart", 2, sku="ROSE")
    event(hanako, "favorite_added", 2, sku="ROSE")

    process_stored_events({"add_to_cart": [hanako.pk], "favorite_added": [hanako.pk]})

    assert lines(hanako) == {"ROSE": (1, Decimal(1500))}
    assert Favorite.objects.filter(customer=hanako, product=rose).exists()


# --------------------------------------------------------------------------- favourites


def test_favourites_follow_the_latest_event_per_product(rose, vase):
    hanako = CustomerFactory()
    event(hanako, "favorite_added", 5, sku="ROSE")
    event(hanako, "favorite_removed", 4, sku="ROSE")
    event(hanako, "favorite_added", 3, sku="VASE")
    event(hanako, "favorite_removed", 1, sku="NO-SUCH-SKU")

    favorites_sync(customer_ids=[hanako.pk])
    favorites_sync(customer_ids=[hanako.pk])

    assert list(Favorite.objects.values_list("product__sku", "created_at")) == [("VASE", ago(3))]

    event(hanako, "favorite_added", 0.5, sku="ROSE")
    event(hanako, "favorite_removed", 0.2, sku="VASE")
    favorites_sync(customer_ids=[hanako.pk])

    assert list(Favorite.objects.values_list("product__sku", flat=True)) == ["ROSE"]


def test_favourites_no_event_mentions_are_kept(rose, vase):
    hanako = CustomerFactory()
    FavoriteFactory(customer=hanako, product=vase)
    event(hanako, "favorite_added", 1, sku="ROSE")

    favorites_sync(customer_ids=[hanako.pk])

    assert sorted(Favorite.objects.values_list("product__sku", flat=True)) == ["ROSE", "VASE"]


# --------------------------------------------------------------------------- products


def test_product_update_records_price_and_stock_changes(rose, crm_editor):
    product_update(
        product=rose, source="dashboard", by=crm_editor, price=1200, stock=7, name="Rose"
    )

    rose.refresh_from_db()
    assert (rose.price, rose.stock, rose.name) == (1200, 7, "Rose")
    changes = {c.field: (c.old_value, c.new_value, c.source) for c in ProductChange.objects.all()}
    assert changes == {"price": (1500, 1200, "dashboard"), "stock": (0, 7, "dashboard")}
    assert AuditLog.objects.filter(action="product.update", actor=crm_editor).exists()


def test_product_update_without_a_change_records_nothing(rose):
    product_update(product=rose, source="api", price=1500, stock=0)

    assert not ProductChange.objects.exists()


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"price": -1}, "price"),
        ({"price": "12.5"}, "price"),
        ({"stock": "many"}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"name": "  "}, "name"),
        ({"sku": "NEW"}, "sku"),
    ],
)
def test_product_update_rejects_bad_values_naming_the_field(rose, fields, bad):
    with pytest.raises(ValidationError) as caught:
        product_update(product=rose, source="api", **{"price": 1000, **fields})

    assert bad in caught.value.message_dict
    rose.refresh_from_db()
    assert rose.price == 1500
    assert not ProductChange.objects.exists()


def test_products_upsert_creates_changes_and_records(rose, vase):
    counts = products_upsert(
        rows=[
            {"sku": "ROSE", "price": 1200, "stock": 3},
            {"sku": "VASE", "stock": 0},
            {"sku": "LILY", "name": "Lily", "category": "flowers", "price": 900, "stock": 10},
        ],
        source="store-nightly",
    )

    assert counts == {
        "products_created": 1,
        "products_updated": 1,
        "price_changes": 1,
        "stock_changes": 1,
    }
    assert Product.objects.get(sku="LILY").price == 900
    changes = list(product_changes().values_list("product__sku", "field", "old_value", "new_value"))
    assert sorted(changes) == [("ROSE", "price", 1500, 1200), ("ROSE", "stock", 0, 3)]
    assert products_upsert(rows=[{"sku": "ROSE", "price": 1200}], source="x")["price_changes"] == 0


def test_products_upsert_reports_bad_rows_and_writes_nothing(rose):
    with pytest.raises(ValidationError) as caught:
        products_upsert(
            rows=[{"sku": "ROSE", "price": 1000}, {"sku": "ROSE", "stock": -2}, {"sku": "NEW"}],
            source="store-nightly",
        )

    messages = caught.value.messages
    assert "row 2, stock: cannot be negative" in messages
    assert "row 3, name: needed for a new product" in messages
    assert Product.objects.get(sku="ROSE").price == 1500
    assert not Product.objects.filter(sku="NEW").exists()
    assert not ProductChange.objects.exists()


def test_back_in_stock_and_price_drop_audiences(rose, vase):
    lily = ProductFactory(sku="LILY", price=900, stock=5)
    fans = CustomerFactory.create_batch(2)
    for customer in fans:
        FavoriteFactory(customer=customer, product=rose)
        FavoriteFactory(customer=customer, product=vase)
    FavoriteFactory(customer=fans[0], product=lily)
    since = timezone.now() - dt.timedelta(minutes=1)
    product_update(product=rose, source="store", stock=4)  # 0 → 4: back in stock
    product_update(product=vase, source="store", price=1800)  # cheaper
    product_update(product=lily, source="store", price=700)
    product_update(product=lily, source="store", price=950)  # cheaper, then dearer again

    restocked = favorited_products_restocked(since=since)
    drops = price_drops(since=since)

    assert [(c.product.sku, c.old_value, c.new_value, c.customer_ids) for c in restocked] == [
        ("ROSE", 0, 4, sorted(c.pk for c in fans))
    ]
    assert [(c.product.sku, c.old_value, c.new_value) for c in drops] == [("VASE", 2000, 1800)]
    assert price_drops(since=timezone.now() + dt.timedelta(minutes=1)) == []
