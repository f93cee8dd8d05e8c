"""Memory in the runtime: retrieval into the system prompt, extraction after the run,
conversation history, and an embedder outage — against the fake provider over HTTP."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from bench.fakes.script import error, text
from billing.models import UsageRecord
from executions.models import Execution, ExecutionLog
from executions.runtime.loop import run_execution
from executions.services import execution_start
from memory.models import Conversation, Episode, Memory
from memory.tasks import after_execution

pytestmark = pytest.mark.django_db(transaction=True)


def run(agent, org, task, fake, answer="Done.", **kw) -> Execution:
    fake.script(text(answer))
    execution, created = execution_start(agent=agent, organization=org, task=task, **kw)
    assert created
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error, execution.error_details)
    return execution


def system_prompt(request) -> str:
    messages = request.body["messages"]
    assert messages[0]["role"] == "system"
    return messages[0]["content"]


def test_relevant_memories_are_in_the_system_prompt(org, agent, store, providers_at_fake):
    store("Acme's invoices must be sent to billing@acme.test.", "fact")
    store("The customer prefers short answers.", "preference")
    store("Alice is allergic to peanuts.", "fact", subject_type="user", subject_id="alice")
    store("Bob is allergic to shellfish.", "fact", subject_type="user", subject_id="bob")
    store("Leads from fairs convert poorly.", "pattern")  # not a retrieved type by default

    execution = run(
        agent,
        org,
        "Where do Acme invoices go? Any allergies to consider?",
        providers_at_fake,
        context={"user_id": "alice"},
    )
    prompt = system_prompt(providers_at_fake.chat_requests[0])
    assert prompt.count("<retrieved_data>") == 1 and prompt.endswith("</retrieved_data>")
    assert (
        """<memory type="fact" trust="trusted" confidence="0.80">Acme's invoices must be sent to billing@acme.test."""
        "</memory>" in prompt
    )
    assert '<memory type="preference" trust="trusted" confidence="0.80">The customer prefers short answers.' in prompt
    assert "Alice is allergic to peanuts." in prompt.split("<retrieved_data>")[1]
    assert "Bob" not in prompt  # another subject's memory never reaches Alice's run
    assert "fairs" not in prompt
    log = ExecutionLog.objects.get(execution=execution, message__startswith="Retrieved")
    assert len(log.metadata["memory_ids"]) == 3
    assert Memory.objects.get(content__startswith="Alice").access_count == 1
    assert Memory.objects.get(content__startswith="Bob").access_count == 0


def test_run_without_a_subject_sees_only_shared_memories(org, agent, store, providers_at_fake):
    store("The office closes at 6 pm.", "fact")
    store("Alice works late on Fridays.", "fact", subject_type="user", subject_id="alice")
    run(agent, org, "When does the office close?", providers_at_fake)
    prompt = system_prompt(providers_at_fake.chat_requests[0])
    assert "The office closes at 6 pm." in prompt and "Alice" not in prompt


def test_other_agents_and_organizations_memories_stay_out(org, other_org, agent, other_agent, store, providers_at_fake):
    store("Secret of the other agent: the vault code is 1234.", agent=other_agent)
    store("Secret of the other organization: the vault code is 9876.", organization=other_org)
    run(agent, org, "What is the vault code?", providers_at_fake)
    assert "vault" not in system_prompt(providers_at_fake.chat_requests[0])


def test_embedder_outage_does_not_stop_the_run(org, agent, store, providers_at_fake, settings):
    store("Stored with the local model.")
    settings.MEMORY_EMBEDDER = "openai:text-embedding-3-small"
    providers_at_fake.script_embeddings(*[error(503)] * 6)
    execution = run(agent, org, "Anything to remember?", providers_at_fake, answer="Went on without memories.")
    assert execution.output == {"text": "Went on without memories."}
    warning = ExecutionLog.objects.get(execution=execution, level="warn", message__contains="Memory retrieval skipped")
    assert "text-embedding-3-small" in warning.message
    assert "retrieved_data" not in system_prompt(providers_at_fake.chat_requests[0])


def extraction(*memories, **extra) -> str:
    return json.dumps({"memories": list(memories), **extra})


def test_extraction_after_the_run(org, agent, store, providers_at_fake, embedder):
    existing = store("Acme pays its invoices 30 days late.", "pattern", confidence=0.6).memory
    execution = run(
        agent,
        org,
        "Chase Acme's unpaid invoice.",
        providers_at_fake,
        answer="Sent a reminder to Acme.",
        context={"user_id": "u-1"},
    )
    tokens_before, cost_before = execution.tokens_total, execution.cost
    providers_at_fake.script(
        text(
            extraction(
                {
                    "type": "outcome",
                    "content": "A reminder email got Acme to pay within a week.",
                    "confidence": 0.7,
                    "importance": 6,
                    "tags": ["acme", "billing"],
                },
                {"type": "pattern", "content": "Acme pays its invoices 30 days late!", "confidence": 0.5},
                {"type": "opinion", "content": "not a valid type"},
                lessons=["Send reminders early."],
                should_repeat=True,
                summary="Reminded Acme about an unpaid invoice.",
            ),
            usage={"input": 900, "output": 120},
        )
    )
    after_execution(str(execution.pk))

    request = providers_at_fake.chat_requests[-1]
    assert request.body["response_format"] == {"type": "json_object"}
    assert "Chase Acme's unpaid invoice." in request.body["messages"][1]["content"]

    outcome = Memory.objects.get(memory_type="outcome")
    assert outcome.content == "A reminder email got Acme to pay within a week."
    assert (outcome.source, outcome.source_execution_id) == ("extraction", execution.pk)
    assert (outcome.subject_type, outcome.subject_id) == ("user", "u-1")  # learned for this user only
    assert outcome.tags == ["acme", "billing"] and outcome.importance == 6
    # The near-copy of the shared pattern was learned in u-1's run, so it is u-1's own
    # memory: duplicates merge only within one subject, and the shared one is untouched.
    existing.refresh_from_db()
    assert existing.confidence == 0.6
    assert Memory.objects.filter(subject_id="u-1").count() == 2

    episode = Episode.objects.get(execution=execution)
    assert episode.outcome == "success" and episode.should_repeat is True
    assert episode.lessons_learned == ["Send reminders early."]
    assert episode.context_summary == "Reminded Acme about an unpaid invoice."
    assert episode.trigger_event == "manual" and episode.memories_extracted == 2

    # Counted like any LLM call: a usage record, and the run's tokens and cost.
    record = UsageRecord.objects.get(execution=execution, purpose="memory")
    assert (record.tokens_input, record.tokens_output) == (900, 120)
    execution.refresh_from_db()
    assert execution.tokens_total == tokens_before + 1020
    assert execution.cost == cost_before + record.cost and record.cost > Decimal(0)
    assert ExecutionLog.objects.filter(execution=execution, message__startswith="Memory extraction: 2 new").exists()

    # A second delivery of the task does nothing (no second model call, no second episode).
    calls = len(providers_at_fake.chat_requests)
    after_execution(str(execution.pk))
    assert len(providers_at_fake.chat_requests) == calls and Episode.objects.count() == 1


def test_extraction_merges_near_duplicates(org, agent, store, providers_at_fake):
    existing = store("The client prefers invoices as PDF attachments.", "preference", confidence=0.6).memory
    execution = run(agent, org, "Send the invoice.", providers_at_fake)
    providers_at_fake.script(
        text(
            extraction(
                {"type": "preference", "content": "The client prefers invoices as PDF attachments!", "confidence": 0.5}
            )
        )
    )
    after_execution(str(execution.pk))
    assert Memory.objects.count() == 1
    existing.refresh_from_db()
    assert existing.confidence == pytest.approx(0.8)
    assert ExecutionLog.objects.filter(execution=execution, message__contains="0 new, 1 merged").exists()


@pytest.mark.parametrize(
    "answer",
    ["not json at all", json.dumps({"facts": []}), json.dumps({"memories": "none"}), "```json\n[1, 2]\n```"],
)
def test_invalid_extraction_stores_nothing_and_says_why(org, agent, providers_at_fake, answer):
    execution = run(agent, org, "Say hello.", providers_at_fake)
    providers_at_fake.script(text(answer))
    after_execution(str(execution.pk))
    assert not Memory.objects.exists()
    assert Episode.objects.filter(execution=execution).exists()
    assert ExecutionLog.objects.filter(
        execution=execution, level="warn", message__startswith="Memory extraction stored nothing"
    ).exists()


def test_failed_run_gets_a_failure_episode(org, agent, providers_at_fake):
    providers_at_fake.script(*[error(400, "bad request")])
    execution, _ = execution_start(agent=agent, organization=org, task="This will fail.")
    run_execution(execution.pk)
    providers_at_fake.script(text(extraction({"type": "outcome", "content": "The provider refused the request."})))
    after_execution(str(execution.pk))
    episode = Episode.objects.get(execution_id=execution.pk)
    assert episode.outcome == "failure" and episode.should_repeat is False
    assert Memory.objects.get().memory_type == "outcome"


def test_conversation_continues_across_runs(org, agent, providers_at_fake, settings):
    conversation_id = uuid.uuid4()
    first = run(
        agent,
        org,
        "My name is Zoe.",
        providers_at_fake,
        answer="Nice to meet you, Zoe.",
        conversation_id=conversation_id,
    )
    conversation = Conversation.objects.get(pk=conversation_id)
    assert (conversation.agent_id, conversation.context_type, conversation.message_count) == (agent.pk, "session", 2)
    assert conversation.expires_at is not None

    run(agent, org, "What is my name?", providers_at_fake, answer="Zoe.", conversation_id=conversation_id)
    messages = providers_at_fake.chat_requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "My name is Zoe."),
        ("assistant", "Nice to meet you, Zoe."),
        ("user", "What is my name?"),
    ]
    conversation.refresh_from_db()
    assert conversation.message_count == 4
    # The after-run task appends again only if the hook could not: no duplicate turn.
    after_execution(str(first.pk))
    conversation.refresh_from_db()
    assert conversation.message_count == 4

    # The window keeps the newest turns (and never starts with an assistant turn).
    settings.MEMORY_HISTORY_MAX_MESSAGES = 3
    run(agent, org, "And now?", providers_at_fake, conversation_id=conversation_id)
    messages = providers_at_fake.chat_requests[-1].body["messages"]
    assert [m["content"] for m in messages[1:]] == ["What is my name?", "Zoe.", "And now?"]


def test_a_conversation_is_never_shared_across_agents_or_users(org, agent, other_agent, providers_at_fake):
    conversation_id = uuid.uuid4()
    run(agent, org, "Secret: 42.", providers_at_fake, conversation_id=conversation_id, context={"user_id": "ann"})
    run(other_agent, org, "What was the secret?", providers_at_fake, conversation_id=conversation_id)
    assert "Secret" not in json.dumps(providers_at_fake.chat_requests[-1].body["messages"])
    run(
        agent,
        org,
        "What was the secret?",
        providers_at_fake,
        conversation_id=conversation_id,
        context={"user_id": "ben"},
    )
    assert "Secret" not in json.dumps(providers_at_fake.chat_requests[-1].body["messages"])
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.agent_id == agent.pk and conversation.message_count == 2
    assert (conversation.context_type, conversation.context_id) == ("user", "ann")


@pytest.mark.slow
def test_a_real_worker_extracts_after_the_run(org, agent, providers_at_fake):
    """The finishing hook queues memory.after_execution; a worker process picks it up."""
    from tests.fakes.fixtures import FAKE_API_KEY
    from tests.processes import celery_worker, wait_for

    env = {"OPENAI_BASE_URL": providers_at_fake.openai_base_url, "OPENAI_API_KEY": FAKE_API_KEY}
    with celery_worker(queues="default", concurrency=2, extra_env=env):
        # The run's answer, then the worker's extraction call.
        providers_at_fake.script(text("Learned."), text(extraction({"type": "fact", "content": "Workers learn too."})))
        execution, _ = execution_start(agent=agent, organization=org, task="Learn something.")
        run_execution(execution.pk)
        wait_for(lambda: Episode.objects.filter(execution_id=execution.pk).exists(), 60, message="episode")
    assert Memory.objects.get().content == "Workers learn too."
    assert UsageRecord.objects.filter(execution=execution, purpose="memory").count() == 1


def test_an_expired_conversation_starts_over(org, agent, providers_at_fake):
    from datetime import timedelta

    from django.utils import timezone

    conversation_id = uuid.uuid4()
    run(agent, org, "Remember the number 7.", providers_at_fake, conversation_id=conversation_id)
    Conversation.objects.filter(pk=conversation_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    run(agent, org, "Which number?", providers_at_fake, conversation_id=conversation_id)
    assert "number 7" not in json.dumps(providers_at_fake.chat_requests[-1].body["messages"])
    conversation = Conversation.objects.get(pk=conversation_id)
    assert [m["content"] for m in conversation.messages] == ["Which number?", "Done."]
    assert conversation.expires_at > timezone.now()


def test_no_embedding_call_for_an_agent_without_memories(org, agent, settings, providers_at_fake):
    settings.MEMORY_EMBEDDER = "openai:text-embedding-3-small"
    execution = run(agent, org, "Hello.", providers_at_fake)
    assert providers_at_fake.requests_to("/embeddings") == []
    assert not ExecutionLog.objects.filter(execution=execution, message__contains="Memory retrieval").exists()


def test_the_after_run_task_retries_after_a_database_error(org, agent, providers_at_fake, monkeypatch, settings):
    """A pool timeout in the after-run task (a saturated worker) must not lose the Episode."""
    from django.db import OperationalError

    from memory import services

    settings.MEMORY_EXTRACTION_ENABLED = False
    execution = run(agent, org, "Remember this run.", providers_at_fake)
    Episode.objects.filter(execution_id=execution.pk).delete()
    real, calls = services.execution_memory_process, []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("couldn't get a connection after 10.00 sec")
        return real(**kwargs)

    monkeypatch.setattr(services, "execution_memory_process", flaky)
    after_execution.apply(args=[str(execution.pk)])  # eager: a retry runs at once
    assert len(calls) == 2
    assert Episode.objects.filter(execution_id=execution.pk).count() == 1


def test_with_extraction_off_the_episode_is_written_at_once_and_no_task_is_queued(
    org, agent, providers_at_fake, monkeypatch, settings
):
    """No model call after the run: the finishing hook writes the Episode itself rather than
    queueing memory.after_execution (a task and a broker round trip per run for one insert)."""
    from memory import hooks

    queued: list = []
    monkeypatch.setattr(hooks, "enqueue_after_execution", queued.append)
    settings.MEMORY_EXTRACTION_ENABLED = False
    execution = run(agent, org, "Remember this run.", providers_at_fake)
    episode = Episode.objects.get(execution_id=execution.pk)
    assert episode.outcome == "success" and episode.tokens_used == execution.tokens_total
    assert queued == []

    # With extraction on there is a model call to make: that stays on the queue.
    settings.MEMORY_EXTRACTION_ENABLED = True
    second = run(agent, org, "Learn from this run.", providers_at_fake)
    assert queued == [second.pk] and not Episode.objects.filter(execution_id=second.pk).exists()


def test_an_episode_that_cannot_be_written_at_once_is_queued(org, agent, providers_at_fake, monkeypatch, settings):
    from memory import hooks

    queued: list = []
    monkeypatch.setattr(hooks, "enqueue_after_execution", queued.append)

    def broken(**kwargs):
        raise RuntimeError("database blip")

    monkeypatch.setattr(hooks, "execution_memory_process", broken)
    settings.MEMORY_EXTRACTION_ENABLED = False
    execution = run(agent, org, "Remember this run.", providers_at_fake)
    assert queued == [execution.pk]


def test_the_finishing_hook_reads_the_run_alone(org, agent, providers_at_fake, settings):
    """With extraction off the hook writes the Episode from the run's row: the organization's
    and agent's rows are never read (a JOIN of both cost about a millisecond of worker CPU per run)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Organization
    from agents.models import Agent
    from memory import hooks

    settings.MEMORY_EXTRACTION_ENABLED = False
    execution = run(agent, org, "Remember this run.", providers_at_fake)
    Episode.objects.filter(execution_id=execution.pk).delete()
    with CaptureQueriesContext(connection) as captured:
        hooks.after_execution_finished(execution.pk)
    sql = [q["sql"] for q in captured.captured_queries]
    assert Episode.objects.filter(execution_id=execution.pk).count() == 1
    reads = [q for q in sql if q.startswith("SELECT") and 'FROM "executions_execution"' in q]
    assert len(reads) == 1 and "JOIN" not in reads[0], reads
    tables = (f'"{Organization._meta.db_table}"', f'"{Agent._meta.db_table}"')
    touched = [q for q in sql if any(table in q for table in tables)]
    assert touched == [], touched
