"""``manage.py demo`` end to end: a fresh database, the dashboard answering, Ctrl-C stopping all.

Runs against its own SQLite file whatever database the suite uses, because it is the
one-command local stack that ``make demo`` starts.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from config.demo.seed import DEMO_LOGINS

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout} s; output:\n{log.read_text()}")
        time.sleep(0.5)


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids of the group that still run (zombies waiting for a reaper do not count)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process checks read /proc (Linux)")
def test_demo_serves_the_login_page_and_stops_worker_and_server_on_ctrl_c(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "manage.py", "demo", "--size", "small"]
    command += ["--addrport", f"127.0.0.1:{port}"]
    with log.open("w") as out:
        demo = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: list[int] = []
    try:
        url = f"http://127.0.0.1:{port}/accounts/login/"
        wait_for(lambda: http_status(url) == 200, START_TIMEOUT, "login page answering 200", log)
        wait_for(lambda: "running." in log.read_text(), 30, "qcluster running", log)
        output = log.read_text()
        for login in DEMO_LOGINS:
            personal_data = "visible" if login.sees_personal_data else "masked"
            row = rf"^{re.escape(login.username)}\s+{login.password}\s.*\s{personal_data}$"
            assert re.search(row, output, re.M)
        assert "nothing leaves this machine" in output
        assert "SMS, LINE and push providers: not configured in the demo" in output
        with sqlite3.connect(tmp_path / "demo.sqlite3") as db:
            scheduled = {row[0] for row in db.execute("SELECT func FROM django_q_schedule")}
        assert "journeys.tasks.campaigns_tick" in scheduled
        children = [
            int(re.search(rf"Started the {name}.*, pid (\d+)", output).group(1))
            for name in ("task worker", "web server")
        ]
        assert all(live_processes_in_group(pid) for pid in children)

        demo.send_signal(signal.SIGINT)

        assert demo.wait(timeout=STOP_TIMEOUT) == 0
        assert [live_processes_in_group(pid) for pid in children] == [[], []]
    finally:
        for pgid in [demo.pid, *children]:
            for pid in live_processes_in_group(pgid):
                os.kill(pid, signal.SIGKILL)
        demo.wait(timeout=5)


def test_demo_mail_stays_on_the_machine():
    from config.demo.mail import demo_environment

    environ = {"CHANNEL_WEBHOOK_LINE": "https://line.example.com/hook", "SITE_URL": ""}
    smtp = "django.core.mail.backends.smtp.EmailBackend"

    changes = demo_environment(environ, email_backend=smtp, site_url="http://127.0.0.1:8000")

    assert changes == {
        "CHANNEL_WEBHOOK_LINE": "",
        "EMAIL_BACKEND": "config.demo.mail.DemoOutboxBackend",
        "SITE_URL": "http://127.0.0.1:8000",
    }


def test_a_local_email_backend_and_a_site_url_are_kept():
    from config.demo.mail import demo_environment

    console = "django.core.mail.backends.console.EmailBackend"
    environ = {"SITE_URL": "https://demo.example.com"}

    assert demo_environment(environ, email_backend=console, site_url="http://x:1") == {}


def test_the_demo_outbox_writes_files(tmp_path, settings):
    from django.core.mail import EmailMessage

    from config.demo.mail import DemoOutboxBackend

    backend = DemoOutboxBackend(file_path=str(tmp_path))
    backend.send_messages([EmailMessage("件名", "本文", "a@example.jp", ["b@example.jp"])])

    assert len(list(tmp_path.iterdir())) == 1
