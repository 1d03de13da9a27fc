"""Imports of customers: reading files, mapping, validation report, idempotent chunked import."""

from __future__ import annotations

import io
import os
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from config.org.models import AuditLog
from customers import imports
from customers.importers import CustomerImporter
from customers.imports import (
    ImportFileError,
    MappingError,
    guess_mapping,
    import_job_create,
    import_job_run,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    Customer,
    Identity,
    ImportJob,
    ImportRowError,
)
from customers.services import consent_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

HEADER = "メールアドレス,電話番号,会員番号,姓,名,セイ,メイ,生年月日,メール配信\n"


def upload(data: bytes, *, department, by=None, name="members.csv", source="pos", kind="customers"):
    return import_job_create(
        file=io.BytesIO(data),
        original_name=name,
        kind=kind,
        source=source,
        department=department,
        by=by,
    )


def validate(job, mapping=None) -> ImportJob:
    job = import_job_validate_start(job=job, mapping=mapping or job.mapping, by=None, queue=False)
    return import_job_validate(job_id=job.pk)


def run(job, *, skip=False) -> ImportJob:
    job = import_job_run_start(job=job, skip_invalid_rows=skip, by=None, queue=False)
    return run_pending_import(job=job)


def import_file(data: bytes, *, department, **kwargs) -> ImportJob:
    job = validate(upload(data, department=department, **kwargs))
    assert job.status == ImportJob.Status.VALID, list(job.row_errors.values_list("row", "reason"))
    return run(job)


def test_mapping_is_guessed_from_english_and_japanese_headers():
    fields = CustomerImporter().fields()
    headers = [
        "メールアドレス",
        "電話番号",
        "会員番号",
        "姓",
        "名",
        "セイ",
        "メイ",
        "生年月日",
        "E-mail",
        "Last Name",
        "メイ（カナ）",
        "note",
    ]
    mapping = guess_mapping(headers, fields)
    assert mapping == {
        "メールアドレス": "email",
        "電話番号": "phone",
        "会員番号": "pos",
        "姓": "family_name",
        "名": "given_name",
        "セイ": "family_name_kana",
        "メイ": "given_name_kana",
        "生年月日": "birth_date",
    }
    english = guess_mapping(["E-mail", "Phone Number", "First name", "Birthday"], fields)
    assert english == {
        "E-mail": "email",
        "Phone Number": "phone",
        "First name": "given_name",
        "Birthday": "birth_date",
    }


ROWS = (
    "hanako@example.jp,090-1234-5678,P001,山田,花子,ヤマダ,ハナコ,1990/01/02,はい\n"
    "taro@example.jp,,P002,佐藤,太郎,サトウ,タロウ,1985-12-31,いいえ\n"
)


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp932", "cp932"), ("shift_jis", "cp932")],
)
def test_csv_in_utf8_bom_and_shift_jis_is_read_alike(crm, encoding, detected):
    job = upload((HEADER + ROWS).encode(encoding), department=crm)
    assert job.result["encoding"] == detected
    assert job.result["headers"][0] == "メールアドレス"
    assert job.total_rows == 2
    job = import_file((HEADER + ROWS).encode(encoding), department=crm, source=f"pos-{encoding}")
    hanako = Identity.objects.get(kind="email", value="hanako@example.jp").customer
    assert (hanako.family_name, hanako.given_name_kana) == ("山田", "ハナコ")
    assert str(hanako.birth_date) == "1990-01-02"
    assert hanako.identities.get(kind="phone").value == "+819012345678"
    assert job.result["counts"]["profiles_created"] == 2


def test_xlsx_is_read_with_the_same_mapping(crm):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["E-mail", "Family name", "Birth date", "Member ID"])
    sheet.append(["a@example.jp", "青木", "1970-05-06", 12345])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = import_file(buffer.getvalue(), department=crm, name="members.xlsx")
    customer = Identity.objects.get(kind="pos", value="12345").customer
    assert customer.family_name == "青木"
    assert job.result["format"] == "xlsx"


def test_unreadable_files_are_refused_before_anything_is_stored(crm):
    with pytest.raises(ImportFileError, match="CSV or XLSX"):
        upload(b"x", department=crm, name="members.pdf")
    with pytest.raises(ImportFileError, match="Two columns"):
        upload(b"email,email\na@b.jp,c@d.jp\n", department=crm)
    with pytest.raises(ImportFileError, match="neither UTF-8 nor Shift_JIS"):
        upload(b"email\n\xff\xfe\xfa\n", department=crm)
    assert not ImportJob.objects.exists()


def test_mapping_must_name_real_columns_and_fields_once(crm):
    job = upload((HEADER + ROWS).encode(), department=crm)
    with pytest.raises(MappingError, match="no column “missing”"):
        import_job_validate_start(job=job, mapping={"missing": "email"}, by=None, queue=False)
    with pytest.raises(MappingError, match="both mapped"):
        import_job_validate_start(
            job=job, mapping={"メールアドレス": "email", "電話番号": "email"}, by=None, queue=False
        )
    with pytest.raises(MappingError, match="not a field"):
        import_job_validate_start(job=job, mapping={"姓": "shoe_size"}, by=None, queue=False)


BAD = (
    "good@example.jp,,P010,,,,,,\n"
    "not-an-email,,,,,,,,\n"
    ",090-12,,,,,,,\n"
    ",,,山田,,,,,\n"
    "ok@example.jp,,,,,,,2990-01-01,たぶん\n"
)


def test_validation_report_names_every_bad_row_and_nothing_is_written(crm):
    job = validate(upload((HEADER + BAD).encode(), department=crm))
    assert job.status == ImportJob.Status.INVALID
    report = list(job.row_errors.order_by("row", "column").values_list("row", "column", "reason"))
    assert [(row, column) for row, column, _reason in report] == [
        (3, "メールアドレス"),
        (4, "電話番号"),
        (5, ""),
        (6, "メール配信"),
        (6, "生年月日"),
    ]
    assert "not a valid email address" in report[0][2]
    assert "phone" in report[1][2]
    assert "no identifier" in report[2][2]
    assert job.error_count == 5
    assert job.result["bad_records"] == 4
    assert job.result["valid_records"] == 1
    assert job.row_errors.get(row=3).value == "not-an-email"
    assert not Customer.objects.exists()
    assert not Identity.objects.exists()
    with pytest.raises(MappingError, match="skip the listed bad rows"):
        import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    assert not Customer.objects.exists()


def test_accepting_to_skip_the_bad_rows_imports_only_the_good_ones(crm):
    job = run(validate(upload((HEADER + BAD).encode(), department=crm)), skip=True)
    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"]["records_skipped"] == 4
    assert job.result["counts"]["rows_imported"] == 1
    assert list(Identity.objects.values_list("value", flat=True).order_by("value")) == [
        "P010",
        "good@example.jp",
    ]


def test_reimporting_the_same_file_changes_nothing_and_says_so(crm):
    data = (HEADER + ROWS).encode()
    first = import_file(data, department=crm)
    snapshot = (
        list(Customer.objects.order_by("pk").values()),
        list(Identity.objects.order_by("pk").values_list("kind", "value", "customer_id")),
        list(Consent.objects.order_by("pk").values_list("customer_id", "channel", "status")),
        ConsentChange.objects.count(),
    )
    second_job = upload(data, department=crm)
    assert second_job.result["duplicate_of"]["id"] == first.pk
    second = run(validate(second_job))
    assert second.result["counts"] == {
        "rows_imported": 2,
        "records_skipped": 0,
        "profiles_created": 0,
        "profiles_updated": 0,
        "consents_changed": 0,
        "consents_kept": 0,
    }
    assert snapshot == (
        list(Customer.objects.order_by("pk").values()),
        list(Identity.objects.order_by("pk").values_list("kind", "value", "customer_id")),
        list(Consent.objects.order_by("pk").values_list("customer_id", "channel", "status")),
        ConsentChange.objects.count(),
    )


def test_consents_and_typed_attributes_are_written_with_history(crm):
    AttributeDefinition.objects.create(
        owner_department=crm, key="shoe_size", label="Shoe size", type="number"
    )
    data = "email,shoe_size,メール配信\nhanako@example.jp,23.5,yes\nken@example.jp,x,no\n"
    job = validate(upload(data.encode(), department=crm))
    assert list(job.row_errors.values_list("row", "column", "reason")) == [
        (3, "shoe_size", "not a number")
    ]
    job = run(job, skip=True)
    hanako = Identity.objects.get(value="hanako@example.jp").customer
    assert hanako.attributes == {"shoe_size": 23.5}
    consent = hanako.consents.get(channel="email")
    assert consent.status == Consent.Status.GRANTED
    assert consent.changes.get().source == "pos"
    later = "email,メール配信\nhanako@example.jp,いいえ\n"
    import_file(later.encode(), department=crm)
    consent.refresh_from_db()
    assert consent.status == Consent.Status.WITHDRAWN
    assert consent.changes.count() == 2


def test_a_reimport_never_resubscribes_a_withdrawn_consent_and_counts_it_as_kept(crm):
    import_file("email,メール配信\nhanako@example.jp,はい\n".encode(), department=crm)
    hanako = Identity.objects.get(value="hanako@example.jp").customer
    consent_set(customer=hanako, channel="email", status="withdrawn", source="unsubscribe", by=None)

    job = import_file(
        "email,メール配信\nhanako@example.jp,はい\nken@example.jp,はい\n".encode(),
        department=crm,
        source="web",
    )

    consent = hanako.consents.get(channel="email")
    assert (consent.status, consent.source) == (Consent.Status.WITHDRAWN, "unsubscribe")
    assert consent.changes.count() == 2
    assert job.status == ImportJob.Status.DONE
    assert not job.row_errors.exists()
    counts = job.result["counts"]
    assert (counts["consents_kept"], counts["consents_changed"]) == (1, 1)
    ken = Identity.objects.get(value="ken@example.jp").customer
    assert ken.consents.get().status == Consent.Status.GRANTED


def test_the_person_and_staff_can_still_grant_again_after_an_import_kept_the_withdrawal(
    crm, crm_editor
):
    import_file("email,メール配信\nhanako@example.jp,いいえ\n".encode(), department=crm)
    import_file("email,メール配信\nhanako@example.jp,はい\n".encode(), department=crm)
    hanako = Identity.objects.get(value="hanako@example.jp").customer
    assert hanako.consents.get().status == Consent.Status.WITHDRAWN

    consent_set(customer=hanako, channel="email", status="granted", source="staff", by=crm_editor)

    assert hanako.consents.get().status == Consent.Status.GRANTED


def test_a_withdrawal_anywhere_in_one_file_wins_over_a_later_row_of_the_same_person(crm):
    job = import_file(
        "email,メール配信\nhanako@example.jp,いいえ\nHanako@example.jp,はい\n".encode(),
        department=crm,
    )

    hanako = Identity.objects.get(value="hanako@example.jp").customer
    assert hanako.consents.get().status == Consent.Status.WITHDRAWN
    assert job.result["counts"]["consents_changed"] == 1


def test_withdrawals_kept_add_up_over_chunks(crm, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    emails = [f"p{n}@example.jp" for n in range(5)]
    import_file(
        ("email,メール配信\n" + "".join(f"{e},いいえ\n" for e in emails)).encode(),
        department=crm,
    )

    job = import_file(
        ("email,メール配信\n" + "".join(f"{e},はい\n" for e in emails)).encode(),
        department=crm,
    )

    assert job.result["counts"]["consents_kept"] == 5
    assert job.result["counts"]["consents_changed"] == 0
    assert not Consent.objects.filter(status=Consent.Status.GRANTED).exists()


def _people_files(rows: int, overlap: int) -> tuple[bytes, bytes]:
    """A web shop export (emails) and a POS list (phones) sharing ``overlap`` people."""
    web = ["email,family_name"] + [f"user{i}@shop.example.jp,Web{i}" for i in range(rows)]
    pos = ["会員番号,電話番号,メールアドレス"]
    for i in range(rows):
        email = f"user{i}@shop.example.jp" if i < overlap else ""
        pos.append(f"M{i:07d},090{i:08d},{email}")
    return ("\n".join(web) + "\n").encode(), ("\n".join(pos) + "\n").encode()


def test_two_overlapping_files_give_exactly_one_profile_per_person(crm, monkeypatch):
    rows = int(os.environ.get("IMPORT_TEST_ROWS", "2000"))
    overlap = rows // 4
    monkeypatch.setattr(imports, "CHUNK_SIZE", max(rows // 3, 1))
    web, pos = _people_files(rows, overlap)
    first = import_file(web, department=crm, source="webshop", name="web.csv")
    second = import_file(pos, department=crm, source="pos", name="pos.csv")
    assert first.result["counts"]["profiles_created"] == rows
    assert second.result["counts"]["profiles_created"] == rows - overlap
    assert Customer.objects.filter(merged_into__isnull=True).count() == 2 * rows - overlap
    both = Customer.objects.filter(identities__kind="phone").filter(identities__kind="email")
    assert both.distinct().count() == overlap


def test_an_interrupted_import_resumes_from_its_checkpoint(crm, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    queued: list[str] = []
    monkeypatch.setattr(imports, "_queue", lambda task, job_id: queued.append(task))
    data = "email\n" + "".join(f"p{i}@example.jp\n" for i in range(5))
    job = validate(upload(data.encode(), department=crm))
    job = import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    job = import_job_run(job_id=job.pk, budget_seconds=0)
    assert job.status == ImportJob.Status.IMPORTING
    assert queued == ["customers.tasks.run_import"]
    assert job.result["checkpoint_row"] == 3
    assert Identity.objects.count() == 2
    job = run_pending_import(job=job)
    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"]["profiles_created"] == 5
    assert Identity.objects.count() == Customer.objects.count() == 5


# --------------------------------------------------------------------------- web pages


def test_the_whole_flow_through_the_pages(
    client, crm_editor, crm, django_capture_on_commit_callbacks
):
    client.force_login(crm_editor)
    file = SimpleUploadedFile("members.csv", (HEADER + ROWS).encode("cp932"))
    response = client.post(
        reverse("customers:import_upload"),
        {"file": file, "kind": "customers", "source": "pos", "department": crm.pk},
    )
    job = ImportJob.objects.get()
    assert response.url == reverse("customers:import_mapping", args=[job.pk])
    assert (job.owner_department, job.created_by, job.status) == (crm, crm_editor, "uploaded")
    page = client.get(response.url)
    assert page.status_code == 200
    assert "山田" in page.content.decode()
    assert page.context["columns"][0]["selected"] == "email"
    posted = {f"col_{c['index']}": c["selected"] for c in page.context["columns"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("customers:import_mapping", args=[job.pk]), posted)
    assert response.url == reverse("customers:import_detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == ImportJob.Status.VALID
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("customers:import_run", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    detail = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()
    assert 'data-count="profiles_created">2<' in detail
    assert AuditLog.objects.filter(action="import.done").exists()


def test_progress_partial_polls_while_running_and_reloads_when_done(client, crm_editor, crm):
    client.force_login(crm_editor)
    job = upload((HEADER + ROWS).encode(), department=crm, by=crm_editor)
    ImportJob.objects.filter(pk=job.pk).update(status="validating", processed_rows=1)
    url = reverse("customers:import_progress", args=[job.pk])
    running = client.get(url, headers={"HX-Request": "true"})
    body = running.content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert '<progress id="import-progress-bar" value="1" max="2"' in body
    assert "HX-Refresh" not in running.headers
    ImportJob.objects.filter(pk=job.pk).update(status="valid", processed_rows=2)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.headers["HX-Refresh"] == "true"
    assert "every 1s" not in done.content.decode()


def test_invalid_file_report_page_lists_rows_and_offers_skipping(client, crm_editor, crm):
    client.force_login(crm_editor)
    job = validate(upload((HEADER + BAD).encode(), department=crm, by=crm_editor))
    page = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()
    assert "not a valid email address" in page
    assert 'name="skip_invalid_rows"' in page
    refused = client.post(reverse("customers:import_run", args=[job.pk]))
    assert refused.status_code == 400
    assert not Customer.objects.exists()


def test_report_masks_rejected_values_without_personal_data_access(
    client, crm_editor, crm_pii_viewer, crm
):
    job = validate(upload((HEADER + BAD).encode(), department=crm, by=crm_editor))
    error = job.row_errors.exclude(value="").first()

    client.force_login(crm_editor)
    masked = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()
    client.force_login(crm_pii_viewer)
    shown = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()

    assert f"<td>{error.value[:1]}***</td>" in masked
    assert f"<td>{error.value}</td>" not in masked
    assert f"<td>{error.value}</td>" in shown


def test_a_viewer_cannot_upload_or_start_an_import(client, crm_viewer, crm):
    client.force_login(crm_viewer)
    assert client.get(reverse("customers:import_upload")).status_code == 403
    job = validate(upload((HEADER + ROWS).encode(), department=crm))
    assert client.get(reverse("customers:import_detail", args=[job.pk])).status_code == 200
    assert client.post(reverse("customers:import_run", args=[job.pk])).status_code == 403
    assert client.post(reverse("customers:import_mapping", args=[job.pk]), {}).status_code == 403
    assert ImportJob.objects.get().status == ImportJob.Status.VALID


def test_another_department_cannot_see_the_job(client, sales_editor, crm):
    client.force_login(sales_editor)
    job = upload((HEADER + ROWS).encode(), department=crm)
    for name in ("import_detail", "import_mapping", "import_progress"):
        assert client.get(reverse(f"customers:{name}", args=[job.pk])).status_code == 404
    assert client.post(reverse("customers:import_run", args=[job.pk])).status_code == 404
    listing = client.get(reverse("customers:imports"))
    assert list(listing.context["page_obj"]) == []


def test_imports_list_shows_the_departments_jobs(
    client, crm_editor, crm, django_assert_num_queries
):
    for _ in range(3):
        upload((HEADER + ROWS).encode(), department=crm)
    client.force_login(crm_editor)
    client.get(reverse("customers:imports"))
    with django_assert_num_queries(7):
        response = client.get(reverse("customers:imports"))
    assert len(response.context["page_obj"]) == 3
    assert "members.csv" in response.content.decode()


# --------------------------------------------------------------------------- command


def test_command_prints_the_report_and_fails_on_an_invalid_file(crm, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes((HEADER + BAD).encode())
    out = StringIO()
    with pytest.raises(CommandError, match="5 errors: nothing was imported"):
        call_command("import_customers", str(path), source="pos", department="crm", stdout=out)
    assert "row 3, column メールアドレス: not a valid email address" in out.getvalue()
    assert "row 5, column -: no identifier" in out.getvalue()
    assert not Customer.objects.exists()


def test_command_imports_with_a_given_mapping_or_skipping_bad_rows(crm, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("mail address,tel\nx@example.jp,03-1234-5678\nbad,\n", encoding="utf-8")
    out = StringIO()
    call_command(
        "import_customers",
        str(path),
        source="pos",
        department="crm",
        mapping='{"mail address": "email", "tel": "phone"}',
        skip_invalid=True,
        stdout=out,
    )
    assert "row 3, column mail address: not a valid email address" in out.getvalue()
    assert "profiles_created=1" in out.getvalue()
    assert Identity.objects.get(kind="phone").value == "+81312345678"
    assert ImportRowError.objects.count() == 1


def test_a_later_file_updates_dates_attributes_and_consents_of_existing_profiles(crm):
    AttributeDefinition.objects.create(
        owner_department=crm, key="rank", label="Rank", type="choice", choices=["gold", "silver"]
    )
    import_file(
        "email,birth_date,rank,メール配信\na@example.jp,1990-01-02,gold,はい\n".encode(),
        department=crm,
    )
    customer = Identity.objects.get(value="a@example.jp").customer
    before = customer.updated_at
    job = import_file(
        (
            "email,birth_date,rank,メール配信,name\n"
            "a@example.jp,1991-03-04,silver,いいえ,\n"
            "b@example.jp,,,,佐藤 健\n"
            "B@example.jp,,,はい,佐藤 健二\n"
        ).encode(),
        department=crm,
        source="web",
    )
    customer.refresh_from_db()
    assert str(customer.birth_date) == "1991-03-04"
    assert customer.attributes == {"rank": "silver"}
    assert customer.updated_at > before
    assert customer.consents.get().status == Consent.Status.WITHDRAWN
    assert customer.consents.get().changes.count() == 2
    other = Identity.objects.get(value="b@example.jp").customer
    assert (other.family_name, other.given_name) == ("佐藤", "健二")
    assert other.consents.get().changes.get().source == "web"
    assert job.result["counts"] == {
        "rows_imported": 3,
        "records_skipped": 0,
        "profiles_created": 1,
        "profiles_updated": 1,
        "consents_changed": 2,
        "consents_kept": 0,
    }
