"""Importing a member list in Chromium: upload, map the columns, validate, watch the progress.

The q2 tasks are captured instead of queued, and the test runs each one itself while the
page polls, so the progress bar is seen moving from running to done through htmx.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from customers import imports, tasks
from customers.models import Customer, ImportJob
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"

SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"
CSV = (
    "会員番号,メールアドレス,姓,名,Shoe\n"
    "P001,hanako@example.jp,山田,花子,23\n"
    "P002,taro@example.jp,佐藤,太郎,27\n"
    "P003,,鈴木,一郎,26\n"
)


@pytest.fixture
def queued(monkeypatch, media_in_tmp) -> list[tuple[str, int]]:
    captured: list[tuple[str, int]] = []
    monkeypatch.setattr(imports, "_queue", lambda task, job_id: captured.append((task, job_id)))
    return captured


def run_task(task: str, job_id: int) -> None:
    """Run a captured task in another thread, as a q2 worker would."""
    function = getattr(tasks, task.rsplit(".", 1)[1])
    worker = threading.Thread(target=function, args=(job_id,))
    worker.start()
    worker.join()


def test_upload_map_validate_and_import_with_a_live_progress_bar(
    live_server, page, crm, queued, tmp_path
):
    from config.org.models import Role

    UserFactory(username="importer", department=crm, department__role=Role.EDITOR)
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "importer")
    page.fill("#id_password", "correct-horse-battery")
    page.click(SUBMIT)
    page.wait_for_url(lambda url: urlsplit(url).path == "/")

    members = tmp_path / "members.csv"
    members.write_bytes(CSV.encode("cp932"))
    page.goto(live_server.url + "/customers/imports/upload/")
    page.set_input_files("#id_file", str(members))
    page.fill("#id_source", "pos")
    page.get_by_role("button", name="Upload").click()

    page.wait_for_url(lambda url: urlsplit(url).path.endswith("/mapping/"))
    expect(page.get_by_text("山田")).to_be_visible()
    expect(page.get_by_label("会員番号")).to_have_value("pos")
    expect(page.get_by_label("メールアドレス")).to_have_value("email")
    expect(page.get_by_label("Shoe")).to_have_value("")
    page.get_by_label("姓").select_option("family_name")
    page.screenshot(path=SCREENSHOTS / "import-mapping.png", full_page=True)
    page.get_by_role("button", name="Validate").click()

    page.wait_for_url(lambda url: urlsplit(url).path.endswith(f"/{queued[0][1]}/"))
    progress = page.locator("#import-progress")
    expect(progress).to_contain_text("Validating")
    expect(progress).to_have_attribute("hx-trigger", "every 1s")
    run_task(*queued.pop())
    # The poll notices the end and reloads the page, which shows the report.
    expect(page.get_by_text("The file is valid: 3 rows can be imported.")).to_be_visible()
    expect(page.locator("#import-progress-text")).to_contain_text("3 of 3 rows (100%)")

    page.get_by_role("button", name="Import").click()
    expect(progress).to_contain_text("Importing")
    run_task(*queued.pop())
    expect(page.locator("#import-progress .import-status")).to_have_text("Imported")
    expect(page.locator("#import-progress-bar")).to_have_attribute("value", "3")
    expect(page.locator("#import-progress-bar")).to_have_attribute("max", "3")
    expect(page.locator('[data-count="profiles_created"]')).to_have_text("3")
    expect(page.locator('[data-count="rows_imported"]')).to_have_text("3")
    assert not progress.get_attribute("hx-trigger")
    page.screenshot(path=SCREENSHOTS / "import-done.png", full_page=True)

    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.DONE
    assert set(Customer.objects.values_list("family_name", flat=True)) == {"山田", "佐藤", "鈴木"}
