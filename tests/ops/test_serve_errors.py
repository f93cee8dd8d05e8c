"""``make run`` never shows Django's debug pages (security issue #14 follow-up): a view that
raises answers a plain 500 page (no traceback, no local variables, no settings) and the API
its error shape with the request id, while the landing page, static files, the admin (a
sign-in on 127.0.0.1 and on localhost), the approver pages and the API docs all work with
DEBUG off. ``DEBUG=true`` in the environment still turns it on, for developers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.ops.crash_urls import CANARY
from tests.ops.test_serve import _children, _free_port, _healthy
from tests.processes import ROOT, process_env, side_redis_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-enough-password-31"


def _make_run(port: int, log: Path) -> subprocess.Popen:
    """``make run`` (config.serve) as a person starts it: no DEBUG in the environment."""
    redis = side_redis_url()  # apart from the suite's queues, as test_serve
    env = process_env(
        DJANGO_SETTINGS_MODULE="tests.ops.crash_settings",
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        PORT=str(port),
        WORKER_CONCURRENCY="2",
    )
    env.pop("DEBUG", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "config.serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    children = _children(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _signs_in(base: str, username: str) -> None:
    """The admin's sign-in form, CSRF and all, as a browser on ``base`` sends it."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        form = browser.get("/admin/login/?next=/admin/")
        assert form.status_code == 200, (base, form.status_code)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        done = browser.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1), "next": "/admin/"},
            headers={"Origin": base, "Referer": f"{base}/admin/login/"},
        )
        assert done.status_code == 302 and done.headers["location"] == "/admin/", (
            base,
            done.status_code,
            done.text[:500],
        )
        assert browser.get("/admin/").status_code == 200


def test_make_run_answers_a_crash_with_a_plain_page_and_everything_works_without_debug(tmp_path, alice):
    alice.is_staff = alice.is_superuser = True
    hasher = PBKDF2PasswordHasher()  # make run's hashers (the test settings use MD5 only)
    alice.password = hasher.encode(PASSWORD, hasher.salt())
    alice.save()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _make_run(port, log)
    try:
        wait_for(lambda: _healthy(url) or proc.poll() is not None, 120, message="make run up")
        assert proc.poll() is None, log.read_text()[-3000:]
        web = httpx.Client(base_url=url, timeout=30)

        page = web.get("/crash/")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        text = page.text
        assert "Server error" in text and 'href="/"' in text, text[:2000]
        assert page.headers["X-Request-ID"] in text  # what to quote to an operator
        for leak in (
            "Traceback", "RuntimeError", "the view failed", CANARY, "crash_urls", "DATABASES", "INSTALLED_APPS",
            "SECRET_KEY", "django.db.backends.postgresql", "Request information", "Python Path",
        ):  # fmt: skip
            assert leak not in text, (leak, text[:3000])
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]

        api = web.get("/api/v1/crash/")
        assert api.status_code == 500
        error = api.json()["error"]
        assert error["code"] == "InternalError" and error["request_id"] == api.headers["X-Request-ID"]
        assert CANARY not in api.text
        # The operator's log has what the page does not show.
        wait_for(lambda: CANARY in log.read_text(), 10, message="the traceback in make run's output")

        # Everything else still works with DEBUG off.
        assert web.get("/").status_code == 200
        assert web.get("/static/admin/css/base.css").status_code == 200  # whitenoise
        docs = web.get("/api/docs/")
        assert docs.status_code == 200
        scripts = re.findall(r'src="(/static/[^"]+\.js)"', docs.text)
        assert scripts and all(web.get(src).status_code == 200 for src in scripts), scripts
        assert web.get("/api/schema/").status_code == 200 and web.get("/api/redoc/").status_code == 200
        approvals = web.get("/approvals/")
        assert approvals.status_code == 302 and approvals.headers["location"].startswith("/accounts/login/")
        assert web.get("/accounts/login/").status_code == 200
        missing = web.get("/no/such/page/")
        assert missing.status_code == 404 and "URLconf" not in missing.text
        web.close()
        for host in ("127.0.0.1", "localhost"):
            _signs_in(f"http://{host}:{port}", alice.username)
    finally:
        _stop(proc)


@pytest.mark.parametrize(("given", "debug"), [(None, "False"), ("true", "True"), ("0", "False")])
def test_make_run_turns_debug_off_unless_the_environment_turns_it_on(given, debug):
    """What config.serve hands its children (and uses itself): DEBUG off by default."""
    env = process_env()
    for name in ("DEBUG", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    if given is not None:
        env["DEBUG"] = given
    script = (
        "import os, config.serve, django; django.setup(); from django.conf import settings;"
        " print(os.environ['DEBUG'], settings.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == debug, result.stdout
