"""Cron expressions as beat runs them: five fields, a timezone, the tick times they give.

Both croniter (next/previous times, shown to people) and Celery's ``crontab`` (what beat
actually fires) must accept an expression: croniter alone would let through ``L`` and ``#``
forms that beat cannot run. An expression with no future time at all (``0 0 30 2 *``) is
refused too, since it would never fire.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache

from celery.schedules import crontab
from croniter import CroniterBadDateError, croniter


@cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def cron_normalise(expression: str) -> str:
    return " ".join(expression.split())


def cron_fields(expression: str) -> dict[str, str]:
    """The django-celery-beat CrontabSchedule fields of a (valid) 5-field expression."""
    minute, hour, day_of_month, month_of_year, day_of_week = cron_normalise(expression).split(" ")
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def cron_problem(expression: object) -> str | None:
    """Why ``expression`` cannot be a schedule (None when it can)."""
    if not isinstance(expression, str) or not expression.strip():
        return "A cron expression is required, such as '0 9 * * 1-5'."
    text = cron_normalise(expression)
    if len(text) > 120:
        return "At most 120 characters."
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        return f"{text!r} is not a valid 5-field cron expression (minute hour day month weekday)."
    try:
        croniter(text, datetime(2001, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC"))).get_next(datetime)
    except CroniterBadDateError:
        return f"{text!r} never fires (no such date)."

    try:
        crontab(**cron_fields(text))
    except (ValueError, TypeError) as exc:
        return f"{text!r} is not supported by the scheduler: {exc}"
    return None


def timezone_problem(name: object) -> str | None:
    if not isinstance(name, str) or name not in timezones():
        return f"Unknown timezone {name!r}; use an IANA name such as Europe/Paris."
    return None


def cron_next(expression: str, tz_name: str, after: datetime) -> datetime | None:
    """The first tick strictly after ``after`` (aware), in UTC; None if it never fires."""
    tz = zoneinfo.ZoneInfo(tz_name)
    try:
        moment = croniter(cron_normalise(expression), after.astimezone(tz)).get_next(datetime)
    except CroniterBadDateError:
        return None
    return moment.astimezone(zoneinfo.ZoneInfo("UTC"))


def cron_tick_at(expression: str, tz_name: str, moment: datetime) -> datetime | None:
    """The tick a fire at ``moment`` belongs to: the latest scheduled time at or before it.

    Ticks are whole minutes, so a fire a few seconds late (or early by clock skew within the
    minute) still names the same tick; this is what makes the tick a stable idempotency key.
    """
    tz = zoneinfo.ZoneInfo(tz_name)
    local = moment.astimezone(tz).replace(second=0, microsecond=0)
    text = cron_normalise(expression)
    if croniter.match(text, local):
        tick = local
    else:
        try:
            tick = croniter(text, local).get_prev(datetime)
        except CroniterBadDateError:
            return None
    return tick.astimezone(zoneinfo.ZoneInfo("UTC"))
