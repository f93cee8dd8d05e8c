"""P6 - approval -> execution resumed, and cron due -> run started.

One Celery worker (io and default queues), beat with the database scheduler, the fake
provider at zero latency.

Approvals: ``--p6-approvals`` runs of an agent whose only tool is held for a person (a
structured constraint, ``requires_approval_for``) are started and reach
``waiting_approval``; then, one after the other, each request is approved with
``approvals.services.approval_resolve`` (the service the pages and the API call) and the
time from its commit to the run's resume (the runtime's "Resuming from the last committed
step." log row, written by the worker once it claimed the run and loaded it) is measured.

Cron:
- the platform's own path when it exists in this database (the triggers app's
  ``ScheduledExecution``, kept in step with django-celery-beat): a ``* * * * *`` schedule of
  the bench agent for ``--p6-cron-minutes`` minutes; due = the tick it ran for
  (``trigger_data.scheduled_for``), run start = the row's ``started_at``;
- always, the same machinery with known due times: ``--p6-cron-samples`` one-off
  ``ClockedSchedule`` PeriodicTasks a few seconds apart fire ``bench.cron_probe``, which starts a
  run of the bench agent with trigger_type schedule (beat -> broker -> worker ->
  ``execution_start`` -> io queue -> claim); due -> probe started and due -> run started.
  With ``--p6-cron-minutes`` > 0 and no platform cron path, a ``* * * * *`` crontab of the probe
  is added (due = the minute it fired in).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from agents.services.agents import agent_activate
from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from bench import data
from bench.env import Processes, redis, wait_until
from bench.report import Figure, percentile, summary
from bench.tooling import TRANSFER
from executions.models import TERMINAL_STATUSES, Execution, ExecutionLog
from executions.triggers.schedules import schedule_create, schedule_delete

TARGET_APPROVAL_P95_MS = 500.0
TARGET_CRON_S = 1.0
RESUME_LOG = "Resuming from the last committed step."


# -- approvals -----------------------------------------------------------------------------


def approvals(owner: data.Tenant, count: int) -> dict[str, Any]:
    agent = data.agent(
        owner,
        "P6 approval",
        allowed_tools=[TRANSFER],
        constraints=[{"text": "Transfers wait for a person's approval.", "requires_approval_for": [TRANSFER]}],
    )
    started = data.start_runs(owner, agent, count, "Transfer the funds.")
    wait_until(
        lambda: Execution.objects.filter(pk__in=started.ids, status="waiting_approval").count() == count,
        120,
        "runs waiting for approval",
    )
    samples = []
    for execution_id in started.ids:
        approval = ApprovalRequest.objects.get(execution_id=execution_id, status="pending")
        before = time.time()
        approval_resolve(approval=approval, actor=owner.actor, approved=True, note="bench")
        committed = time.time()  # the resolve's transaction committed and the run was queued

        def resumed(eid: Any = execution_id) -> bool:
            return ExecutionLog.objects.filter(execution_id=eid, message=RESUME_LOG).exists()

        wait_until(resumed, 60, "the resumed run", interval=0.002)
        log = ExecutionLog.objects.filter(execution_id=execution_id, message=RESUME_LOG).earliest("id")
        samples.append(
            {
                "resolve_ms": (committed - before) * 1000,
                "resume_ms": (log.timestamp.timestamp() - committed) * 1000,
            }
        )
        time.sleep(0.05)
    wait_until(
        lambda: Execution.objects.filter(pk__in=started.ids, status__in=TERMINAL_STATUSES).count() == count,
        120,
        "approved runs to finish",
    )
    statuses = list(Execution.objects.filter(pk__in=started.ids).values_list("status", flat=True))
    return {
        "samples": len(samples),
        "resume_ms": summary([s["resume_ms"] for s in samples]),
        "resolve_ms": summary([s["resolve_ms"] for s in samples]),
        "completed": statuses.count("completed"),
        "statuses": {s: statuses.count(s) for s in set(statuses)},
    }


# -- cron ----------------------------------------------------------------------------------


def platform_cron_available() -> bool:
    """Whether the triggers app's schedules exist here (code and table)."""
    try:
        from executions.models import ScheduledExecution  # type: ignore[attr-defined]  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
        from executions.triggers import schedules  # noqa: F401, PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
    except ImportError:
        return False

    return ScheduledExecution._meta.db_table in connection.introspection.table_names()


def platform_cron_schedule(owner: data.Tenant, agent: Any) -> Any:
    # Triggers (cron among them) start only active agents.
    agent = agent_activate(actor=owner.actor, agent=agent)
    return schedule_create(
        actor=owner.actor,
        agent=agent,
        data={"cron_expression": "* * * * *", "timezone": "UTC", "input": {"task": "Scheduled run."}},
    )


def platform_cron_samples(agent_id: Any) -> list[float]:
    out = []
    for row in Execution.objects.filter(agent_id=agent_id, trigger_type="schedule").values(
        "trigger_data", "started_at"
    ):
        due = (row["trigger_data"] or {}).get("scheduled_for")
        if due and row["started_at"]:
            out.append((row["started_at"] - datetime.fromisoformat(due)).total_seconds())
    return out


def clocked_probes(agent_id: Any, key: str, count: int, *, first_in: float, spacing: float) -> list[datetime]:
    """One-off PeriodicTasks firing bench.cron_probe at known times; returns the due times."""
    start = datetime.now(UTC) + timedelta(seconds=first_in)
    due_times = []
    for i in range(count):
        due = (start + timedelta(seconds=i * spacing)).replace(microsecond=0)
        clocked = ClockedSchedule.objects.create(clocked_time=due)
        PeriodicTask.objects.create(
            name=f"bench-clocked-{key}-{i}",
            task="bench.cron_probe",
            clocked=clocked,
            one_off=True,
            kwargs=json.dumps({"key": key, "sample": i, "agent_id": str(agent_id)}),
            queue="default",
        )
        due_times.append(due)
    return due_times


def crontab_probe(agent_id: Any, key: str) -> None:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.create(
        name=f"bench-crontab-{key}",
        task="bench.cron_probe",
        crontab=crontab,
        kwargs=json.dumps({"key": key, "sample": -1, "agent_id": str(agent_id)}),
        queue="default",
    )


def probe_samples(key: str, due_times: list[datetime] | None) -> list[dict[str, float]]:
    """(due -> probe began, due -> run started) per fired probe; due of a crontab probe =
    the whole minute it began in."""
    out = []
    for field, value in redis().hgetall(key).items():
        sample = int(field)
        began_text, execution_id = value.decode().split(":", 1)
        began = float(began_text)
        if due_times is not None and 0 <= sample < len(due_times):
            due = due_times[sample].timestamp()
        else:
            due = began - (began % 60)
        row = Execution.objects.filter(pk=execution_id).values("started_at").first()
        run_started = row["started_at"].timestamp() if row and row["started_at"] else None
        out.append({"probe_s": began - due, "run_start_s": None if run_started is None else run_started - due})
    return out


def probes_started(key: str) -> bool:
    ids = [value.decode().split(":", 1)[1] for value in redis().hvals(key)]
    return not Execution.objects.filter(pk__in=ids, started_at__isnull=True).exists()


def cleanup_periodic_tasks(prefix: str) -> None:
    PeriodicTask.objects.filter(name__startswith=prefix).delete()


def run(args: Any) -> Figure:
    figure = Figure("P6", "approval -> resume latency; cron due -> run start")
    key = uuid.uuid4().hex[:10]
    clocked_key, crontab_key = f"bench:cron:{key}", f"bench:crontab:{key}"
    platform = platform_cron_available()
    owner = data.tenant("bench-runtime")
    cron_agent = data.agent(owner, "P6 cron")
    schedule = None
    try:
        with Processes() as procs:
            provider = procs.fake_provider(latency_ms=0)
            procs.worker(queues="io,default", concurrency=8, provider_url=provider)
            minutes = args.p6_cron_minutes
            if minutes and platform:
                try:
                    schedule = platform_cron_schedule(owner, cron_agent)
                except Exception as exc:  # the triggers app is still moving: fall back, say so
                    platform = False
                    figure.note(f"The platform's schedule could not be created ({type(exc).__name__}: {exc}).")
            if minutes and not platform:
                crontab_probe(cron_agent.pk, crontab_key)
            spacing = 2.0
            due_times = clocked_probes(cron_agent.pk, clocked_key, args.p6_cron_samples, first_in=12.0, spacing=spacing)
            began = time.time()
            procs.beat()
            approval = approvals(owner, args.p6_approvals)
            print(f"[P6] approval -> resume p95 {approval['resume_ms']['p95']:.0f} ms", flush=True)
            last_due = due_times[-1].timestamp() if due_times else time.time()
            wait_until(
                lambda: len(redis().hkeys(clocked_key)) >= len(due_times) or time.time() > last_due + 60,
                last_due - time.time() + 90,
                "the clocked probes",
                interval=0.5,
            )
            wait_until(lambda: probes_started(clocked_key), 60, "the probes' runs to start", interval=0.5)
            if minutes:
                # Wait for that many whole-minute ticks (plus the run they start).
                until = began - (began % 60) + 60 * minutes + 5
                print(f"[P6] waiting {until - time.time():.0f} s for {minutes} cron ticks", flush=True)
                time.sleep(max(0.0, until - time.time()))
            clocked = probe_samples(clocked_key, due_times)
            crontab = (
                [{"run_start_s": s} for s in platform_cron_samples(cron_agent.pk)]
                if platform
                else probe_samples(crontab_key, None)
            )
    finally:
        cleanup_periodic_tasks(f"bench-clocked-{clocked_key}")
        cleanup_periodic_tasks(f"bench-crontab-{crontab_key}")
        if schedule is not None:
            schedule_delete(actor=owner.actor, schedule=schedule)

    clocked_run = [s["run_start_s"] for s in clocked if s["run_start_s"] is not None]
    clocked_probe = [s["probe_s"] for s in clocked]
    crontab_run = [s["run_start_s"] for s in crontab if s.get("run_start_s") is not None]
    figure.details = {
        "approvals": approval,
        "cron_clocked": {
            "fired": len(clocked),
            "expected": args.p6_cron_samples,
            "due_to_probe_s": summary(clocked_probe),
            "due_to_run_start_s": summary(clocked_run),
        },
        "cron_crontab": {
            "path": "platform ScheduledExecution" if platform else "bench.cron_probe crontab",
            "samples": len(crontab_run),
            "due_to_run_start_s": summary(crontab_run),
        },
    }
    p95 = approval["resume_ms"]["p95"]
    figure.add(
        "approval -> run resumed, p95",
        p95,
        unit="ms",
        target=f"<= {TARGET_APPROVAL_P95_MS:g} ms",
        met=p95 is not None and p95 <= TARGET_APPROVAL_P95_MS,
    )
    worst = max(clocked_run, default=None)
    figure.add(
        "cron due -> run started, worst (clocked, beat)",
        worst,
        unit="s",
        target=f"<= {TARGET_CRON_S:g} s",
        met=worst is not None and worst <= TARGET_CRON_S and len(clocked_run) == args.p6_cron_samples,
    )
    if crontab_run:
        figure.add(
            "cron due -> run started, worst (* * * * *)",
            max(crontab_run),
            unit="s",
            target=f"<= {TARGET_CRON_S:g} s",
            met=max(crontab_run) <= TARGET_CRON_S,
        )
    figure.note(
        f"Approvals: {approval['samples']} resolved one after the other through approval_resolve; from its commit to "
        f"the worker's resume: p50 {fmt_ms(approval['resume_ms']['p50'])}, p95 {fmt_ms(p95)}, max "
        f"{fmt_ms(approval['resume_ms']['max'])}; {approval['completed']} of them then completed."
    )
    figure.note(
        f"Cron (clocked one-off schedules, {len(clocked)}/{args.p6_cron_samples} fired): due -> probe task began p50 "
        f"{fmt_s(percentile(clocked_probe, 50))}, max {fmt_s(max(clocked_probe, default=None))}; due -> run started "
        f"p50 {fmt_s(percentile(clocked_run, 50))}, max {fmt_s(worst)}."
    )
    if platform and args.p6_cron_minutes:
        figure.note(
            f"Platform cron path (ScheduledExecution '* * * * *', {len(crontab_run)} ticks): due -> run started "
            f"max {fmt_s(max(crontab_run, default=None))}."
        )
    elif not platform:
        figure.status = "partial"
        figure.note(
            "The platform's cron trigger (ScheduledExecution synced to django-celery-beat) is not in this "
            "database yet, so the cron figure is measured on the same machinery with the bench's probe task "
            "(beat -> broker -> worker -> execution_start with trigger_type schedule -> io queue -> claim)"
            + (
                f"; the every-minute crontab gave {len(crontab_run)} samples, max {fmt_s(max(crontab_run, default=None))}."
                if crontab_run
                else "."
            )
        )
    return figure


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"
