from __future__ import annotations

import re

from rest_framework import serializers

from approvals.models import ApprovalRequest, RiskLevel, RiskRule
from config.api.inputs import StrictFieldsMixin, StrictSerializer


class ApprovalSerializer(serializers.ModelSerializer):
    execution = serializers.UUIDField(source="execution_id", read_only=True)
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    resolved_by = serializers.SerializerMethodField()
    params_edited = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = [
            "id", "action_type", "action_description", "action_params", "original_params", "params_edited",
            "risk_level", "risk_explanation", "status", "execution", "step_number", "agent", "agent_name",
            "expires_at", "resolved_by", "resolved_at", "resolution_note", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_resolved_by(self, obj: ApprovalRequest) -> dict | None:
        if obj.resolved_by_id is None:
            return None
        return {"id": obj.resolved_by_id, "username": obj.resolved_by.get_username() if obj.resolved_by else None}


class ApproveInputSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    params = serializers.JSONField(required=False, help_text="Edited tool arguments; validated against the schema.")


class DenyInputSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RiskRuleSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    # Plain text, checked in validate(): the same choices as risk_level would be a second
    # name for one enum in the OpenAPI schema.
    threshold_risk_level = serializers.CharField(max_length=8, required=False, allow_blank=True)

    class Meta:
        model = RiskRule
        fields = [
            "id", "pattern", "risk_level", "count_field", "count_threshold", "threshold_risk_level", "description",
            "position", "is_active", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]

    def validate_pattern(self, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9_*?]{1,120}", value):
            raise serializers.ValidationError("A tool name or wildcard pattern (letters, digits, _, *, ?).")
        return value

    def validate(self, attrs: dict) -> dict:
        field = attrs.get("count_field", getattr(self.instance, "count_field", ""))
        threshold = attrs.get("count_threshold", getattr(self.instance, "count_threshold", None))
        if bool(field) != bool(threshold):
            raise serializers.ValidationError({"count_threshold": ["count_field and count_threshold go together."]})
        level = attrs.get("threshold_risk_level", getattr(self.instance, "threshold_risk_level", ""))
        if level and level not in RiskLevel.values:
            raise serializers.ValidationError({"threshold_risk_level": ["Not a risk level."]})
        return attrs
