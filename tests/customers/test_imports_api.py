"""Imports API: upload → validation → run, the bad-row report, 409s, roles and scoping."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer, Identity, ImportJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

HEADER = "メールアドレス,電話番号,会員番号,姓,名,セイ,メイ,生年月日,メール配信\n"
ROWS = (
    "hanako@example.jp,090-1234-5678,P001,山田,花子,ヤマダ,ハナコ,1990/01/02,はい\n"
    "taro@example.jp,,P002,佐藤,太郎,サトウ,タロウ,1985-12-31,いいえ\n"
)
BAD = "good@example.jp,,P010,,,,,,\nnot-an-email,,,,,,,,\n,090-12,,,,,,,\n"


def csv_file(text: str, name: str = "members.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def post_upload(api, department, text: str, **extra):
    data = {
        "file": csv_file(text),
        "kind": "customers",
        "source": "pos",
        "department": department.pk,
    }
    data.update(extra)
    return api.post(reverse("import-job-list"), data, format="multipart")


def uploaded_job(api, user, department, text, capture) -> ImportJob:
    api.force_authenticate(user)
    with capture(execute=True):
        response = post_upload(api, department, text)
    assert response.status_code == 201, response.content
    return ImportJob.objects.get(pk=response.json()["id"])


def test_upload_validates_then_run_creates_the_customers(
    api, crm, crm_editor, django_capture_on_commit_callbacks
):
    api.force_authenticate(crm_editor)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(api, crm, HEADER + ROWS)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["mapping"]["メールアドレス"] == "email"
    assert body["owner_department"]["id"] == crm.pk
    assert body["links"]["errors"].endswith(f"/api/v1/imports/{body['id']}/errors/")
    assert "preview" not in body["result"]

    detail = api.get(reverse("import-job-detail", args=[body["id"]])).json()
    assert (detail["status"], detail["total_rows"], detail["error_count"]) == ("valid", 2, 0)
    assert detail["processed_rows"] == 2
    assert api.get(reverse("import-job-list")).json()["results"][0]["id"] == body["id"]

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(reverse("import-job-run", args=[body["id"]]), {}, format="json")
    assert started.status_code == 202, started.content
    detail = api.get(reverse("import-job-detail", args=[body["id"]])).json()
    assert detail["status"] == "done"
    assert detail["result"]["counts"]["profiles_created"] == 2
    assert Customer.objects.count() == 2
    assert Identity.objects.filter(kind="email", value="hanako@example.jp").exists()


def test_given_mapping_is_used_instead_of_the_guess(
    api, crm, crm_editor, django_capture_on_commit_callbacks
):
    api.force_authenticate(crm_editor)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(
            api, crm, HEADER + ROWS, mapping=json.dumps({"メールアドレス": "email"})
        )
    assert response.status_code == 201, response.content
    job = ImportJob.objects.get()
    assert job.mapping == {"メールアドレス": "email"}
    assert job.status == ImportJob.Status.VALID


def test_bad_rows_are_listed_and_the_run_is_refused_unless_skipping(
    api, crm, crm_editor, django_capture_on_commit_callbacks
):
    job = uploaded_job(api, crm_editor, crm, HEADER + BAD, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.INVALID

    response = api.get(reverse("import-job-errors", args=[job.pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    rows = [(e["row"], e["column"]) for e in body["results"]]
    assert rows == [(3, "メールアドレス"), (4, "電話番号")]
    assert "not a valid email address" in body["results"][0]["reason"]
    assert body["results"][0]["value"] != "not-an-email"  # masked without view_pii
    page = api.get(reverse("import-job-errors", args=[job.pk]), {"limit": 1, "offset": 1})
    assert [e["row"] for e in page.json()["results"]] == [4]

    refused = api.post(reverse("import-job-run", args=[job.pk]), {}, format="json")
    assert refused.status_code == 409
    assert "skip the listed bad rows" in refused.json()["detail"]
    assert not Customer.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(
            reverse("import-job-run", args=[job.pk]), {"skip_invalid_rows": True}, format="json"
        )
    assert started.status_code == 202, started.content
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"]["records_skipped"] == 2
    assert Customer.objects.count() == 1
    assert Identity.objects.filter(kind="email", value="good@example.jp").exists()


def test_pii_viewer_sees_the_bad_values(
    api, crm, crm_editor, crm_pii_viewer, django_capture_on_commit_callbacks
):
    job = uploaded_job(api, crm_editor, crm, HEADER + BAD, django_capture_on_commit_callbacks)
    api.force_authenticate(crm_pii_viewer)
    body = api.get(reverse("import-job-errors", args=[job.pk])).json()
    assert body["results"][0]["value"] == "not-an-email"


def test_run_before_validation_is_a_conflict(api, crm, crm_editor):
    api.force_authenticate(crm_editor)
    response = post_upload(api, crm, HEADER + ROWS)  # on-commit validation never runs
    assert response.status_code == 201
    refused = api.post(reverse("import-job-run", args=[response.json()["id"]]), format="json")
    assert refused.status_code == 409
    assert refused.json()["detail"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"kind": "shoes"}, "kind"),
        ({"source": ""}, "source"),
        ({"file": None}, "file"),
        ({"mapping": "not json"}, "mapping"),
        ({"mapping": json.dumps({"missing": "email"})}, "mapping"),
        ({"mapping": json.dumps(["email"])}, "mapping"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(api, crm, crm_editor, extra, field):
    api.force_authenticate(crm_editor)
    extra = {k: v for k, v in extra.items() if v is not None}
    data = {"kind": "customers", "source": "pos", "department": crm.pk, **extra}
    if field != "file":
        data.setdefault("file", csv_file(HEADER + ROWS))
    response = api.post(reverse("import-job-list"), data, format="multipart")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ImportJob.objects.exists()


def test_unreadable_file_is_refused_naming_the_file(api, crm, crm_editor):
    api.force_authenticate(crm_editor)
    data = {
        "file": csv_file("x", name="members.pdf"),
        "kind": "customers",
        "source": "pos",
        "department": crm.pk,
    }
    response = api.post(reverse("import-job-list"), data, format="multipart")
    assert response.status_code == 400
    assert "CSV or XLSX" in response.json()["file"][0]
    assert not ImportJob.objects.exists()


def test_a_department_not_yours_is_refused(api, crm, sales, crm_editor):
    api.force_authenticate(crm_editor)
    response = post_upload(api, sales, HEADER + ROWS)
    assert response.status_code == 400
    assert "department" in response.json()
    assert not ImportJob.objects.exists()


def test_a_viewer_cannot_upload_or_run(
    api, crm, crm_editor, crm_viewer, django_capture_on_commit_callbacks
):
    job = uploaded_job(api, crm_editor, crm, HEADER + ROWS, django_capture_on_commit_callbacks)
    api.force_authenticate(crm_viewer)
    assert post_upload(api, crm, HEADER + ROWS).status_code == 403
    assert api.get(reverse("import-job-detail", args=[job.pk])).status_code == 200
    assert api.post(reverse("import-job-run", args=[job.pk]), format="json").status_code == 403
    assert ImportJob.objects.get().status == ImportJob.Status.VALID


def test_another_department_gets_404(
    api, crm, crm_editor, sales_editor, django_capture_on_commit_callbacks
):
    job = uploaded_job(api, crm_editor, crm, HEADER + BAD, django_capture_on_commit_callbacks)
    api.force_authenticate(sales_editor)
    assert api.get(reverse("import-job-detail", args=[job.pk])).status_code == 404
    assert api.get(reverse("import-job-errors", args=[job.pk])).status_code == 404
    run = api.post(reverse("import-job-run", args=[job.pk]), {"skip_invalid_rows": True})
    assert run.status_code == 404
    assert api.get(reverse("import-job-list")).json()["results"] == []
    assert ImportJob.objects.get().status == ImportJob.Status.INVALID


def test_anonymous_is_refused(api, crm, crm_editor, django_capture_on_commit_callbacks):
    job = uploaded_job(api, crm_editor, crm, HEADER + ROWS, django_capture_on_commit_callbacks)
    api.force_authenticate(None)
    assert api.get(reverse("import-job-list")).status_code in {401, 403}
    assert api.get(reverse("import-job-detail", args=[job.pk])).status_code in {401, 403}
    assert api.get(reverse("import-job-errors", args=[job.pk])).status_code in {401, 403}
    assert api.post(reverse("import-job-run", args=[job.pk])).status_code in {401, 403}
    assert post_upload(api, crm, HEADER + ROWS).status_code in {401, 403}
    assert ImportJob.objects.count() == 1
