"""The customers importer: member lists and shop exports become unified profiles.

Each row names one person by one or more identifiers (email, phone, POS member ID…);
``customers.identity.resolve_customers`` maps a whole chunk to profiles in one go (new
people become new profiles, rows that link two profiles merge them), then names, personal
fields, custom attributes and consents are updated only where they differ, so importing
the same file again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connections, router
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from customers.imports import (
    Importer,
    ImportField,
    Record,
    RowError,
    db_value,
    insert_returning,
    insert_rows,
    register_importer,
    update_rows,
)
from customers.metrics import metrics_insert_new, metrics_rebuild
from customers.models import (
    AttributeDefinition,
    Channel,
    Consent,
    ConsentChange,
    Customer,
    Identity,
)

IDENTIFIER_FIELDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    Identity.Kind.EMAIL: (
        _("Email"),
        ("e-mail", "mail", "email address", "メールアドレス", "メール", "eメール", "pcメール"),
    ),
    Identity.Kind.PHONE: (
        _("Phone"),
        (
            "tel",
            "telephone",
            "mobile",
            "phone number",
            "電話番号",
            "電話",
            "携帯番号",
            "携帯電話番号",
            "携帯電話",
        ),
    ),
    Identity.Kind.POS: (
        _("POS member ID"),
        (
            "pos",
            "member id",
            "member no",
            "member number",
            "membership number",
            "会員番号",
            "会員id",
            "会員no",
            "ポイントカード番号",
        ),
    ),
    Identity.Kind.APP: (
        _("App user ID"),
        ("app", "app id", "app user", "アプリid", "アプリ会員id"),
    ),
    Identity.Kind.LINE: (_("LINE ID"), ("line", "line user id", "lineユーザーid")),
    Identity.Kind.DMP: (_("External DMP ID"), ("dmp", "dmp id")),
}

NAME_FIELDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "family_name": (_("Family name"), ("last name", "surname", "姓", "氏", "苗字")),
    "given_name": (_("Given name"), ("first name", "名", "下の名前")),
    "family_name_kana": (
        _("Family name (kana)"),
        ("セイ", "姓カナ", "姓(カナ)", "姓フリガナ", "フリガナ姓", "last name kana", "family kana"),
    ),
    "given_name_kana": (
        _("Given name (kana)"),
        ("メイ", "名カナ", "名(カナ)", "名フリガナ", "フリガナ名", "first name kana", "given kana"),
    ),
    "full_name": (_("Full name (family and given)"), ("name", "氏名", "名前", "お名前")),
}
PROFILE_FIELDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "birth_date": (_("Birth date"), ("birthday", "date of birth", "dob", "生年月日", "誕生日")),
    "gender": (_("Gender"), ("sex", "性別")),
    "postal_code": (_("Postal code"), ("zip", "zip code", "postcode", "郵便番号", "〒")),
    "prefecture": (_("Prefecture"), ("state", "都道府県")),
    "city": (_("City"), ("市区町村", "市区町村名")),
    "language": (_("Language"), ("lang", "言語")),
}
CONSENT_ALIASES = {
    Channel.EMAIL: ("メール配信", "メール配信希望", "メルマガ", "メルマガ配信", "newsletter"),
    Channel.SMS: ("sms配信",),
    Channel.LINE: ("line配信",),
    Channel.DIRECT_MAIL: ("dm配信", "dm希望"),
}
MAX_LENGTH = {
    "family_name": 100,
    "given_name": 100,
    "family_name_kana": 100,
    "given_name_kana": 100,
    "postal_code": 10,
    "prefecture": 20,
    "city": 100,
}
YES = {
    "1",
    "y",
    "yes",
    "true",
    "granted",
    "opt-in",
    "optin",
    "はい",
    "可",
    "希望",
    "希望する",
    "同意",
    "同意する",
    "○",
    "◯",
}
NO = {
    "0",
    "n",
    "no",
    "false",
    "withdrawn",
    "opt-out",
    "optout",
    "いいえ",
    "不可",
    "否",
    "希望しない",
    "同意しない",
    "拒否",
    "×",
}
GENDERS = {
    "f": "f",
    "female": "f",
    "woman": "f",
    "女": "f",
    "女性": "f",
    "m": "m",
    "male": "m",
    "man": "m",
    "男": "m",
    "男性": "m",
    "o": "o",
    "other": "o",
    "その他": "o",
    "": "",
    "unknown": "",
    "不明": "",
    "回答しない": "",
}
LANGUAGES = {
    "ja": "ja",
    "japanese": "ja",
    "日本語": "ja",
    "en": "en",
    "english": "en",
    "英語": "en",
}
DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)
POSTAL_CODE = re.compile(r"^(\d{3})-?(\d{4})$")
ATTRIBUTE_PREFIX = "attr:"
#: Profile fields whose values need converting for the database driver (dates, JSON).
CONVERTED_FIELDS = frozenset({"birth_date", "attributes"})


def parse_date(text: str) -> dt.date:
    """ISO, 1990/01/02, 19900102 or 1990年1月2日; raises ValueError with a reason."""
    # ASCII text is its own NFKC form: skip the normalisation for the common case.
    folded = text.strip() if text.isascii() else unicodedata.normalize("NFKC", text).strip()
    for pattern in DATE_PATTERNS:
        if match := pattern.match(folded):
            year, month, day = (int(part) for part in match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                raise ValueError(_t("not a real date")) from None
    raise ValueError(_t("not a date (use YYYY-MM-DD)"))


def parse_flag(text: str) -> bool:
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    if folded in YES:
        return True
    if folded in NO:
        return False
    raise ValueError(_t("not yes or no (use 1/0, yes/no or はい/いいえ)"))


class CustomerImporter(Importer):
    """Rows of people → unified profiles with identifiers, names, attributes and consents."""

    kind = "customers"
    label = _("Customers")

    def __init__(self, *, job=None) -> None:
        super().__init__(job=job)
        self.attributes = {
            definition.key: definition for definition in AttributeDefinition.objects.all()
        }
        self.today = timezone.localdate()

    def fields(self) -> list[ImportField]:
        items = [
            ImportField(kind, label, aliases)
            for kind, (label, aliases) in IDENTIFIER_FIELDS.items()
        ]
        for table in (NAME_FIELDS, PROFILE_FIELDS):
            items += [ImportField(key, label, aliases) for key, (label, aliases) in table.items()]
        for value, label in Channel.choices:
            aliases = (
                f"consent {value}",
                f"{value} consent",
                f"{value} opt-in",
                f"{label} consent",
                *CONSENT_ALIASES.get(value, ()),
            )
            items.append(
                ImportField(
                    f"consent_{value}", _t("Consent: %(channel)s") % {"channel": label}, aliases
                )
            )
        for key, definition in self.attributes.items():
            items.append(ImportField(f"{ATTRIBUTE_PREFIX}{key}", definition.label, (key,)))
        return items

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        from customers.identity import IdentifierError, normalize_identifier

        for number, values in rows:
            record = Record(rows=[number])
            errors = record.errors
            identifiers: dict[str, str] = {}
            for kind in IDENTIFIER_FIELDS:
                raw = values.get(kind, "")
                if not raw:
                    continue
                try:
                    identifiers[kind] = normalize_identifier(kind, raw)
                except IdentifierError as exc:
                    errors.append(RowError(number, kind, raw, str(exc)))
            if not identifiers and not errors:
                errors.append(
                    RowError(
                        number,
                        "",
                        "",
                        _t(
                            "no identifier: fill in an email, phone, "
                            "POS member ID or another identifier"
                        ),
                    )
                )
            profile: dict[str, Any] = {}
            consents: dict[str, str] = {}
            attributes: dict[str, Any] = {}
            for key, raw in values.items():
                if not raw or key in IDENTIFIER_FIELDS:
                    continue
                limit = MAX_LENGTH.get(key)
                if limit is not None and key != "postal_code":
                    # Plain text fields (names, city…): the hot path of a big member list.
                    text = raw.strip()
                    if len(text) <= limit:
                        profile[key] = text
                        continue
                try:
                    if key.startswith("consent_"):
                        consents[key.removeprefix("consent_")] = (
                            Consent.Status.GRANTED if parse_flag(raw) else Consent.Status.WITHDRAWN
                        )
                    elif key.startswith(ATTRIBUTE_PREFIX):
                        attribute = key.removeprefix(ATTRIBUTE_PREFIX)
                        attributes[attribute] = self._attribute(attribute, raw)
                    else:
                        profile.update(self._profile_field(key, raw))
                except ValueError as exc:
                    errors.append(RowError(number, key, raw, str(exc)))
            record.data = {
                "identifiers": identifiers,
                "profile": profile,
                "consents": consents,
                "attributes": attributes,
            }
            yield record

    def _profile_field(self, key: str, raw: str) -> dict[str, Any]:
        if key == "full_name":
            parts = unicodedata.normalize("NFKC", raw).split(maxsplit=1)
            family, given = ([*parts, ""])[:2]
            return {
                **self._profile_field("family_name", family),
                **(self._profile_field("given_name", given) if given else {}),
            }
        if key == "birth_date":
            date = parse_date(raw)
            if date > self.today:
                raise ValueError(_t("a birth date in the future"))
            if date.year < 1900:
                raise ValueError(_t("a birth date before 1900"))
            return {key: date}
        if key == "gender":
            folded = unicodedata.normalize("NFKC", raw).strip().casefold()
            if folded not in GENDERS:
                raise ValueError(_t("not a gender (use f, m, o, 女性, 男性 or その他)"))
            return {key: GENDERS[folded]}
        if key == "language":
            folded = raw.strip().casefold()
            if folded not in LANGUAGES:
                raise ValueError(_t("not a supported language (use ja or en)"))
            return {key: LANGUAGES[folded]}
        if key == "postal_code":
            match = POSTAL_CODE.match(unicodedata.normalize("NFKC", raw).strip())
            if not match:
                raise ValueError(_t("not a postal code (use 123-4567)"))
            return {key: f"{match[1]}-{match[2]}"}
        text = raw.strip()
        if len(text) > MAX_LENGTH.get(key, 100):
            raise ValueError(
                _t("longer than %(limit)d characters") % {"limit": MAX_LENGTH.get(key, 100)}
            )
        return {key: text}

    def _attribute(self, key: str, raw: str) -> Any:
        definition = self.attributes[key]
        kind = definition.type
        if kind == AttributeDefinition.Type.NUMBER:
            try:
                number = Decimal(unicodedata.normalize("NFKC", raw).replace(",", "").strip())
            except InvalidOperation:
                raise ValueError(_t("not a number")) from None
            if not number.is_finite():
                raise ValueError(_t("not a number"))
            return int(number) if number == number.to_integral_value() else float(number)
        if kind == AttributeDefinition.Type.BOOLEAN:
            return parse_flag(raw)
        if kind == AttributeDefinition.Type.DATE:
            return parse_date(raw).isoformat()
        if kind == AttributeDefinition.Type.CHOICE:
            allowed = [str(choice) for choice in definition.choices]
            if raw not in allowed:
                raise ValueError(
                    _t("not one of the choices: %(choices)s") % {"choices": ", ".join(allowed)}
                )
            return raw
        return raw

    def write(self, records: list[Record], *, job, by) -> dict[str, int]:
        """Resolve the chunk's people, then apply profile fields and consents set-based.

        Only the profiles that existed before the chunk are read back (the new ones hold
        their model defaults); changed profiles are saved with one prepared ``UPDATE`` run
        for every row, new consents and their history with multi-row inserts.
        """
        from customers.identity import resolve_customers
        from customers.services import profile_changed_on_commit

        newest_before = Customer.objects.aggregate(newest=Max("pk"))["newest"] or 0
        gained: set[int] = set()
        ids = resolve_customers(
            people=[record.data["identifiers"] for record in records],
            source=job.source,
            by=by,
            gained=gained,
        )
        fields: set[str] = set()
        for record in records:
            fields.update(record.data["profile"])
            if record.data["attributes"]:
                fields.add("attributes")
        existing_ids = {customer_id for customer_id in ids if customer_id <= newest_before}
        state: dict[int, dict[str, Any]] = {}
        if fields and existing_ids:
            for row in Customer.objects.filter(pk__in=existing_ids).values("pk", *fields):
                state[row.pop("pk")] = row
        defaults = {name: Customer._meta.get_field(name).get_default() for name in fields}
        before = {pk: dict(row) for pk, row in state.items()}  # for profile-change listeners
        changed_fields: set[str] = set()
        changed: set[int] = set()
        desired_consents: dict[tuple[int, str], str] = {}
        for record, customer_id in zip(records, ids, strict=True):
            data = record.data
            if fields:
                current = state.get(customer_id)
                if current is None:
                    current = state[customer_id] = dict(defaults)
                for name, value in data["profile"].items():
                    if current[name] != value:
                        current[name] = value
                        changed_fields.add(name)
                        changed.add(customer_id)
                if data["attributes"]:
                    merged = {**current["attributes"], **data["attributes"]}
                    if merged != current["attributes"]:
                        current["attributes"] = merged
                        changed_fields.add("attributes")
                        changed.add(customer_id)
            for channel, status in data["consents"].items():
                # Two rows of one person: a withdrawal anywhere in the chunk wins.
                if desired_consents.get((customer_id, channel)) != Consent.Status.WITHDRAWN:
                    desired_consents[(customer_id, channel)] = status
        now = timezone.now()
        if changed:
            names = sorted(changed_fields)
            connection = connections[router.db_for_write(Customer)]
            convert = {
                name: Customer._meta.get_field(name).get_db_prep_save
                for name in names
                if name in CONVERTED_FIELDS
            }
            stamp = db_value(Customer, "updated_at", now)
            rows = []
            for pk in sorted(changed):
                current = state[pk]
                row = [
                    convert[name](current[name], connection) if name in convert else current[name]
                    for name in names
                ]
                rows.append((*row, stamp, pk))
            update_rows(Customer, [*names, "updated_at"], rows)
            profile_changed_on_commit(
                customer_ids=changed,
                changed_fields=changed_fields,
                previous={
                    pk: {
                        n: before.get(pk, defaults)[n]
                        for n in names
                        if before.get(pk, defaults)[n] != state[pk][n]
                    }
                    for pk in changed
                },
            )
        consent_changes, consents_kept, consented = self._write_consents(
            desired_consents, existing_ids=existing_ids, source=job.source, by=by, now=now
        )
        created = {customer_id for customer_id in ids if customer_id > newest_before}
        # Metrics: the people this chunk created have only the identifiers it gave them
        # (no orders, events or answers); of the others only those given a new identifier
        # changed (merges refresh their own).
        metrics_insert_new(customer_ids=created, now=now)
        if gained - created:
            metrics_rebuild(customer_ids=sorted(gained - created), now=now)
        # Segment membership: evaluated once for the whole file after its last chunk
        # (``customers.imports`` keeps these ids with the checkpoint).
        self._derived = sorted(created | changed | consented | gained)
        return {
            "profiles_created": len(created),
            "profiles_updated": len(changed - created),
            "consents_changed": consent_changes,
            "consents_kept": consents_kept,
        }

    def derived_ids(self) -> list[int]:
        """The people the last ``write`` created or changed (segment membership is due)."""
        ids, self._derived = getattr(self, "_derived", []), []
        return ids

    @staticmethod
    def _write_consents(
        desired: dict[tuple[int, str], str], *, existing_ids: set[int], source, by, now
    ) -> tuple[int, int, set[int]]:
        """Set consents in bulk, with one ConsentChange per real change (history kept).

        Re-imports never resubscribe anyone: a withdrawn consent is only granted again by
        the person (preference centre, unsubscribe page) or by staff on the profile, never
        by a file, so such rows keep the withdrawal and are counted as kept, not as errors.
        Profiles created by this chunk have no consents yet, so only the others are read.
        Returns (consents changed, withdrawals kept, ids of the people whose consents changed).
        """
        if not desired:
            return 0, 0, set()
        existing: dict[tuple[int, str], tuple[int, str]] = {}
        wanted = {customer_id for customer_id, _channel in desired} & existing_ids
        if wanted:
            existing = {
                (customer_id, channel): (pk, status)
                for pk, customer_id, channel, status in Consent.objects.filter(
                    customer_id__in=wanted
                ).values_list("pk", "customer_id", "channel", "status")
            }
        stamp = db_value(Consent, "updated_at", now)
        to_create: list[tuple] = []
        to_update: list[tuple] = []
        changes: list[tuple[int, str]] = []
        people: set[int] = set()
        kept = 0
        for (customer_id, channel), status in desired.items():
            found = existing.get((customer_id, channel))
            if found is None:
                to_create.append((customer_id, channel, status))
            elif found[1] == Consent.Status.WITHDRAWN and status == Consent.Status.GRANTED:
                kept += 1
            elif found[1] != status:
                to_update.append((status, source, stamp, found[0]))
                people.add(customer_id)
                changes.append((found[0], status))
        returned = insert_returning(
            Consent,
            ["customer", "channel", "status"],
            to_create,
            returning=["id", "customer", "channel"],
            constants={"source": source, "updated_at": stamp},
        )
        pk_of = {(customer_id, channel): pk for pk, customer_id, channel in returned}
        changes += [(pk_of[(row[0], row[1])], row[2]) for row in to_create]
        update_rows(Consent, ["status", "source", "updated_at"], to_update)
        changed_by = by.pk if getattr(by, "is_authenticated", False) else None
        insert_rows(
            ConsentChange,
            ["consent", "status"],
            changes,
            constants={"source": source, "changed_by": changed_by, "changed_at": stamp},
        )
        people |= {row[0] for row in to_create}
        return len(changes), kept, people


register_importer(CustomerImporter.kind, CustomerImporter)
