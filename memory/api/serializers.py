from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from memory.models import Conversation, Document, DocumentFormat, Episode, KnowledgeBase, Memory, MemoryType
from memory.selectors import parse_subject


class MemorySerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    subject = serializers.CharField(read_only=True)

    class Meta:
        model = Memory
        fields = [
            "id", "agent_id", "memory_type", "content", "subject_type", "subject_id", "subject", "confidence",
            "importance", "source", "source_execution_id", "source_trust", "tags", "access_count",
            "last_accessed_at", "expires_at", "embedding_model", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class MemorySearchHitSerializer(MemorySerializer):
    similarity = serializers.FloatField(read_only=True, help_text="1 - cosine distance to the query.")

    class Meta(MemorySerializer.Meta):
        fields = [*MemorySerializer.Meta.fields, "similarity"]
        read_only_fields = fields


class MemoryCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=settings.MEMORY_MAX_CONTENT_CHARS, trim_whitespace=True)
    memory_type = serializers.ChoiceField(choices=MemoryType.choices)
    confidence = serializers.FloatField(min_value=0, max_value=1, default=0.8)
    importance = serializers.IntegerField(min_value=1, max_value=10, default=5)
    subject_type = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    subject_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=60), max_length=20, required=False, default=list
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MemoryUpdateSerializer(serializers.Serializer):
    confidence = serializers.FloatField(min_value=0, max_value=1, required=False)
    importance = serializers.IntegerField(min_value=1, max_value=10, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=60), max_length=20, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class MemorySearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=2000, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, max_value=100, default=10)
    memory_type = serializers.CharField(
        required=False, help_text="One type, or several separated by commas (fact,preference)."
    )
    subject = serializers.CharField(required=False, max_length=261, help_text="type:id, for example user:42.")
    min_confidence = serializers.FloatField(min_value=0, max_value=1, default=0.0)

    def validate_memory_type(self, value: str) -> list[str]:
        types = [t.strip() for t in value.split(",") if t.strip()]
        unknown = [t for t in types if t not in MemoryType.values]
        if unknown or not types:
            raise serializers.ValidationError(
                f"Unknown memory type(s) {unknown}; one of {', '.join(MemoryType.values)}."
            )
        return types

    def validate_subject(self, value: str):
        try:
            return parse_subject(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ConversationSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id", "agent_id", "context_type", "context_id", "message_count", "tokens_used", "started_at",
            "last_message_at", "expires_at", "messages",
        ]  # fmt: skip
        read_only_fields = fields


class ConversationListSerializer(ConversationSerializer):
    class Meta(ConversationSerializer.Meta):
        fields = [f for f in ConversationSerializer.Meta.fields if f != "messages"]
        read_only_fields = fields


class EpisodeSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    execution_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Episode
        fields = [
            "id", "agent_id", "execution_id", "trigger_event", "context_summary", "actions_taken", "outcome",
            "outcome_details", "lessons_learned", "should_repeat", "duration_ms", "tokens_used",
            "memories_extracted", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    agent_ids = serializers.SerializerMethodField()
    document_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = KnowledgeBase
        fields = ["id", "name", "description", "agent_ids", "document_count", "created_at", "updated_at"]
        read_only_fields = fields

    def get_agent_ids(self, obj: KnowledgeBase) -> list[str]:
        return [str(agent.pk) for agent in obj.agents.all()]


class KnowledgeBaseWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, trim_whitespace=True)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    agent_ids = serializers.ListField(child=serializers.UUIDField(), required=False, default=list, max_length=500)


class DocumentSerializer(serializers.ModelSerializer):
    knowledge_base_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "knowledge_base_id", "title", "filename", "format", "size_bytes", "sha256", "status", "progress",
            "error", "chunk_count", "embedding_model", "created_at", "indexed_at",
        ]  # fmt: skip
        read_only_fields = fields


class DocumentUploadSerializer(serializers.Serializer):
    """Multipart with ``file`` (format from the name or ``format``), or JSON with ``content``."""

    file = serializers.FileField(required=False)
    content = serializers.CharField(required=False, trim_whitespace=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    format = serializers.ChoiceField(choices=DocumentFormat.choices, required=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("file")) == bool(attrs.get("content")):
            raise serializers.ValidationError({"file": ["Send either a file (multipart) or content (JSON)."]})
        return attrs


class KnowledgeSearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=2000, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, max_value=100, default=5)


class KnowledgeHitSerializer(serializers.Serializer):
    document_id = serializers.UUIDField()
    knowledge_base_id = serializers.UUIDField()
    title = serializers.CharField()
    heading = serializers.CharField()
    position = serializers.IntegerField()
    content = serializers.CharField()
    similarity = serializers.FloatField()
