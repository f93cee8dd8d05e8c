from __future__ import annotations

from rest_framework import serializers

from accounts.models import ActivityLog, ApiToken, Scope
from accounts.services import MAX_TOKEN_DAYS
from config.api.inputs import StrictSerializer


class ApiTokenSerializer(serializers.ModelSerializer):
    is_expired = serializers.BooleanField(read_only=True)
    is_revoked = serializers.BooleanField(read_only=True)
    parent_id = serializers.UUIDField(
        read_only=True,
        allow_null=True,
        help_text="The token that minted this one (null: made in a session or by an operator). "
        "It expires no later than its parent and is revoked with it.",
    )

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at",
            "created_at", "is_expired", "is_revoked", "parent_id",
        ]  # fmt: skip
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.values), required=False, allow_empty=False
    )
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        required=False,
        help_text="Left out: never, or when the token making this request expires (a token cannot mint one "
        "that outlives it; a later expiry is refused with 400).",
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The token value. Shown this once only.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ActivityInputSerializer(serializers.Serializer):
    """An integrator's activity row; stored as ``external.<action>``."""

    action = serializers.RegexField(r"^[a-z0-9][a-z0-9_.:-]*$", max_length=70)
    agent_id = serializers.UUIDField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=ActivityLog.Status.choices, required=False)
    request_data = serializers.DictField(required=False, help_text="Bounded; secret-looking keys are redacted.")
    response_data = serializers.DictField(required=False, help_text="Bounded; secret-looking keys are redacted.")
    duration_ms = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    tokens = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    cost = serializers.DecimalField(required=False, max_digits=14, decimal_places=6, min_value=0)

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return attrs


class ActivityLogSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    token_prefix = serializers.CharField(source="token.prefix", read_only=True, default=None)

    class Meta:
        model = ActivityLog
        fields = [
            "id", "action", "user", "token_prefix", "agent_id", "target_type", "target_id",
            "request_summary", "response_summary", "status", "duration_ms", "tokens", "cost",
            "request_id", "created_at",
        ]  # fmt: skip
        read_only_fields = fields
