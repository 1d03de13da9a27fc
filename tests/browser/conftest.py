"""Playwright fixtures: Debian's headless Chromium driving the live server.

Every test in this folder is marked ``browser``. Without Chromium the tests are skipped
loudly on a workstation and fail in CI, so a CI run can never pass without them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio event loop in the test thread, and Django refuses ORM
# calls from a thread with a running loop. The tests touch the ORM only to arrange data, never
# concurrently with the browser, so the guard can be lifted for this test process.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BROWSER_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"Chromium not installed at {CHROMIUM}: apt-get install chromium"
        if _running_in_ci():
            pytest.fail(f"{message} (CI is set, so browser tests must run)", pytrace=False)
        pytest.skip(f"{message} — browser tests SKIPPED")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# Content-Security-Policy violations: the policy is enforced (or, with CSP_REPORT_ONLY=1,
# reported), and every browser test fails on a violation, so a page that needs an inline
# script or style, eval or a foreign source cannot slip in unnoticed.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var violation = {
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile + ":" + event.lineNumber,
    sample: event.sample,
    page: event.documentURI,
  };
  window.__cspViolations.push(violation);
  window.__cspViolation(JSON.stringify(violation));
});
"""


def watch_csp(context, violations: list[str]) -> None:
    """Record ``context``'s CSP violations (events and console messages) in ``violations``."""

    def record(text: str) -> None:
        violations.append(text)

    context.expose_function("__cspViolation", record)
    context.add_init_script(CSP_LISTENER)

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    context.on("console", on_console)


@pytest.fixture(autouse=True)
def csp_violations(request):
    """Every context a browser test opens reports CSP violations; any one fails the test."""
    if "browser" not in request.fixturenames and "page" not in request.fixturenames:
        yield []
        return
    browser = request.getfixturevalue("browser")
    violations: list[str] = []
    new_context = browser.new_context

    def new_watched_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        watch_csp(context, violations)
        return context

    browser.new_context = new_watched_context
    try:
        yield violations
    finally:
        del browser.new_context
    if violations:
        pytest.fail(
            "Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(violations)),
            pytrace=False,
        )


@pytest.fixture
def page(browser):
    """A fresh page in its own context (no cookies shared between tests)."""
    context = browser.new_context(
        locale="en-US", timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()
