"""The demo company's reference data as plain constants: departments, stores, touchpoints,
event types, products, attributes, segments, personas, the journey map, campaigns, and the
names, places and phrases its customers are made of, so what the company *is* can be read
and changed without reading how it is written (``seed``) or how its customers behave
(``simulate``).
"""

from __future__ import annotations

from typing import NamedTuple

from config.org.models import Department
from customers.models import AttributeDefinition, Segment
from journeys.models import Campaign

# --------------------------------------------------------------------------------------------
# The organisation and its catalogue
# --------------------------------------------------------------------------------------------

# slug, name, kind, description
DEPARTMENTS: list[tuple[str, str, str, str]] = [
    (
        "promotion",
        "Advertising & promotion",
        Department.Kind.ADVERTISING,
        "広告・販促部: ads, catalogues, workshops and seasonal promotions.",
    ),
    (
        "crm",
        "CRM & digital marketing",
        Department.Kind.CRM_DIGITAL,
        "CRM・デジタルマーケティング部: web shop, app, email, LINE and the customer data.",
    ),
    (
        "sales",
        "Sales planning",
        Department.Kind.SALES_PLANNING,
        "営業企画部: the six stores, the customer centre and corporate sales.",
    ),
    (
        "analytics",
        "Analytics",
        Department.Kind.ANALYTICS,
        "分析チーム: segments, NPS and reporting for every team.",
    ),
]


STORES: dict[str, str] = {
    "store-ginza": "銀座本店 (Ginza flagship)",
    "store-shibuya": "渋谷店 (Shibuya)",
    "store-yokohama": "横浜店 (Yokohama)",
    "store-umeda": "梅田店 (Osaka Umeda)",
    "store-sakae": "栄店 (Nagoya Sakae)",
    "store-tenjin": "天神店 (Fukuoka Tenjin)",
}

# code, name, channel, kind, owner department, experience values, description
TOUCHPOINTS: list[tuple[str, str, str, str, str, tuple[str, ...], str]] = [
    (
        "web-shop",
        "花守オンラインショップ (Online shop)",
        "web",
        "online",
        "crm",
        ("convenience", "deal"),
        "Next-day delivery nationwide; message cards and gift wrapping.",
    ),
    (
        "app",
        "花守アプリ (Hanamori app)",
        "app",
        "app",
        "crm",
        ("convenience", "fun"),
        "Ordering, member card, points and flower-care tips.",
    ),
    (
        "email-newsletter",
        "メールマガジン (Email newsletter)",
        "email",
        "online",
        "crm",
        ("deal", "empathy"),
        "Weekly newsletter and campaign emails.",
    ),
    (
        "line-official",
        "LINE公式アカウント (LINE official account)",
        "line",
        "online",
        "crm",
        ("convenience", "empathy"),
        "Coupons, reminders before important dates, chat support.",
    ),
    (
        "app-push",
        "アプリ通知 (App push)",
        "push",
        "app",
        "crm",
        ("convenience",),
        "Order status and back-in-stock notifications.",
    ),
    (
        "sms-notice",
        "SMS配送通知 (SMS delivery notice)",
        "sms",
        "online",
        "crm",
        ("reassurance",),
        "Delivery-time notices for gift orders.",
    ),
    (
        "ads-search",
        "検索広告 (Search ads)",
        "ads",
        "online",
        "promotion",
        ("deal",),
        "Search ads for gift keywords.",
    ),
    (
        "ads-social",
        "Instagram広告 (Instagram ads)",
        "ads",
        "online",
        "promotion",
        ("fun", "empathy"),
        "Seasonal visual ads and reels.",
    ),
    *[
        (code, name, "store", "offline", "sales", ("reassurance", "empathy"), "Flower shop.")
        for code, name in STORES.items()
    ],
    (
        "call-centre",
        "お客様センター (Customer centre)",
        "call_center",
        "offline",
        "sales",
        ("reassurance",),
        "Phone orders and enquiries, 9:00–20:00.",
    ),
    (
        "sales-visit",
        "法人営業 (Corporate sales visits)",
        "sales_visit",
        "offline",
        "sales",
        ("reassurance",),
        "Orchids and opening gifts for companies.",
    ),
    (
        "flower-workshop",
        "フラワーアレンジ教室 (Flower workshop)",
        "event",
        "offline",
        "promotion",
        ("fun", "empathy"),
        "Monthly arrangement workshops in the stores.",
    ),
    (
        "dm-catalogue",
        "季節のカタログ (Seasonal catalogue)",
        "dm",
        "offline",
        "promotion",
        ("deal",),
        "Printed catalogue mailed four times a year.",
    ),
]

# name, description, owner department, property schema
EVENT_TYPES: list[tuple[str, str, str, dict[str, str]]] = [
    ("page_view", "A page of the web shop was viewed.", "crm", {"path": "string"}),
    ("ad_click", "An ad was clicked.", "promotion", {"medium": "string"}),
    ("search", "A product search.", "crm", {"query": "string"}),
    ("product_view", "A product page was viewed.", "crm", {"sku": "string", "price": "number"}),
    ("favorite_added", "A product was marked as favourite.", "crm", {"sku": "string"}),
    (
        "add_to_cart",
        "A product was put in the cart.",
        "crm",
        {"sku": "string", "price": "number", "quantity": "number"},
    ),
    ("checkout_started", "Checkout was opened.", "crm", {"cart_value": "number"}),
    (
        "purchase",
        "An order was placed (any channel).",
        "crm",
        {"order_number": "string", "total": "number", "campaign_id": "number"},
    ),
    ("app_open", "The app was opened.", "crm", {"os": "string"}),
    ("push_opened", "A push notification was opened.", "crm", {"topic": "string"}),
    ("email_opened", "A campaign email was opened.", "crm", {"campaign_id": "number"}),
    (
        "email_clicked",
        "A link in a campaign email was clicked.",
        "crm",
        {"campaign_id": "number", "url": "string"},
    ),
    ("line_clicked", "A LINE message link was clicked.", "crm", {"campaign_id": "number"}),
    ("store_visit", "A member card was scanned in a store.", "sales", {"store": "string"}),
    ("call", "A call with the customer centre.", "sales", {"reason": "string"}),
    ("meeting", "A corporate sales meeting.", "sales", {"purpose": "string"}),
    ("event_attended", "Attended a workshop.", "promotion", {"event": "string"}),
    (
        "review_posted",
        "A product review was posted.",
        "crm",
        {"sku": "string", "rating": "number"},
    ),
    ("referral", "A friend was invited with a referral code.", "promotion", {"code": "string"}),
]

# prefix, Japanese category, English category, [(Japanese, English, price)], sizes
PRODUCT_LINES: list[tuple[str, str, str, list[tuple[str, str, int]], tuple[str, ...]]] = [
    (
        "BQ",
        "花束",
        "Bouquets",
        [
            ("季節の花束", "Seasonal bouquet", 3300),
            ("バラの花束", "Rose bouquet", 4400),
            ("ひまわりの花束", "Sunflower bouquet", 3850),
            ("かすみ草の花束", "Baby's-breath bouquet", 3300),
            ("チューリップの花束", "Tulip bouquet", 3520),
            ("ガーベラの花束", "Gerbera bouquet", 3080),
            ("ユリの花束", "Lily bouquet", 4950),
            ("白のスタイリッシュブーケ", "White stylish bouquet", 5500),
            ("誕生日ブーケ", "Birthday bouquet", 4400),
            ("お祝いブーケ", "Celebration bouquet", 5500),
            ("カーネーションの花束", "Carnation bouquet", 3850),
            ("ドライミックスブーケ", "Dried mixed bouquet", 3960),
        ],
        ("S", "M", "L"),
    ),
    (
        "AR",
        "アレンジメント",
        "Arrangements",
        [
            ("季節のアレンジ", "Seasonal arrangement", 3850),
            ("バスケットアレンジ", "Basket arrangement", 4950),
            ("ボックスフラワー", "Flower box", 5500),
            ("お供えアレンジ", "Memorial arrangement", 5500),
            ("開店祝いアレンジ", "Shop-opening arrangement", 11000),
            ("ハートアレンジ", "Heart arrangement", 4400),
            ("和風アレンジ", "Japanese-style arrangement", 5280),
            ("テーブルアレンジ", "Table arrangement", 3300),
            ("スタンド花", "Standing flower display", 16500),
            ("フルーツ＆フラワー", "Fruit and flowers", 7700),
        ],
        ("S", "M", "L"),
    ),
    (
        "PL",
        "鉢植え・観葉植物",
        "Plants",
        [
            ("モンステラ", "Monstera", 4950),
            ("パキラ", "Pachira", 3850),
            ("サンスベリア", "Sansevieria", 4400),
            ("ガジュマル", "Ficus microcarpa", 3300),
            ("オリーブの木", "Olive tree", 6600),
            ("ポトス", "Pothos", 2750),
            ("シクラメン", "Cyclamen", 3520),
            ("アジサイ", "Hydrangea", 4950),
            ("ポインセチア", "Poinsettia", 3300),
            ("ミニ盆栽", "Mini bonsai", 5500),
            ("多肉植物の寄せ植え", "Succulent planter", 3080),
            ("エバーフレッシュ", "Everfresh", 6050),
            ("ゴムの木", "Rubber plant", 4400),
            ("胡蝶蘭ミディ", "Mini phalaenopsis", 5500),
        ],
        ("5号", "7号"),
    ),
    (
        "OR",
        "胡蝶蘭",
        "Orchids",
        [
            ("白の胡蝶蘭", "White phalaenopsis", 22000),
            ("ピンクの胡蝶蘭", "Pink phalaenopsis", 24200),
            ("大輪胡蝶蘭", "Large-flowered phalaenopsis", 33000),
            ("ミディ胡蝶蘭", "Midi phalaenopsis", 16500),
        ],
        ("3本立", "5本立", "7本立"),
    ),
    (
        "PR",
        "プリザーブド・ドライ",
        "Preserved & dried",
        [
            ("プリザーブドローズ", "Preserved rose", 4400),
            ("ハーバリウム", "Herbarium bottle", 3300),
            ("ドライフラワースワッグ", "Dried-flower swag", 3850),
            ("プリザーブドボックス", "Preserved flower box", 6600),
            ("フラワーフレーム", "Flower frame", 5500),
            ("ドライリース", "Dried wreath", 4950),
            ("ソープフラワー", "Soap flowers", 2970),
            ("ガラスドーム", "Glass-dome rose", 7700),
            ("ミニブーケチャーム", "Mini bouquet charm", 1980),
            ("アロマフラワー", "Aroma flowers", 3300),
        ],
        ("S", "L"),
    ),
    (
        "SW",
        "ギフトスイーツ",
        "Gift sweets",
        [
            ("焼き菓子セット", "Baked sweets set", 2700),
            ("花のマカロン", "Flower macarons", 2160),
            ("和三盆", "Wasanbon sugar sweets", 1944),
            ("紅茶ギフト", "Tea gift", 3240),
            ("はちみつギフト", "Honey gift", 3780),
            ("チョコレート詰め合わせ", "Chocolate assortment", 3240),
            ("バウムクーヘン", "Baumkuchen", 2592),
            ("フルーツゼリー", "Fruit jelly", 3024),
            ("花のクッキー缶", "Flower cookie tin", 2376),
            ("スパークリングジュース", "Sparkling juice", 2200),
            ("ワインとお花", "Wine and flowers", 6600),
            ("バスギフト", "Bath gift", 2970),
        ],
        ("単品", "花束セット"),
    ),
    (
        "GD",
        "花器・雑貨",
        "Vases & goods",
        [
            ("ガラスの花瓶", "Glass vase", 2750),
            ("陶器の花器", "Ceramic vase", 3850),
            ("一輪挿し", "Bud vase", 1650),
            ("メッセージカード", "Message card", 220),
            ("ギフトラッピング", "Gift wrapping", 330),
            ("延命剤", "Flower food", 330),
            ("じょうろ", "Watering can", 1980),
            ("園芸はさみ", "Garden scissors", 2420),
            ("鉢カバー", "Pot cover", 1650),
            ("フラワーベース木製", "Wooden flower stand", 3300),
            ("花のカレンダー", "Flower calendar", 1320),
            ("アロマキャンドル", "Aroma candle", 2200),
            ("ポストカードセット", "Postcard set", 660),
            ("エコバッグ", "Tote bag", 1100),
        ],
        ("",),
    ),
    (
        "SB",
        "定期便",
        "Subscriptions",
        [
            ("お花の定期便", "Flower subscription", 2200),
            ("グリーンの定期便", "Green subscription", 2750),
            ("季節の枝もの定期便", "Seasonal branch subscription", 3300),
        ],
        ("隔週", "毎週", "月1回"),
    ),
    (
        "SE",
        "季節限定",
        "Seasonal",
        [
            ("母の日カーネーション", "Mother's Day carnations", 4400),
            ("父の日ひまわり", "Father's Day sunflowers", 4400),
            ("敬老の日ギフト", "Respect-for-the-Aged Day gift", 4950),
            ("クリスマスリース", "Christmas wreath", 5500),
            ("お正月飾り", "New Year arrangement", 4950),
            ("バレンタインローズ", "Valentine roses", 4400),
            ("卒業式の花束", "Graduation bouquet", 3300),
            ("お盆のお供え花", "Obon offering flowers", 4400),
        ],
        ("S", "M", "L"),
    ),
]
# Size index → price relative to the first size.
SIZE_PRICE_FACTOR = {0: 1.0, 1: 1.6, 2: 2.4}
# Product lines bought as gifts; a person's favourite line is one of them.
GIFT_CATEGORIES = ("BQ", "AR", "PR", "SW", "SE")

# key, label, type, choices, purpose, owner department
ATTRIBUTES: list[tuple[str, str, str, list[str], str, str]] = [
    (
        "member_rank",
        "会員ランク (Member rank)",
        AttributeDefinition.Type.CHOICE,
        ["regular", "silver", "gold", "platinum"],
        "Benefits and service level; from completed revenue of the last 12 months.",
        "crm",
    ),
    (
        "preferred_store",
        "よく使う店舗 (Preferred store)",
        AttributeDefinition.Type.CHOICE,
        list(STORES),
        "Store staff tasks and local invitations.",
        "sales",
    ),
    (
        "gift_purpose",
        "主な購入目的 (Main purpose)",
        AttributeDefinition.Type.CHOICE,
        ["self", "family", "partner", "friends", "business"],
        "Self-declared at sign-up; tailors gift suggestions.",
        "crm",
    ),
    (
        "corporate_account",
        "法人アカウント (Corporate account)",
        AttributeDefinition.Type.BOOLEAN,
        [],
        "Invoices and corporate sales follow-up.",
        "sales",
    ),
]


# --------------------------------------------------------------------------------------------
# Marketing: segments, the survey, personas, the journey map and campaigns
# --------------------------------------------------------------------------------------------


def _rule(rule_type: str, /, **params) -> dict:
    return {"type": rule_type, **params}


# key → Segment fields plus the owning department; CRM's and analytics' rule trees, and the
# static list of workshop attendees that the simulation fills.
SEGMENTS: dict[str, dict] = {
    "cart": {
        "owner": "crm",
        "name": "カゴ落ち（7日以内） Cart abandoners, last 7 days",
        "description": "Added to cart in the last 7 days without buying; email consent granted.",
        "rules": {
            "op": "and",
            "rules": [
                _rule("event", event="add_to_cart", within_days=7, min_count=1),
                {"op": "not", "rules": [_rule("event", event="purchase", within_days=7)]},
                _rule("consent", channel="email", status="granted"),
            ],
        },
    },
    "app_first": {
        "owner": "crm",
        "name": "初回アプリ購入者 First-time app buyers",
        "description": "Exactly one order, placed in the app.",
        "rules": {
            "op": "and",
            "rules": [
                _rule("metric", field="order_count", op="eq", value=1),
                _rule("order", touchpoint="app", within_days=365),
            ],
        },
    },
    "gift_regular": {
        "owner": "crm",
        "name": "記念日ギフトの常連 Gift-giving regulars",
        "description": "Three or more orders and an anniversary or spouse's birthday on file.",
        "rules": {
            "op": "and",
            "rules": [
                _rule("metric", field="order_count", op="gte", value=3),
                {
                    "op": "or",
                    "rules": [
                        _rule("important_date", kind="anniversary"),
                        _rule("important_date", kind="spouse_birthday"),
                    ],
                },
            ],
        },
    },
    "dormant": {
        "owner": "analytics",
        "name": "休眠顧客 Dormant customers",
        "description": "No order for 180 days after buying at least once.",
        "rules": {
            "op": "and",
            "rules": [
                _rule("metric", field="order_count", op="gte", value=1),
                _rule("metric", field="last_order_at", op="older_than_days", value=180),
            ],
        },
    },
    "promoters": {
        "owner": "analytics",
        "name": "推奨者 NPS promoters",
        "description": "Last NPS answer 9 or 10.",
        "rules": _rule("metric", field="last_nps", op="gte", value=9),
    },
    "high_value": {
        "owner": "analytics",
        "name": "優良顧客 High-value customers",
        "description": "¥50,000 or more in completed orders.",
        "rules": _rule("metric", field="revenue_total", op="gte", value=50000),
    },
    "newsletter": {
        "owner": "crm",
        "name": "メルマガ購読者 Newsletter subscribers",
        "description": "Email consent granted.",
        "rules": _rule("consent", channel="email", status="granted"),
    },
    "workshop": {
        "owner": "promotion",
        "name": "フラワー教室参加者 Workshop attendees",
        "description": "Snapshot of everyone who attended a flower workshop.",
        "kind": Segment.Kind.STATIC,
    },
}

SURVEY = {
    "name": "購入後NPS調査 (Post-purchase NPS)",
    "question": "花守を友人や家族にすすめる可能性はどのくらいありますか？ "
    "(How likely are you to recommend Hanamori to a friend or family member?)",
}

# key → Persona fields plus its segment's key and experience-value codes; CRM owns both.
PERSONAS: dict[str, dict] = {
    "app_buyer": {
        "name": "初めてのアプリ購入者 First-time app buyer",
        "initials": "FA",
        "color": "#2a6f97",
        "profile": "28歳・会社員・東京都在住。自分用の花をアプリで初めて購入。 "
        "28, office worker in Tokyo; bought flowers for herself in the app for the first time.",
        "goals": "部屋に季節の花を飾りたい / Fresh seasonal flowers at home",
        "pains": "お手入れ方法がわからない / Unsure how to care for flowers",
        "situations": "引越し直後、新生活 / Just moved, new life",
        "values": "便利・楽しい / Convenience, fun",
        "preferred_channels": "App, push, Instagram",
        "quotes": "「アプリだと2分で頼めるのがいい」(渋谷店スタッフ聞き取り)",
        "segment": "app_first",
        "experience_values": ("convenience", "fun"),
    },
    "gift_giver": {
        "name": "記念日ギフトの常連 Gift-giving regular",
        "initials": "GR",
        "color": "#b5446e",
        "profile": "45歳・既婚・神奈川県在住。母の日、妻の誕生日、結婚記念日に毎年贈る。 "
        "45, married, Kanagawa; gives flowers every Mother's Day, birthday and anniversary.",
        "goals": "失敗しない贈り物を確実に届けたい / A gift that arrives on time, every time",
        "pains": "毎年同じになりがち / Gifts feel repetitive",
        "situations": "記念日の2週間前 / Two weeks before an important date",
        "values": "安心・共感 / Reassurance, empathy",
        "preferred_channels": "LINE, web shop, Ginza store",
        "quotes": "「去年と違うものを提案してほしい」(銀座本店)",
        "segment": "gift_regular",
        "experience_values": ("reassurance", "empathy"),
    },
}

# The journey map of one persona; its stages follow.
JOURNEY = {
    "name": "記念日ギフトのジャーニー Anniversary gift journey",
    "description": "From remembering the date to giving again next year; co-edited with sales.",
    "persona": "gift_giver",
}
# Stage fields in order, plus the codes of its touchpoints and experience values.
STAGES: list[dict] = [
    {
        "kind": "awareness",
        "name": "認知 Awareness",
        "customer_goal": "記念日を忘れずに思い出す / Remember the date in time",
        "actions": "Instagram広告やLINEのリマインドを見る / Sees ads and a LINE reminder",
        "thoughts": "「今年は何を贈ろう？」 'What shall I give this year?'",
        "emotion": 0,
        "pain_points": "リマインドが直前すぎる / Reminders come too late",
        "opportunities": "登録された記念日の14日前にLINEで案内 / LINE 14 days ahead",
        "kpi": "LINE click rate",
        "touchpoints": ("ads-social", "line-official"),
        "experience_values": ("empathy",),
    },
    {
        "kind": "consideration",
        "name": "検討 Consideration",
        "customer_goal": "相手に合う花と予算を決める / Pick flowers and a budget",
        "actions": "ギフトガイドを見てサイズを比べる / Browses the gift guide",
        "thoughts": "「配達日に間に合う？」 'Will it arrive on the day?'",
        "emotion": -1,
        "pain_points": "サイズ感と配達日がわかりにくい / Size and delivery date unclear",
        "opportunities": "実物大の写真と配達カレンダー / True-size photos, delivery calendar",
        "kpi": "Add-to-cart rate",
        "touchpoints": ("web-shop", "app", "store-ginza"),
        "experience_values": ("convenience", "reassurance"),
    },
    {
        "kind": "purchase",
        "name": "購入 Purchase",
        "customer_goal": "メッセージを添えて確実に注文 / Order with a message card",
        "actions": "配達日とカードを指定して決済 / Chooses date and card, pays",
        "thoughts": "「カードの文字数が足りない」 'The card is too short'",
        "emotion": 1,
        "pain_points": "カードの文字数制限 / Card length limit",
        "opportunities": "手書き風カードとポイント還元 / Handwritten-style card, points",
        "kpi": "Checkout conversion rate",
        "touchpoints": ("web-shop", "app", "store-shibuya"),
        "experience_values": ("deal", "convenience"),
    },
    {
        "kind": "use",
        "name": "利用 Use",
        "customer_goal": "相手に喜んでもらう / Make the recipient happy",
        "actions": "配達通知を受け取り、写真を送ってもらう / Gets delivery notice, photo",
        "thoughts": "「ちゃんと届いてよかった」 'Glad it arrived safely'",
        "emotion": 2,
        "pain_points": "配達状況が見えない / Delivery status not visible",
        "opportunities": "SMSで配達完了と写真を通知 / SMS with delivery photo",
        "kpi": "On-time delivery rate",
        "touchpoints": ("sms-notice", "call-centre"),
        "experience_values": ("reassurance", "fun"),
    },
    {
        "kind": "loyalty",
        "name": "継続 Loyalty",
        "customer_goal": "来年も同じお店で贈る / Give again next year",
        "actions": "会員ランクとお手入れ情報を受け取る / Receives rank and care tips",
        "thoughts": "「覚えていてくれて嬉しい」 'Nice that they remember'",
        "emotion": 1,
        "pain_points": "同じ商品ばかり勧められる / Same suggestions every time",
        "opportunities": "前年の贈り物を踏まえた提案 / Suggest based on last year's gift",
        "kpi": "F2 rate, NPS",
        "touchpoints": ("email-newsletter", "app-push", "line-official"),
        "experience_values": ("empathy", "deal"),
    },
]


# Discussion threads: where (``"journey"``, ``"stage:<position>"`` or ``"persona:<key>"``),
# the cell (blank: the record as a whole), the comments in order as (author's username,
# body; the first opens the thread, the others reply) and who resolved it, if anyone.
# @mentions name demo logins, so each mentioned person finds a notification.
THREADS: list[tuple[str, str, list[tuple[str, str]], str | None]] = [
    (
        "stage:1",
        "",
        [
            (
                "sales",
                "店頭でも「記念日を登録しておけばよかった」という声が多いです。"
                " Store staff often hear 'I wish I had saved the date'.",
            ),
            (
                "crm",
                "@sales ありがとうございます。レジで記念日登録を案内するPOPを作りましょうか？"
                " Shall we put a 'save the date' card at the till?",
            ),
        ],
        None,
    ),
    (
        f"stage:{len(STAGES)}",
        "",
        [
            (
                "crm",
                "Next year's reminder could quote last year's bouquet."
                " 前年の商品名を入れて検証します。",
            ),
            (
                "sales",
                "@crm 銀座本店の顧客で先行テストできます。 Ginza can pilot it with its regulars.",
            ),
        ],
        None,
    ),
    (
        "stage:2",
        "pain_points",
        [
            (
                "sales",
                "@crm 「何日に届くか」の質問が電話の半分です。配達カレンダーを最優先にしませんか？"
                " Half of our calls ask about the delivery date.",
            ),
        ],
        None,
    ),
    (
        "journey",
        "",
        [
            (
                "crm",
                "@analytics 検討→購入の転換率を店舗とWebで比べてもらえますか？"
                " @sales 店舗の見立ても教えてください。"
                " Could you compare consideration→purchase conversion by channel?",
            ),
        ],
        None,
    ),
    (
        "persona:gift_giver",
        "quotes",
        [
            (
                "sales-viewer",
                "@sales 渋谷店でも「去年と違うもの」を求める声をよく聞きます。"
                " Shibuya hears the same.",
            ),
            ("sales", "@sales-viewer 引用に追加しました。 Added to the quotes, thanks!"),
        ],
        "sales",
    ),
]

# Sales staff's later edits of what CRM drafted: (where as in THREADS, cell, author, new text).
SALES_EDITS: list[tuple[str, str, str, str]] = [
    (
        "stage:2",
        "pain_points",
        "sales",
        "サイズ感と配達日がわかりにくい。電話の半分は配達日の確認 / Size and delivery date"
        " unclear; half of the calls ask when it arrives",
    ),
    (
        "stage:3",
        "opportunities",
        "sales",
        "手書き風カードとポイント還元。店頭では無料の手書きカード / Handwritten-style card,"
        " points; free handwritten cards in stores",
    ),
    (
        "persona:gift_giver",
        "quotes",
        "sales",
        "「去年と違うものを提案してほしい」(銀座本店)\n「去年と違うもの」(渋谷店)",
    ),
]

# The starting point offered to new journeys: a copy of the gift journey, marked a template.
TEMPLATE_JOURNEY_NAME = "ギフトジャーニーのひな型 Gift journey template"


class CampaignSpec(NamedTuple):
    """A campaign of the demo, made through ``journeys.services`` (or a scenario preset).

    ``fields`` are ``campaign_create`` arguments, with ``segment`` naming a key of
    ``SEGMENTS``; ``status`` is where its lifecycle stands today. Campaigns with a
    ``history`` (first and last day back of their sends) get simulated enrolments and
    deliveries with opens, clicks, conversions and the holdout group's own orders.
    """

    code: str
    owner: str
    status: str
    stage: int  # journey stage position
    fields: dict
    preset: str | None = None
    history: tuple[int, int] | None = None


def _content(ja_subject: str, ja_body: str, en_subject: str, en_body: str) -> dict:
    return {
        "ja": {"subject": ja_subject, "body": ja_body},
        "en": {"subject": en_subject, "body": en_body},
    }


def _one_step(*variants: tuple[str, int, dict]) -> list[dict]:
    return [
        {
            "position": 1,
            "variants": [
                {"label": label, "weight": weight, "content": content}
                for label, weight, content in variants
            ],
        }
    ]


CAMPAIGNS: list[CampaignSpec] = [
    CampaignSpec(
        "seasonal",
        "crm",
        Campaign.Status.COMPLETED,
        3,
        {
            "name": "季節の花束 早割 Seasonal bouquet early-bird",
            "goal": "Lift gift orders two weeks before the season's peak; A/B test the subject.",
            "kind": Campaign.Kind.ONE_OFF,
            "channel": Campaign.Channel.EMAIL,
            "segment": "gift_regular",
            "holdout_percent": 10,
            "priority": 60,
            "experience_values": ("deal",),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "【早割10%OFF】季節の花束のご予約受付中",
                        "{{ customer.name }}様\n\n今年も季節の花束のご予約を承ります。"
                        "早割で10%OFFです。\n\n{% product_block recommendations %}",
                        "Early-bird 10% off: seasonal bouquets",
                        "Hello {{ customer.first_name }},\n\nOrder this season's bouquet "
                        "early and save 10%.\n\n{% product_block recommendations %}",
                    ),
                ),
                (
                    "B",
                    1,
                    _content(
                        "{{ customer.name }}様、今年の贈り物はお決まりですか？",
                        "{{ customer.name }}様\n\n大切な方への季節の花束、早割のご予約で"
                        "10%OFFになります。\n\n{% product_block recommendations %}",
                        "{{ customer.first_name }}, have you chosen this year's gift?",
                        "Hello {{ customer.first_name }},\n\nBook a seasonal bouquet early "
                        "and it is 10% off.\n\n{% product_block recommendations %}",
                    ),
                ),
            ),
        },
        history=(50, 50),
    ),
    CampaignSpec(
        "line_coupon",
        "crm",
        Campaign.Status.COMPLETED,
        5,
        {
            "name": "初回購入者 LINE限定クーポン First-buyer LINE coupon",
            "goal": "Bring first-time app buyers back with a LINE-only coupon.",
            "kind": Campaign.Kind.ONE_OFF,
            "channel": Campaign.Channel.LINE,
            "segment": "app_first",
            "holdout_percent": 20,
            "experience_values": ("deal", "fun"),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "",
                        "{{ customer.name }}様、LINE友だち限定 500円OFFクーポンをお届けします🌷",
                        "",
                        "{{ customer.first_name }}, a ¥500 coupon for our LINE friends 🌷",
                    ),
                )
            ),
        },
        history=(140, 140),
    ),
    CampaignSpec(
        "cart",
        "crm",
        Campaign.Status.RUNNING,
        2,
        {
            "name": "カゴ落ちリマインド Cart reminder",
            "holdout_percent": 10,
            # The shop reports checkouts as ``purchase``; it has no ``checkout_completed``.
            "trigger": {"event_type": "add_to_cart", "unless": ["purchase"]},
            "audience_rules": _rule("consent", channel="email", status="granted"),
        },
        preset="cart_abandonment",
        history=(120, 0),
    ),
    CampaignSpec(
        "f2",
        "crm",
        Campaign.Status.RUNNING,
        5,
        {"name": "2回目購入ステップ F2 second-purchase steps"},
        preset="f2_steps",
    ),
    CampaignSpec(
        "spouse_birthday",
        "crm",
        Campaign.Status.RUNNING,
        1,
        {"name": "奥様・旦那様のお誕生日リマインド Spouse's birthday reminder"},
        preset="spouse_birthday",
    ),
    CampaignSpec(
        "vip_visit",
        "sales",
        Campaign.Status.RUNNING,
        5,
        {
            "name": "優良顧客 来店ご案内 VIP store invitation",
            "goal": "Store staff call high-value customers before the new-season preview.",
            "kind": Campaign.Kind.ONE_OFF,
            "channel": Campaign.Channel.STAFF_TASK,
            "segment": "high_value",
            "holdout_percent": 0,
            "priority": 80,
            "experience_values": ("reassurance", "empathy"),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "新作内覧会のご案内のお電話",
                        "{{ customer.name }}様にお電話し、新作内覧会（来週土曜）へご招待して"
                        "ください。ご都合とご要望を記録してください。",
                        "Call: new-season preview invitation",
                        "Call {{ customer.name }} and invite them to next Saturday's "
                        "new-season preview; note their answer and wishes.",
                    ),
                )
            ),
        },
        history=(10, 10),
    ),
    CampaignSpec(
        "year_end",
        "crm",
        Campaign.Status.SCHEDULED,
        2,
        {
            "name": "年末ギフト予約 Year-end gift pre-order",
            "goal": "Early pre-orders for year-end gifts.",
            "kind": Campaign.Kind.ONE_OFF,
            "channel": Campaign.Channel.EMAIL,
            "segment": "gift_regular",
            "experience_values": ("deal",),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "年末ギフトのご予約開始",
                        "{{ customer.name }}様\n\n人気の年末ギフトは早めのご予約がおすすめです。"
                        "\n\n{% product_block recommendations %}",
                        "Year-end gifts: pre-orders open",
                        "Hello {{ customer.first_name }},\n\nOur most popular year-end gifts "
                        "sell out early.\n\n{% product_block recommendations %}",
                    ),
                )
            ),
        },
    ),
    CampaignSpec(
        "winback",
        "crm",
        Campaign.Status.DRAFT,
        5,
        {
            "name": "休眠顧客 掘り起こし Dormant win-back",
            "goal": "Win back customers without an order for six months.",
            "kind": Campaign.Kind.ONE_OFF,
            "channel": Campaign.Channel.LINE,
            "segment": "dormant",
            "holdout_percent": 20,
            "experience_values": ("deal", "empathy"),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "",
                        "{{ customer.name }}様、お久しぶりです。季節の花を15%OFFでお届けします。",
                        "",
                        "{{ customer.first_name }}, it has been a while: seasonal flowers 15% off.",
                    ),
                )
            ),
        },
    ),
    CampaignSpec(
        "newsletter",
        "crm",
        Campaign.Status.SCHEDULED,
        1,
        {
            "name": "花守通信（毎週金曜） Weekly newsletter (Fridays)",
            "goal": "Seasonal flowers, care tips and workshops, every Friday at 10:00.",
            "kind": Campaign.Kind.RECURRING,
            "channel": Campaign.Channel.EMAIL,
            "segment": "newsletter",
            "cron": "0 10 * * 5",
            "holdout_percent": 5,
            "priority": 30,
            "experience_values": ("fun",),
            "steps": _one_step(
                (
                    "A",
                    1,
                    _content(
                        "花守通信 今週の季節の花",
                        "{{ customer.name }}様\n\n今週のおすすめと、長持ちさせるお手入れのコツを"
                        "お届けします。\n\n{% product_block recommendations %}",
                        "Hanamori weekly: this week's flowers",
                        "Hello {{ customer.first_name }},\n\nThis week's picks and a care "
                        "tip to make them last.\n\n{% product_block recommendations %}",
                    ),
                )
            ),
        },
    ),
]

# Outcomes of the store staff's invitation calls.
VISIT_OUTCOMES = [
    "来店予約あり（土曜14時）/ Booked a visit on Saturday 2 pm",
    "不在、留守電に伝言 / No answer, left a voicemail",
    "今回は見送り、秋に再度案内 / Not this time; invite again in autumn",
]

# --------------------------------------------------------------------------------------------
# People: names, places and what they say
# --------------------------------------------------------------------------------------------

FAMILY_NAMES = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("山下", "ヤマシタ", "yamashita"),
    ("中島", "ナカジマ", "nakajima"),
    ("石井", "イシイ", "ishii"),
    ("小川", "オガワ", "ogawa"),
    ("前田", "マエダ", "maeda"),
    ("岡田", "オカダ", "okada"),
    ("長谷川", "ハセガワ", "hasegawa"),
    ("藤田", "フジタ", "fujita"),
    ("後藤", "ゴトウ", "goto"),
    ("近藤", "コンドウ", "kondo"),
    ("村上", "ムラカミ", "murakami"),
    ("遠藤", "エンドウ", "endo"),
    ("青木", "アオキ", "aoki"),
    ("坂本", "サカモト", "sakamoto"),
]
GIVEN_NAMES = {
    "f": [
        ("陽子", "ヨウコ", "yoko"),
        ("花子", "ハナコ", "hanako"),
        ("美咲", "ミサキ", "misaki"),
        ("結衣", "ユイ", "yui"),
        ("葵", "アオイ", "aoi"),
        ("さくら", "サクラ", "sakura"),
        ("陽菜", "ヒナ", "hina"),
        ("真由美", "マユミ", "mayumi"),
        ("恵子", "ケイコ", "keiko"),
        ("由美", "ユミ", "yumi"),
        ("直美", "ナオミ", "naomi"),
        ("愛", "アイ", "ai"),
        ("彩", "アヤ", "aya"),
        ("千尋", "チヒロ", "chihiro"),
        ("智子", "トモコ", "tomoko"),
        ("久美子", "クミコ", "kumiko"),
        ("明美", "アケミ", "akemi"),
        ("優子", "ユウコ", "yuko"),
        ("麻衣", "マイ", "mai"),
        ("香織", "カオリ", "kaori"),
        ("美穂", "ミホ", "miho"),
        ("紗希", "サキ", "saki"),
        ("凛", "リン", "rin"),
        ("芽衣", "メイ", "mei"),
    ],
    "m": [
        ("翔太", "ショウタ", "shota"),
        ("大輔", "ダイスケ", "daisuke"),
        ("健太", "ケンタ", "kenta"),
        ("拓也", "タクヤ", "takuya"),
        ("直樹", "ナオキ", "naoki"),
        ("浩二", "コウジ", "koji"),
        ("誠", "マコト", "makoto"),
        ("蓮", "レン", "ren"),
        ("悠真", "ユウマ", "yuma"),
        ("大翔", "ヒロト", "hiroto"),
        ("隆", "タカシ", "takashi"),
        ("剛", "ツヨシ", "tsuyoshi"),
        ("和也", "カズヤ", "kazuya"),
        ("亮", "リョウ", "ryo"),
        ("健一", "ケンイチ", "kenichi"),
        ("哲也", "テツヤ", "tetsuya"),
        ("修", "オサム", "osamu"),
        ("洋平", "ヨウヘイ", "yohei"),
        ("陸", "リク", "riku"),
        ("湊", "ミナト", "minato"),
    ],
}
ENGLISH_GIVEN = {
    "f": ["Emily", "Sarah", "Olivia", "Hannah", "Grace", "Chloe", "Laura", "Emma", "Sophie"],
    "m": ["James", "Daniel", "Michael", "Thomas", "David", "Ben", "Lucas", "Ryan", "Oliver"],
}
ENGLISH_FAMILY = [
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Clarke",
    "Evans",
    "Walker",
    "Martin",
    "Lee",
    "Wright",
    "Green",
    "Hall",
    "Baker",
    "Murphy",
]
EMAIL_DOMAINS = ("example.jp", "example.com", "example.ne.jp", "example.co.jp", "example.org")

# prefecture, cities, weight, postal-code prefix, nearby stores
PREFECTURES: list[tuple[str, tuple[str, ...], int, str, tuple[str, ...]]] = [
    (
        "東京都",
        ("渋谷区", "世田谷区", "港区", "新宿区", "杉並区", "目黒区", "練馬区", "中央区"),
        28,
        "1",
        ("store-ginza", "store-shibuya"),
    ),
    ("神奈川県", ("横浜市", "川崎市", "鎌倉市", "藤沢市"), 14, "2", ("store-yokohama",)),
    ("埼玉県", ("さいたま市", "川口市", "所沢市"), 8, "3", ("store-shibuya",)),
    ("千葉県", ("千葉市", "船橋市", "浦安市"), 7, "27", ("store-ginza",)),
    ("大阪府", ("大阪市", "豊中市", "吹田市"), 10, "5", ("store-umeda",)),
    ("京都府", ("京都市",), 3, "60", ("store-umeda",)),
    ("兵庫県", ("神戸市", "西宮市"), 4, "65", ("store-umeda",)),
    ("愛知県", ("名古屋市", "豊田市"), 7, "4", ("store-sakae",)),
    ("福岡県", ("福岡市", "北九州市"), 5, "8", ("store-tenjin",)),
    ("北海道", ("札幌市",), 4, "06", ()),
    ("宮城県", ("仙台市",), 2, "98", ()),
    ("広島県", ("広島市",), 2, "73", ()),
    ("静岡県", ("静岡市", "浜松市"), 3, "42", ()),
    ("沖縄県", ("那覇市",), 1, "90", ()),
]

NPS_COMMENTS = {
    ("ja", "promoter"): [
        "配達が時間通りで、花もとても新鮮でした。",
        "母がとても喜んでくれました！また利用します。",
        "アプリで簡単に注文できて便利です。",
        "店員さんの提案が素敵でした。",
        "メッセージカードのサービスが嬉しいです。",
    ],
    ("ja", "passive"): [
        "満足ですが、送料がもう少し安いと嬉しいです。",
        "花はきれいでしたが、写真より少し小さく感じました。",
        "配達日時の指定枠をもっと増やしてほしいです。",
    ],
    ("ja", "detractor"): [
        "届いた時に花が少し傷んでいました。",
        "問い合わせの電話がつながりにくかったです。",
        "配達が予定より遅れました。",
        "決済画面でエラーが出て困りました。",
    ],
    ("en", "promoter"): [
        "Beautiful flowers and on-time delivery. My partner loved them.",
        "The app makes ordering gifts so easy.",
        "The staff at the store gave great advice.",
    ],
    ("en", "passive"): [
        "Nice bouquet, but shipping is a bit expensive.",
        "Good quality, though smaller than in the photo.",
    ],
    ("en", "detractor"): [
        "The flowers arrived wilted.",
        "Delivery was a day late and nobody told me.",
        "Checkout kept failing on my phone.",
    ],
}
SEARCH_QUERIES = (
    "バラ",
    "母の日",
    "誕生日 花束",
    "胡蝶蘭",
    "観葉植物",
    "プリザーブドフラワー",
    "送料無料",
    "開店祝い",
    "結婚祝い",
    "お供え",
    "rose bouquet",
    "birthday flowers",
)
PAGE_PATHS = (
    "/",
    "/collections/bouquets",
    "/collections/arrangements",
    "/collections/plants",
    "/gift-guide/birthday",
    "/gift-guide/anniversary",
    "/campaign/seasonal",
    "/stores",
    "/help/delivery",
)
CALL_REASONS = (
    "配送状況の確認 (delivery status)",
    "お届け日時の変更 (change delivery date)",
    "お手入れ方法 (plant care)",
    "返品・交換 (return or exchange)",
    "法人注文の相談 (corporate order)",
)
COMPETITORS = ("競合A社 花のサブスク (competitor A)", "大手ECモール (large marketplace)")
CONSENT_SOURCES = {
    "email": "webshop_signup",
    "line": "line_follow",
    "push": "app_permission",
    "sms": "pos_form",
    "phone": "pos_form",
    "dm": "pos_form",
    "ads": "cookie_banner",
}
CONSENT_GRANT_RATE = {
    "email": 0.78,
    "line": 0.92,
    "push": 0.6,
    "sms": 0.4,
    "phone": 0.25,
    "dm": 0.5,
    "ads": 0.55,
}
# Month → relative demand: Valentine, graduation, Mother's Day and Christmas stand out.
MONTH_DEMAND = {1: 0.7, 2: 0.95, 3: 1.1, 4: 0.85, 5: 1.5, 6: 0.9, 7: 0.75, 8: 0.8, 9: 0.9}
MONTH_DEMAND |= {10: 0.8, 11: 0.85, 12: 1.3}
ONLINE_HOURS = [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3, 5, 4, 3, 3, 3, 3, 4, 5, 7, 8, 7, 4]
STORE_HOURS = [0] * 10 + [5, 7, 8, 8, 7, 7, 8, 9, 9, 6] + [0] * 4
NPS_SCORES = {"promoter": (9, 10), "passive": (7, 8), "detractor": (2, 4, 5, 6, 6)}
# Order channel → (order-number prefix, source system).
ORDER_CHANNELS = {
    "web": ("W", "webshop"),
    "app": ("A", "app"),
    "store": ("S", "pos"),
    "call": ("C", "callcenter"),
}
# Channel → (furthest status reached, cumulative per-mille).
DELIVERY_OUTCOMES = {
    "email": (("failed", "converted", "clicked", "opened", "sent"), (10, 40, 120, 420, 1000)),
    "line": (("converted", "clicked", "sent"), (60, 300, 1000)),
}
# Channel → chance that someone in the holdout group buys within the attribution window
# anyway (what the campaign's lift is measured against).
HOLDOUT_CONVERSION = {"email": 0.012, "line": 0.025}
PUSH_TOPICS = ("order_status", "back_in_stock", "care_tip")
# Detected situations: (kind, source, confidence, detail).
# Events in which a touchpoint delivers its experience values (``Event.value_bits``): a
# purchase, a visit, a talk, a workshop, a review or a referral — not a page view or a click.
VALUE_MOMENTS = frozenset(
    {
        "purchase",
        "store_visit",
        "call",
        "meeting",
        "event_attended",
        "review_posted",
        "referral",
        "app_open",
    }
)

LIFE_EVENTS: list[tuple[str, str, float, dict[str, str]]] = [
    ("marriage", "rule:wedding_gift_purchase", 0.7, {"signal": "wedding bouquet"}),
    ("moving", "rule:address_change", 0.95, {"from": "東京都", "to": "神奈川県"}),
    ("job_change", "dmp:hanamori-dmp", 0.6, {"segment": "career_change"}),
    ("childbirth", "staff:store", 1.0, {"note": "出産祝いの相談 (baby gift)"}),
    ("competitor_interest", "dmp:hanamori-dmp", 0.75, {}),
]
