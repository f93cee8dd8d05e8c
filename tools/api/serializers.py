from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from config.api.inputs import StrictSerializer
from config.crypto import mask
from tools.models import (
    AgentCapabilityGrant,
    Capability,
    EmailTemplate,
    Module,
    ModuleEndpoint,
    Notification,
    Tool,
    ToolCall,
)


class ToolSerializer(serializers.ModelSerializer):
    secret_headers = serializers.SerializerMethodField(help_text="Header names with the last 4 characters only.")
    organization_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Tool
        fields = [
            "id", "name", "display_name", "description", "category", "parameters_schema", "returns_schema",
            "handler_type", "handler_config", "secret_headers", "requires_permissions", "requires_modules",
            "rate_limit_per_minute", "rate_limit_per_hour", "timeout_seconds", "is_idempotent", "is_dangerous",
            "untrusted_output", "is_system", "is_active", "organization_id", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_secret_headers(self, obj: Tool) -> dict[str, str]:
        if not obj.secret_headers:
            return {}
        return {name: mask(value) for name, value in json.loads(obj.secret_headers).items()}


_HEADERS = serializers.DictField(child=serializers.CharField(max_length=4000), required=False)
# Checked against Capability by the service (a second ChoiceField of the same choices would
# give the OpenAPI schema two names for one enum).
_CAPABILITIES = serializers.ListField(child=serializers.CharField(max_length=40), required=False)


class HttpToolInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=64)
    display_name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=4000)
    category = serializers.CharField(max_length=40, required=False)
    parameters_schema = serializers.DictField()
    returns_schema = serializers.DictField(required=False, allow_null=True)
    url = serializers.CharField(max_length=2000, help_text="http(s) URL; {arg} takes that argument, URL-encoded.")
    method = serializers.ChoiceField(choices=["GET", "POST", "PUT", "PATCH", "DELETE"], required=False)
    headers = _HEADERS
    secret_headers = serializers.DictField(
        child=serializers.CharField(max_length=4000), required=False, write_only=True,
        help_text="Header values kept encrypted; never returned (the last 4 characters are shown).",
    )  # fmt: skip
    requires_permissions = _CAPABILITIES
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=10_000, required=False, allow_null=True)
    rate_limit_per_hour = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=120, required=False)
    is_dangerous = serializers.BooleanField(required=False)
    is_idempotent = serializers.BooleanField(required=False)
    untrusted_output = serializers.BooleanField(
        required=False,
        help_text="Its answers carry outside content (default true): memories learned in runs that call it are"
        " marked untrusted.",
    )
    is_active = serializers.BooleanField(required=False)

    def validate_url(self, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise serializers.ValidationError("Must be an http:// or https:// URL.")
        return value


class HttpToolUpdateSerializer(HttpToolInputSerializer):
    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields.pop("name")  # a tool's name is how agents refer to it: it does not change
        for field in fields.values():
            field.required = False
        return fields


class ToolCallSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    execution_id = serializers.UUIDField(read_only=True)
    tool_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = ToolCall
        fields = [
            "id", "tool_name", "tool_id", "agent_id", "execution_id", "step_number", "input_params", "output_result",
            "status", "error_message", "started_at", "completed_at", "duration_ms", "tokens_used",
        ]  # fmt: skip
        read_only_fields = fields


class CapabilitiesSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    available = serializers.SerializerMethodField()

    class Meta:
        model = AgentCapabilityGrant
        fields = ["agent_id", "capabilities", "available", "updated_at"]
        read_only_fields = fields

    def get_available(self, obj: Any) -> list[dict[str, str]]:
        return [{"name": value, "label": str(label)} for value, label in Capability.choices]


class CapabilitiesInputSerializer(StrictSerializer):
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=Capability.choices))


class ModuleEndpointSerializer(serializers.ModelSerializer):
    secret = serializers.SerializerMethodField(help_text="The last 4 characters only.")

    class Meta:
        model = ModuleEndpoint
        fields = [
            "id",
            "module",
            "base_url",
            "auth_header",
            "secret",
            "config",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_secret(self, obj: ModuleEndpoint) -> str:
        return mask(obj.secret)


class ModuleEndpointInputSerializer(StrictSerializer):
    module = serializers.ChoiceField(choices=Module.choices)
    base_url = serializers.URLField(max_length=500)
    auth_header = serializers.CharField(max_length=80, required=False, allow_blank=True)
    secret = serializers.CharField(max_length=4000, required=False, allow_blank=True, write_only=True)
    config = serializers.DictField(required=False)
    is_active = serializers.BooleanField(required=False)


class ModuleEndpointUpdateSerializer(ModuleEndpointInputSerializer):
    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields.pop("module")
        for field in fields.values():
            field.required = False
        return fields


class NotificationSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    execution_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "channel", "title", "message", "link", "agent_id", "execution_id", "read_at", "created_at"]
        read_only_fields = fields


class EmailTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "description", "subject", "body", "created_at", "updated_at"]
        read_only_fields = fields


class EmailTemplateInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    subject = serializers.CharField(max_length=500, help_text="Django template language, one line once rendered.")
    body = serializers.CharField(
        max_length=50_000, help_text="Django template language (autoescaped); email_send's variables fill it."
    )


class EmailTemplateUpdateSerializer(EmailTemplateInputSerializer):
    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
        return fields
