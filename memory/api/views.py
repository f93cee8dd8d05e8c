"""Memory and knowledge-base endpoints: thin views over memory.selectors and memory.services.

Every lookup goes through the caller's organization: an agent the caller cannot see, or
another organization's memory, conversation, knowledge base or document, answers 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import django_filters
from django.db.models import Count, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, status, viewsets
from rest_framework.decorators import action
from rest_framework.fields import IntegerField
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents.models import Agent
from config.api.errors import ApiError, InvalidInput
from config.api.parsers import LimitedJSONParser
from memory import selectors, services
from memory.api import serializers as s
from memory.chunking import guess_format
from memory.embedders import EmbedderUnavailable, get_embedder
from memory.models import Conversation, Document, Episode, KnowledgeBase, Memory, MemorySource, MemoryType

READ = ("agents:read", "memory.view_memory")
WRITE = ("agents:write", "memory.change_memory")


@contextmanager
def embedder_errors() -> Iterator[None]:
    """An embedder outage is the caller's 503, with the reason, never a 500."""
    try:
        yield
    except EmbedderUnavailable as exc:
        raise ApiError(code="ServiceUnavailable", message=f"The embedder is unavailable: {exc}") from exc


class MemoryFilter(django_filters.FilterSet):
    memory_type = django_filters.MultipleChoiceFilter(choices=MemoryType.choices)
    subject = django_filters.CharFilter(method="filter_subject", label="type:id, for example user:42")
    subject_type = django_filters.CharFilter()
    subject_id = django_filters.CharFilter()
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    source = django_filters.ChoiceFilter(choices=MemorySource.choices)
    sort_by = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("importance", "importance"),
            ("confidence", "confidence"),
            ("access_count", "access_count"),
            ("last_accessed_at", "last_accessed_at"),
        )
    )

    class Meta:
        model = Memory
        fields = ["memory_type", "subject_type", "subject_id", "source"]

    def filter_subject(self, queryset, name, value):
        try:
            subject = selectors.parse_subject(value)
        except ValueError as exc:
            raise InvalidInput(validation_errors={"subject": [str(exc)]}) from None
        return queryset.filter(subject_type=subject.type, subject_id=subject.id)

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])


class AgentScopedView(generics.GenericAPIView):
    """Resolves ``agent_id`` from the URL once, within the caller's visibility."""

    def get_agent(self) -> Agent:
        agent = getattr(self, "_agent", None)
        if agent is None:
            agent = selectors.memory_agent_get(actor=request_actor(self.request), agent_id=self.kwargs["agent_id"])
            self._agent = agent
        return agent

    @property
    def organization_id(self):
        return request_actor(self.request).organization.pk


class AgentMemoryListView(AgentScopedView, generics.ListAPIView):
    """The agent's memories in the caller's organization; POST adds one (or merges a near-duplicate)."""

    serializer_class = s.MemorySerializer
    permission_classes = [AccessRules]
    access_rules = {"get": READ, "post": WRITE}
    filterset_class = MemoryFilter
    queryset = Memory.objects.none()

    def get_queryset(self):
        return selectors.memory_list(organization_id=self.organization_id, agent_id=self.get_agent().pk).order_by(
            "-created_at"
        )

    @extend_schema(
        request=s.MemoryCreateSerializer,
        responses={201: s.MemorySerializer, 200: s.MemorySerializer},
        description="201 with the new memory; 200 with the existing one when the content is a near-duplicate "
        "(cosine similarity > 0.95 within the same subject), whose confidence was raised instead.",
    )
    def post(self, request: Request, agent_id: str) -> Response:
        actor = request_actor(request)
        agent = self.get_agent()
        payload = s.MemoryCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        with embedder_errors():
            result = services.memory_store(
                organization=actor.organization, agent=agent, data=dict(payload.validated_data), actor=actor
            )
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(s.MemorySerializer(result.memory).data, status=code)


class AgentMemorySearchView(AgentScopedView):
    """Semantic search over the agent's memories, nearest first, each with its similarity."""

    permission_classes = [AccessRules]
    access_rules = {"get": READ}
    serializer_class = s.MemorySearchHitSerializer
    queryset = Memory.objects.none()
    pagination_class = None

    @extend_schema(
        parameters=[s.MemorySearchQuerySerializer],
        responses=s.MemorySearchHitSerializer(many=True),
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = self.get_agent()
        query = s.MemorySearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with embedder_errors():
            embedder = get_embedder(organization_id=self.organization_id)
            vector = embedder.embed_one(params["q"])
        hits = selectors.memory_search(
            organization_id=self.organization_id,
            agent_id=agent.pk,
            vector=vector,
            model=embedder.name,
            k=params["k"],
            memory_types=params.get("memory_type"),
            subject=params.get("subject"),
            min_confidence=params["min_confidence"],
        )
        results = []
        for hit in hits:
            hit.memory.similarity = round(hit.similarity, 6)  # type: ignore[attr-defined]
            results.append(hit.memory)
        return Response(
            {
                "results": s.MemorySearchHitSerializer(results, many=True).data,
                "total": len(results),
                "embedding_model": embedder.name,
            }
        )


class AgentMemoryDetailView(AgentScopedView):
    permission_classes = [AccessRules]
    access_rules = {"get": READ, "patch": WRITE, "delete": WRITE}
    serializer_class = s.MemorySerializer
    queryset = Memory.objects.none()

    def get_object(self) -> Memory:
        return selectors.memory_get(
            organization_id=self.organization_id, agent_id=self.get_agent().pk, memory_id=self.kwargs["memory_id"]
        )

    def get(self, request: Request, agent_id: str, memory_id: str) -> Response:
        return Response(s.MemorySerializer(self.get_object()).data)

    @extend_schema(request=s.MemoryUpdateSerializer, responses=s.MemorySerializer)
    def patch(self, request: Request, agent_id: str, memory_id: str) -> Response:
        memory = self.get_object()
        payload = s.MemoryUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        extra = set(request.data) - set(s.MemoryUpdateSerializer().fields) if isinstance(request.data, dict) else set()
        if extra:
            raise InvalidInput(
                validation_errors={name: ["Cannot be changed; forget the memory and add a new one."] for name in extra}
            )
        memory = services.memory_update(memory=memory, data=dict(payload.validated_data), actor=request_actor(request))
        return Response(s.MemorySerializer(memory).data)

    def delete(self, request: Request, agent_id: str, memory_id: str) -> Response:
        services.memory_delete(memory=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentConversationListView(AgentScopedView, generics.ListAPIView):
    serializer_class = s.ConversationListSerializer
    permission_classes = [AccessRules]
    access_rules = {"get": READ}
    queryset = Conversation.objects.none()

    def get_queryset(self):
        return selectors.conversation_list(organization_id=self.organization_id, agent_id=self.get_agent().pk).defer(
            "messages"
        )


class AgentConversationDetailView(AgentScopedView):
    serializer_class = s.ConversationSerializer
    permission_classes = [AccessRules]
    access_rules = {"get": READ, "delete": WRITE}
    queryset = Conversation.objects.none()

    def get_object(self) -> Conversation:
        return selectors.conversation_get(
            organization_id=self.organization_id,
            agent_id=self.get_agent().pk,
            conversation_id=self.kwargs["conversation_id"],
        )

    def get(self, request: Request, agent_id: str, conversation_id: str) -> Response:
        return Response(s.ConversationSerializer(self.get_object()).data)

    def delete(self, request: Request, agent_id: str, conversation_id: str) -> Response:
        services.conversation_delete(conversation=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentEpisodeListView(AgentScopedView, generics.ListAPIView):
    serializer_class = s.EpisodeSerializer
    permission_classes = [AccessRules]
    access_rules = {"get": READ}
    queryset = Episode.objects.none()

    def get_queryset(self):
        return selectors.episode_list(organization_id=self.organization_id, agent_id=self.get_agent().pk)


class KnowledgeBaseViewSet(viewsets.GenericViewSet):
    """An organization's knowledge bases, their documents, search and re-indexing."""

    serializer_class = s.KnowledgeBaseSerializer
    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "documents": READ,
        "document": READ,
        "search": READ,
        "create": WRITE,
        "partial_update": WRITE,
        "destroy": WRITE,
        "upload": WRITE,
        "reindex": WRITE,
        "document_delete": WRITE,
    }
    queryset = KnowledgeBase.objects.none()
    parser_classes = [LimitedJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return (
            selectors.knowledge_base_list(organization_id=request_actor(self.request).organization.pk)
            .annotate(document_count=Count("documents", distinct=True))
            .prefetch_related(Prefetch("agents", queryset=Agent.objects.only("pk")))
            .order_by("name")
        )

    def get_object(self) -> KnowledgeBase:
        selectors.knowledge_base_get(
            organization_id=request_actor(self.request).organization.pk, knowledge_base_id=self.kwargs["pk"]
        )
        return self.get_queryset().get(pk=self.kwargs["pk"])

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.KnowledgeBaseSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(s.KnowledgeBaseSerializer(self.get_object()).data)

    @extend_schema(request=s.KnowledgeBaseWriteSerializer, responses={201: s.KnowledgeBaseSerializer})
    def create(self, request: Request) -> Response:
        payload = s.KnowledgeBaseWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        created = services.knowledge_base_create(
            actor=request_actor(request),
            name=data["name"],
            description=data["description"],
            agent_ids=data["agent_ids"],
        )
        return Response(s.KnowledgeBaseSerializer(self.get_queryset().get(pk=created.pk)).data, status=201)

    @extend_schema(request=s.KnowledgeBaseWriteSerializer, responses=s.KnowledgeBaseSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        knowledge_base = self.get_object()
        payload = s.KnowledgeBaseWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.knowledge_base_update(
            actor=request_actor(request), knowledge_base=knowledge_base, data=dict(payload.validated_data)
        )
        return Response(s.KnowledgeBaseSerializer(self.get_object()).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.knowledge_base_delete(actor=request_actor(request), knowledge_base=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.DocumentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def documents(self, request: Request, pk: str | None = None) -> Response:
        page = self.paginate_queryset(selectors.document_list(knowledge_base=self.get_object()))
        return self.get_paginated_response(s.DocumentSerializer(page, many=True).data)

    @extend_schema(request=s.DocumentUploadSerializer, responses={202: s.DocumentSerializer})
    @documents.mapping.post
    def upload(self, request: Request, pk: str | None = None) -> Response:
        """Add a document (text, Markdown, HTML or PDF); it is indexed on the worker
        (``status``/``progress`` tell how far)."""
        knowledge_base = self.get_object()
        payload = s.DocumentUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        upload = data.get("file")
        if upload is not None:
            raw, filename = upload.read(), upload.name or ""
            fmt = data.get("format") or guess_format(filename, getattr(upload, "content_type", "") or "")
        else:
            raw, filename = data["content"].encode("utf-8"), ""
            fmt = data.get("format") or "text"
        document = services.document_upload(
            actor=request_actor(request),
            knowledge_base=knowledge_base,
            data=raw,
            fmt=fmt or "",
            title=data.get("title") or "",
            filename=filename,
        )
        return Response(s.DocumentSerializer(document).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=s.DocumentSerializer,
        parameters=[OpenApiParameter("document_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["get"], url_path=r"documents/(?P<document_id>[^/.]+)")
    def document(self, request: Request, pk: str | None = None, document_id: str | None = None) -> Response:
        found = selectors.document_get(knowledge_base=self.get_object(), document_id=document_id)
        return Response(s.DocumentSerializer(found).data)

    # Every mapped method needs its own extend_schema (drf-spectacular#1373).
    @extend_schema(
        responses={204: None}, parameters=[OpenApiParameter("document_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]
    )
    @document.mapping.delete
    def document_delete(self, request: Request, pk: str | None = None, document_id: str | None = None) -> Response:
        found = selectors.document_get(knowledge_base=self.get_object(), document_id=document_id)
        services.document_delete(actor=request_actor(request), document=Document.objects.get(pk=found.pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: inline_serializer("Reindexed", {"documents": IntegerField()})})
    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, pk: str | None = None) -> Response:
        count = services.knowledge_base_reindex(actor=request_actor(request), knowledge_base=self.get_object())
        return Response({"documents": count}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("k", int)],
        responses=s.KnowledgeHitSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def search(self, request: Request, pk: str | None = None) -> Response:
        knowledge_base = self.get_object()
        query = s.KnowledgeSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with embedder_errors():
            hits = services.knowledge_base_search(
                knowledge_base=knowledge_base, query=query.validated_data["q"], k=query.validated_data["k"]
            )
        return Response({"results": s.KnowledgeHitSerializer(hits, many=True).data, "total": len(hits)})
