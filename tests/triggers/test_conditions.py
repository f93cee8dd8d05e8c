"""The condition language: what it accepts, what it means, what it refuses (never eval)."""

from __future__ import annotations

import pytest

from agents.triggers.conditions import (
    ConditionError,
    condition_parse,
    trigger_conditions_hold,
    trigger_conditions_problems,
)

DATA = {
    "payload": {
        "amount": 250,
        "stage": "won",
        "tags": ["vip", "emea"],
        "contact": {"email": "a@b.test", "score": 7.5, "active": True},
        "items": [{"sku": "A1"}, {"sku": "B2"}],
        "note": None,
    },
    "event": {"type": "crm.deal.closed"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload.amount > 100", True),
        ("payload.amount >= 250 and payload.amount <= 250", True),
        ("payload.amount < 100 or payload.stage == 'won'", True),
        ('payload.stage in ["won", "lost"]', True),
        ('payload.stage not in ["won", "lost"]', False),
        ("'vip' in payload.tags", True),
        ("'apac' in payload.tags", False),
        ("'@b.test' in payload.contact.email", True),
        ("payload.contact.score == 7.5 && payload.contact.active == true", True),
        ("!(payload.amount > 100)", False),
        ("not payload.note", True),
        ("payload.items.1.sku == 'B2'", True),
        ('payload["items"][0]["sku"] == "A1"', True),
        ("payload.missing.deeply == null", True),
        ("payload.missing > 3", False),  # null is not comparable: false, not an error
        ("payload.stage > 3", False),  # a string and a number: false
        ("payload.contact.active == 1", False),  # booleans are not numbers
        ("event.type == 'crm.deal.closed'", True),
        ("payload.amount > -1 and (payload.stage == 'lost' or payload.tags)", True),
        ("1 in 5", False),
    ],
)
def test_evaluation(text, expected):
    assert condition_parse(text).evaluate(DATA) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "payload.amount >",
        "payload.amount > > 3",
        "(payload.amount > 3",
        "payload.amount = 3",
        "__import__('os').system('true')",
        "payload.amount + 1 > 3",
        "lambda: 1",
        "payload.",
        "payload[1.5]",
        "'unterminated",
        "payload.amount > 3 extra",
        "(" * 40 + "true" + ")" * 40,
    ],
)
def test_refused_text(text):
    with pytest.raises(ConditionError):
        condition_parse(text)


def test_error_points_at_the_problem():
    with pytest.raises(ConditionError) as caught:
        condition_parse("payload.amount >> 3")
    assert caught.value.position == len("payload.amount >")
    assert "character 17" in str(caught.value)


def test_trigger_conditions_shapes():
    assert trigger_conditions_problems({}) == {}
    assert trigger_conditions_problems({"expression": "payload.amount > 3", "payload.stage": ["won", "lost"]}) == {}
    problems = trigger_conditions_problems(
        {"expression": "amount > 3", "payload.stage": {"x": 1}, "1 + 1": 2, "payload.a >": 1}
    )
    assert "payload." in problems["expression"]  # names must start with payload. or event.
    assert set(problems) == {"expression", "payload.stage", "1 + 1", "payload.a >"}
    assert trigger_conditions_problems("payload.a > 1") == {"": "Must be an object."}


def test_trigger_conditions_hold():
    assert trigger_conditions_hold({}, DATA)
    assert trigger_conditions_hold({"payload.stage": "won", "expression": "payload.amount > 100"}, DATA)
    assert trigger_conditions_hold({"payload.stage": ["won", "open"]}, DATA)
    assert not trigger_conditions_hold({"payload.stage": "lost"}, DATA)
    assert not trigger_conditions_hold({"expression": "payload.amount > 1000"}, DATA)
