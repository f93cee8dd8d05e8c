"""What agents remember (DESIGN.md §8).

- ``Conversation``: short-term, the turns of one conversation (``conversation_id`` on execute).
- ``Memory``: long-term facts, preferences, patterns, relationships and outcomes, with a
  384-dimension embedding searched by cosine distance (pgvector, HNSW).
- ``Episode``: one per finished execution: what triggered it, what it did, how it ended, lessons.
- ``KnowledgeBase`` / ``Document`` / ``KnowledgeChunk``: an organization's documents, chunked
  and embedded, searched for the agents linked to the knowledge base.

Every row carries ``organization``: memories of a platform agent (no organization of its own)
belong to the organization whose run produced them, and never cross to another one.

One vector column, 384 dimensions: the local model (all-MiniLM-L6-v2) has 384, and OpenAI's
text-embedding-3-* models are asked for 384 (their ``dimensions`` parameter), so one HNSW
index serves every model. ``embedding_model`` names the model (and size) that made a vector;
search only ever compares vectors of one model.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384

# HNSW build parameters (pgvector's defaults; bench/memory_search.py measured recall with them).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def _tags() -> ArrayField:
    return ArrayField(models.CharField(max_length=60), default=list, blank=True)


class ContextType(models.TextChoices):
    USER = "user", "User"
    ENTITY = "entity", "Entity"
    SESSION = "session", "Session"


class Conversation(models.Model):
    """Short-term memory: the turns of one conversation with one agent.

    The id is the ``conversation_id`` a caller passes on execute: the first run with a new id
    starts the conversation, later runs continue it. Expired conversations are deleted by a
    beat job (``memory.expire_conversations``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="conversations")
    context_type = models.CharField(max_length=10, choices=ContextType.choices, default=ContextType.SESSION)
    # A user id, an entity id (``entity_type:entity_id``) or the conversation id for sessions.
    context_id = models.CharField(max_length=200, blank=True)
    # [{"role": "user"|"assistant", "content": str, "tokens": int, "execution_id": str, "at": iso}]
    messages = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    tokens_used = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at"]
        indexes = [
            models.Index(fields=["agent", "organization", "-last_message_at"], name="conv_agent_recent"),
            models.Index(fields=["agent", "context_type", "context_id"], name="conv_agent_context"),
            models.Index(fields=["expires_at"], name="conv_expires", condition=Q(expires_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.context_type}:{self.context_id or self.pk} ({self.message_count} messages)"


class MemoryType(models.TextChoices):
    FACT = "fact", "Fact"  # learned fact about an entity or situation
    PREFERENCE = "preference", "Preference"  # a user's or customer's preference
    PATTERN = "pattern", "Pattern"  # an observed behaviour pattern
    RELATIONSHIP = "relationship", "Relationship"  # how entities relate
    OUTCOME = "outcome", "Outcome"  # the result of a past action


class MemorySource(models.TextChoices):
    EXTRACTION = "extraction", "Extracted after a run"
    API = "api", "Added through the API"
    ADMIN = "admin", "Added in the admin"
    CONSOLIDATION = "consolidation", "Merged by consolidation"


class SourceTrust(models.TextChoices):
    TRUSTED = "trusted", "Trusted"
    # Learned in a run that read outside content (a web page, a third-party API): the text may
    # be what that content wanted the agent to remember.
    UNTRUSTED = "untrusted", "Learned from outside content"


class Memory(models.Model):
    """Long-term memory of one agent in one organization, optionally about one subject.

    A memory with a subject (``subject_type``/``subject_id``, e.g. ``user``/``42``) is only
    ever retrieved for that subject; one without is shared by all runs of the agent.
    ``embedding`` is NULL until embedded (rows added in the admin are embedded by a task).
    ``source_trust`` is ``untrusted`` for what was extracted from a run that called a tool
    with outside content (``Tool.untrusted_output``): its confidence is lowered and capped,
    and the prompt shows it as an unverified claim.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes: the composite ones below start with these columns, and every
    # index is paid on each insert (a table of millions of rows).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="memories", db_index=False)
    memory_type = models.CharField(max_length=16, choices=MemoryType.choices)
    subject_type = models.CharField(max_length=60, blank=True)
    subject_id = models.CharField(max_length=200, blank=True)
    content = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    embedding_model = models.CharField(max_length=120, blank=True)
    confidence = models.FloatField(default=0.8)
    importance = models.PositiveSmallIntegerField(default=5)
    source = models.CharField(max_length=16, choices=MemorySource.choices, default=MemorySource.API)
    # The run it was learned from (a loose reference: the memory outlives the execution).
    source_execution_id = models.UUIDField(null=True, blank=True)
    source_trust = models.CharField(
        max_length=10, choices=SourceTrust.choices, default=SourceTrust.TRUSTED, db_default=SourceTrust.TRUSTED
    )
    tags = _tags()
    access_count = models.PositiveIntegerField(default=0)
    last_accessed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "memories"
        indexes = [
            HnswIndex(
                name="memory_embedding_hnsw",
                fields=["embedding"],
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                opclasses=["vector_cosine_ops"],
            ),
            # The exact search path (an agent's few memories) and the per-agent counts.
            models.Index(fields=["agent", "organization", "embedding_model"], name="memory_agent_model"),
            models.Index(fields=["agent", "subject_type", "subject_id"], name="memory_agent_subject"),
            models.Index(fields=["organization", "-created_at"], name="memory_org_created"),
            models.Index(fields=["expires_at"], name="memory_expires", condition=Q(expires_at__isnull=False)),
            models.Index(fields=["created_at"], name="memory_pending_embedding", condition=Q(embedding__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="memory_confidence_0_1"),
            models.CheckConstraint(
                condition=Q(importance__gte=1) & Q(importance__lte=10), name="memory_importance_1_10"
            ),
            models.CheckConstraint(condition=Q(memory_type__in=MemoryType.values), name="memory_type_valid"),
        ]

    def __str__(self) -> str:
        return f"[{self.memory_type}] {self.content[:60]}"

    @property
    def subject(self) -> str:
        return f"{self.subject_type}:{self.subject_id}" if self.subject_id else ""


class EpisodeOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    PARTIAL = "partial", "Partial"
    FAILURE = "failure", "Failure"


class Episode(models.Model):
    """Episodic memory: one finished execution, as the agent would tell it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="episodes")
    # One episode per execution: the after-run task may be delivered twice, the row not.
    execution = models.OneToOneField(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="episode"
    )
    trigger_event = models.CharField(max_length=120, blank=True)
    context_summary = models.TextField(blank=True)
    actions_taken = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=10, choices=EpisodeOutcome.choices)
    outcome_details = models.TextField(blank=True)
    lessons_learned = models.JSONField(default=list, blank=True)
    should_repeat = models.BooleanField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    memories_extracted = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["agent", "organization", "-created_at"], name="episode_agent_recent")]

    def __str__(self) -> str:
        return f"{self.trigger_event or 'run'} → {self.outcome}"


class KnowledgeBase(models.Model):
    """An organization's collection of documents; agents linked to it search it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    agents = models.ManyToManyField("agents.Agent", blank=True, related_name="knowledge_bases")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="kb_name_per_org")]

    def __str__(self) -> str:
        return self.name


class DocumentFormat(models.TextChoices):
    TEXT = "text", "Plain text"
    MARKDOWN = "markdown", "Markdown"
    HTML = "html", "HTML"
    PDF = "pdf", "PDF"


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Document(models.Model):
    """One uploaded document; the worker extracts its text, chunks and embeds it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=300, blank=True)
    format = models.CharField(max_length=10, choices=DocumentFormat.choices)
    # The upload as received, kept so a re-index can extract again (bounded by
    # MEMORY_DOCUMENT_MAX_BYTES).
    raw = models.BinaryField()
    size_bytes = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["knowledge_base", "-created_at"], name="document_kb_created")]

    def __str__(self) -> str:
        return self.title


class KnowledgeChunk(models.Model):
    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    heading = models.CharField(max_length=300, blank=True)
    content = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    embedding_model = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["document", "position"]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["knowledge_base", "embedding_model"], name="chunk_kb_model"),
        ]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="chunk_position_per_document")]

    def __str__(self) -> str:
        return f"{self.document_id} #{self.position}"
