"""Admin for memories, conversations, episodes and knowledge bases, scoped per organization.

Memory search in the admin: a plain query matches content and tags; a query starting with
``~`` is semantic (nearest by cosine with the configured embedder, most similar first).
Memories added or edited here are stored without a vector and embedded by the
``memory.embed_pending`` task after the save commits (no model call inside the admin's
transaction).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from memory import services
from memory.embedders import EmbedderUnavailable, get_embedder
from memory.models import (
    Conversation,
    Document,
    Episode,
    KnowledgeBase,
    KnowledgeChunk,
    Memory,
    MemorySource,
    SourceTrust,
)
from memory.selectors import vector_text
from memory.services.memories import Embedded
from memory.tasks import enqueue_embed_pending

SEMANTIC_PREFIX = "~"
SEMANTIC_LIMIT = 100


class _SemanticChangeList(ChangeList):
    """Keeps a semantic search's nearest-first order (the changelist re-orders otherwise)."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list:
        if self.query.startswith(SEMANTIC_PREFIX) and "distance" in queryset.query.annotations:
            return ["distance", "pk"]
        return super().get_ordering(request, queryset)


class MemoryForm(forms.ModelForm):
    class Meta:
        model = Memory
        fields = [
            "organization", "agent", "memory_type", "content", "subject_type", "subject_id", "confidence",
            "importance", "tags", "expires_at", "source_trust",
        ]  # fmt: skip
        help_texts = {
            "source_trust": "Untrusted: learned in a run that read outside content (a web page, a third-party API);"
            " shown to the agent as an unverified claim. The platform's operators may mark it trusted once checked.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "source_trust" in self.fields:  # read-only for an organization changing a memory
            self.fields["source_trust"].required = False  # a memory a person adds here is trusted

    def clean_source_trust(self) -> str:
        return self.cleaned_data.get("source_trust") or SourceTrust.TRUSTED

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        agent, organization = data.get("agent"), data.get("organization")
        # A memory belongs to its organization's agent, or to a platform agent used there.
        if agent is not None and organization is not None and agent.organization_id not in (None, organization.pk):
            self.add_error("agent", "This agent belongs to another organization.")
        return data


MEMORY_READ = "memory.view_memory"
MEMORY_WRITE = "memory.change_memory"
# What the API lets change on a stored memory (the rest needs a new memory: a new vector).
MEMORY_MUTABLE = ("confidence", "importance", "tags", "expires_at")


@admin.register(Memory)
class MemoryAdmin(OrganizationScopedAdmin):
    """Organization admins add memories as the API does (merging near-duplicates) and change
    what the API lets change; the platform edits anything."""

    form = MemoryForm
    api_permissions = {"view": MEMORY_READ, "add": MEMORY_WRITE, "change": MEMORY_WRITE, "delete": MEMORY_WRITE}
    list_display = [
        "short_content",
        "memory_type",
        "agent",
        "subject",
        "confidence",
        "source_trust",
        "importance",
        "access_count",
        "embedded",
        "created_at",
    ]
    list_filter = ["memory_type", "source", "source_trust", "embedding_model"]
    search_fields = ["content", "tags"]
    search_help_text = "Words in the content or tags; start with ~ for a semantic search (most similar first)."
    list_select_related = ["agent"]
    raw_id_fields = ["agent"]
    fields = [
        "organization", "agent", "memory_type", "content", "subject_type", "subject_id", "confidence", "importance",
        "tags", "expires_at", "source", "source_execution_id", "source_trust", "embedding_model", "access_count",
        "last_accessed_at", "created_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = [
        "source",
        "source_execution_id",
        "embedding_model",
        "access_count",
        "last_accessed_at",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("embedding")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None and not self._is_platform(request):
            fields += [name for name in MemoryForm.Meta.fields if name not in MEMORY_MUTABLE]
        return fields

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> Memory:
        assert actor is not None  # superusers save the row themselves
        if change:
            data = {name: form.cleaned_data[name] for name in MEMORY_MUTABLE if name in form.changed_data}
            return services.memory_update(memory=Memory.objects.get(pk=form.instance.pk), data=data, actor=actor)
        item = services.memory_input_validate(
            {
                name: form.cleaned_data.get(name)
                for name in MemoryForm.Meta.fields
                if name not in ("organization", "agent")
            }
        )
        stored = services.memories_store(
            organization=actor.organization,
            agent=form.cleaned_data["agent"],
            items=[item],
            source=MemorySource.ADMIN,
            actor=actor,
            # No model call inside the admin's transaction: embedded after commit.
            embedded=Embedded(vectors=[None], model=""),
        )
        return stored[0].memory

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Memory) -> None:
        services.memory_delete(memory=obj, actor=actor)

    @admin.display(description="content")
    def short_content(self, obj: Memory) -> str:
        return obj.content[:100]

    @admin.display(boolean=True)
    def embedded(self, obj: Memory) -> bool:
        return bool(obj.embedding_model)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.startswith(SEMANTIC_PREFIX):
            return super().get_search_results(request, queryset, search_term)
        text = search_term[len(SEMANTIC_PREFIX) :].strip()
        if not text:
            return queryset, False
        try:
            embedder = get_embedder()
            vector = embedder.embed_one(text)
        except EmbedderUnavailable as exc:
            messages.error(request, f"Semantic search is unavailable: {exc}")
            return queryset.none(), False

        distance = RawSQL("embedding <=> %s::vector", [vector_text(vector)])
        nearest = list(
            queryset.filter(embedding_model=embedder.name, embedding__isnull=False)
            .annotate(distance=distance)
            .order_by("distance")
            .values_list("pk", flat=True)[:SEMANTIC_LIMIT]
        )
        # Keep the nearest-first order through the changelist's own ordering.
        return queryset.filter(pk__in=nearest).annotate(distance=distance).order_by("distance"), False

    def get_changelist(self, request: HttpRequest, **kwargs: Any):
        return _SemanticChangeList

    def save_model(self, request: HttpRequest, obj: Memory, form: Any, change: bool) -> None:
        if getattr(form, "saved_by_service", None) is not None:
            super().save_model(request, obj, form, change)  # stored (and queued for embedding) by the service
            return
        if not change:
            obj.source = MemorySource.ADMIN
        if not change or "content" in form.changed_data:
            # Re-embedded after commit by memory.embed_pending (merging a near-duplicate).
            obj.embedding, obj.embedding_model = None, ""
        super().save_model(request, obj, form, change)
        if obj.embedding is None:
            enqueue_embed_pending()


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": MEMORY_READ, "delete": MEMORY_WRITE}
    list_display = [
        "id",
        "agent",
        "context_type",
        "context_id",
        "message_count",
        "tokens_used",
        "last_message_at",
        "expires_at",
    ]
    list_filter = ["context_type"]
    search_fields = ["id", "context_id"]
    list_select_related = ["agent"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.role_allows(request, "delete", obj)  # forgotten as through the API

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Conversation) -> None:
        services.conversation_delete(conversation=obj, actor=actor)


@admin.register(Episode)
class EpisodeAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": MEMORY_READ}
    list_display = [
        "created_at",
        "agent",
        "trigger_event",
        "outcome",
        "should_repeat",
        "memories_extracted",
        "tokens_used",
    ]
    list_filter = ["outcome"]
    search_fields = ["context_summary", "outcome_details"]
    list_select_related = ["agent"]


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ("title", "format", "status", "progress", "chunk_count", "error", "indexed_at")
    readonly_fields = fields
    extra = 0
    can_delete = True
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(OrganizationScopedAdmin):
    api_permissions = {"view": MEMORY_READ, "add": MEMORY_WRITE, "change": MEMORY_WRITE, "delete": MEMORY_WRITE}
    list_display = ["name", "organization", "created_at"]
    search_fields = ["name", "description"]
    fields = ["organization", "name", "description", "agents", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    filter_horizontal = ["agents"]
    inlines = [DocumentInline]
    actions = ["reindex"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization", *self.readonly_fields] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: KnowledgeBase, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> KnowledgeBase:
        assert actor is not None  # superusers save the row themselves
        agent_ids = [agent.pk for agent in form.cleaned_data.get("agents", [])]
        if change:
            data: dict[str, Any] = {name: form.cleaned_data[name] for name in ("name", "description")}
            data["agent_ids"] = agent_ids
            knowledge_base = KnowledgeBase.objects.get(pk=form.instance.pk)
            return services.knowledge_base_update(actor=actor, knowledge_base=knowledge_base, data=data)
        return services.knowledge_base_create(
            actor=actor,
            name=form.cleaned_data["name"],
            description=form.cleaned_data.get("description", ""),
            agent_ids=agent_ids,
        )

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: KnowledgeBase) -> None:
        assert actor is not None  # superusers delete the row themselves
        services.knowledge_base_delete(actor=actor, knowledge_base=obj)

    @admin.action(description="Re-index the documents of the selected knowledge bases")
    def reindex(self, request: HttpRequest, queryset: QuerySet) -> None:
        total = 0
        for knowledge_base in queryset:
            try:
                actor = self.actor_for(request, knowledge_base.organization_id, "change")
            except PermissionDenied as refused:
                messages.error(request, f"{knowledge_base}: not re-indexed: {refused}")
                continue
            total += services.knowledge_base_reindex(actor=actor, knowledge_base=knowledge_base)
        messages.success(request, f"{total} document(s) queued for indexing.")


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": MEMORY_READ, "delete": MEMORY_WRITE}
    list_display = ["title", "knowledge_base", "format", "status", "progress", "chunk_count", "created_at"]
    list_filter = ["status", "format"]
    search_fields = ["title", "filename"]
    exclude = ["raw"]
    list_select_related = ["knowledge_base"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("raw", "text")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.role_allows(request, "delete", obj)  # removed as through the API

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Document) -> None:
        assert actor is not None  # superusers delete the row themselves
        services.document_delete(actor=actor, document=obj)


@admin.register(KnowledgeChunk)
class KnowledgeChunkAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": MEMORY_READ}
    list_display = ["document", "position", "heading", "token_count", "embedding_model"]
    search_fields = ["content", "heading"]
    exclude = ["embedding"]
    list_select_related = ["document"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("embedding")
