"""tools.redaction: every spelling of a credential a call carried, out of what it gives back."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from tools.redaction import REDACTED, Redactor, secret_forms

TOKEN = "tok/8f+Q=z9Xa7Lm2Pq4Rw"


def test_the_forms_of_a_bearer_token():
    forms = secret_forms(f"Bearer {TOKEN}")
    assert {f"Bearer {TOKEN}", TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN), quote(TOKEN)} <= forms
    assert "Bearer" not in forms  # the scheme word is no secret


def test_the_forms_of_basic_credentials():
    header = "Basic " + base64.b64encode(b"svc-user:pa55:w0rd-Hx7Kd").decode()
    forms = secret_forms(header)
    # The whole pair, the password (everything after the first colon), and its pieces.
    assert {"svc-user:pa55:w0rd-Hx7Kd", "pa55:w0rd-Hx7Kd", "w0rd-Hx7Kd", "svc-user"} <= forms
    assert "pa55" not in forms  # shorter than MIN_SECRET_CHARS: too common to mask
    # A value configured as user:password is found again when a service base64-encodes it.
    assert base64.b64encode(b"svc-user:pa55:w0rd-Hx7Kd").decode() in secret_forms("svc-user:pa55:w0rd-Hx7Kd")


@pytest.mark.parametrize(
    "echo",
    [
        f"Bearer {TOKEN}",
        TOKEN,
        quote(TOKEN, safe=""),
        quote_plus(TOKEN),
        json.dumps({"t": TOKEN}),
        TOKEN[:11],  # cut short
        TOKEN[4:],  # the tail alone
    ],
)
def test_every_spelling_is_redacted(echo):
    redactor = Redactor([f"Bearer {TOKEN}"])
    redacted = redactor.text(f"you sent: {echo} (ok)")
    assert redacted.startswith("you sent: ") and redacted.endswith(" (ok)") and REDACTED in redacted
    for piece in (TOKEN, TOKEN[:8], TOKEN[-8:], quote(TOKEN, safe="")):
        assert piece not in redacted


def test_a_secret_split_across_fields_is_redacted_in_each():
    redactor = Redactor([TOKEN])
    answer = {"first": TOKEN[:10], "second": TOKEN[10:], TOKEN: "as a key", "n": [1, "plain"], "ok": True}
    assert redactor.value(answer) == {
        "first": REDACTED,
        "second": REDACTED,
        REDACTED: "as a key",
        "n": [1, "plain"],
        "ok": True,
    }


def test_json_escaped_and_doubly_escaped_forms():
    key = 'k3y"Zr\\Wq5Ty8Ui0Op'
    redactor = Redactor([key])
    once = json.dumps({"key": key})
    twice = json.dumps({"body": once})
    assert key not in redactor.text(once) and json.dumps(key)[1:-1] not in redactor.text(once)
    assert json.dumps(json.dumps(key))[1:-1] not in redactor.text(twice)


def test_ordinary_text_and_short_values_are_left_alone():
    assert Redactor([]).value({"a": "b"}) == {"a": "b"}
    assert not Redactor(["abc", ""])  # too short to be masked anywhere
    redactor = Redactor([f"Bearer {TOKEN}"])
    text = "Bearer tokens are described in RFC 6750; our order A-1 shipped."
    assert redactor.text(text) == text


def test_a_numeric_secret_echoed_as_a_number():
    assert Redactor(["73019284"]).value({"pin": 73019284, "count": 3}) == {"pin": REDACTED, "count": 3}


def test_a_long_answer_is_redacted_quickly():
    import time

    redactor = Redactor([f"Bearer {TOKEN}", "svc-user:pa55:w0rd-Hx7Kd"])
    text = ("lorem ipsum dolor sit amet " * 40_000) + TOKEN[5:15]  # ~1 MB, a fragment at the end
    started = time.perf_counter()
    redacted = redactor.text(text)
    assert time.perf_counter() - started < 1.0
    assert redacted.endswith(REDACTED) and TOKEN[5:15] not in redacted


@pytest.mark.django_db
def test_a_crashing_handler_logs_its_traceback_without_the_secret(tool_env, monkeypatch, caplog):
    from tools import handlers

    def leaky(call):
        call.carry(f"Bearer {TOKEN}")
        raise RuntimeError(f"Illegal header value b'Bearer {TOKEN}'")

    monkeypatch.setitem(handlers.HANDLERS, "wait", leaky)
    caplog.set_level(logging.DEBUG)
    outcome = tool_env.call("wait", {"seconds": 1})
    assert outcome.status == "failed" and outcome.error == "The tool failed: RuntimeError."
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "Illegal header value" in logged and "RuntimeError" in logged
    assert TOKEN not in logged and TOKEN[:8] not in logged
