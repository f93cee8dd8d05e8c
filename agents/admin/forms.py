"""Admin forms: the same validation as the API, errors shown on the right field."""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.forms.models import construct_instance

from agents.config import MODEL_CONFIG_COLUMNS, VERSIONED_FIELDS, agent_draft_config, flatten
from agents.models import (
    Agent,
    AgentConfiguration,
    AgentStatus,
)
from agents.services.common import ensure_name_free
from agents.services.platform import agent_configuration_validate
from agents.validation import agent_config_validate
from config.api.errors import ApiError
from config.api.json_input import json_loads_bounded

_FIELD_FOR = {f"model_config.{key}": column for key, column in MODEL_CONFIG_COLUMNS.items()}


def _form_field(path_: str) -> str:
    if path_ in _FIELD_FOR:
        return _FIELD_FOR[path_]
    head = path_.split(".")[0]
    if head == "memory":
        return "memory_config"
    if head == "limits":
        return path_.split(".")[1] if "." in path_ else head
    if head == "model_config":
        return _FIELD_FOR.get(".".join(path_.split(".")[:2]), "llm_provider")
    return head


_EDITABLE = [
    "organization", "name", "slug", "description", "avatar_url", "visibility", "metadata", "agent_type", "domain",
    "capabilities", "personality", "system_prompt", "instructions", "goals", "constraints", "examples",
    "llm_provider", "llm_model", "temperature", "max_tokens", "top_p", "llm_fallbacks", "llm_extra",
    "max_steps_per_run", "max_tool_calls_per_step", "timeout_seconds", "max_runs_per_hour", "max_runs_per_day",
    "allowed_tools", "denied_tools", "trigger_events", "trigger_schedule", "trigger_timezone", "trigger_conditions",
    "input_schema", "output_schema", "memory_config", "type_config",
]  # fmt: skip


class PersonalityField(forms.CharField):
    """Plain text, or a JSON object of traits/tone/behavior/language_style: operators type
    prose without having to quote it as a JSON string."""

    widget = forms.Textarea

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value: Any) -> Any:
        text = (super().to_python(value) or "").strip()
        if text.startswith("{"):
            try:
                return json_loads_bounded(text)
            except ValueError as exc:  # JsonInputError too: too deep, or a NUL character
                raise forms.ValidationError(f"Looks like JSON but is not valid: {exc}") from exc
        return text


class AgentAdminForm(forms.ModelForm):
    personality = PersonalityField(
        required=False, help_text='Text, or a JSON object such as {"traits": ["calm"], "tone": "casual"}.'
    )
    avatar_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    slug = forms.SlugField(required=False, max_length=200, help_text="Made from the name when left empty.")

    class Meta:
        model = Agent
        fields = _EDITABLE

    def clean(self) -> dict[str, Any]:
        """The API's validation of the whole configuration, each problem on its field with the
        validator's path. Fields that did not parse (bad JSON) keep their own error and the
        others are still checked (with the saved value in place of the broken one), so one
        save shows every problem and the form keeps what was typed."""
        cleaned = super().clean() or {}
        unparsed = set(self.errors)
        candidate = copy.copy(self.instance)
        construct_instance(self, candidate)
        original = self.instance
        # UUID primary keys are set before the first save: ask the state, not the pk.
        existing = None if original._state.adding else Agent.objects.get(pk=original.pk)
        if existing is not None and existing.status == AgentStatus.ARCHIVED:
            raise forms.ValidationError("An archived agent is read-only.")
        config = agent_draft_config(candidate)
        try:
            agent_config_validate(
                config,
                organization_id=candidate.organization_id,
                agent_id=existing.pk if existing else None,
                previous=agent_draft_config(existing) if existing is not None else None,
            )
            if existing is None or candidate.name.lower() != existing.name.lower():
                ensure_name_free(
                    organization_id=candidate.organization_id,
                    name=candidate.name.strip(),
                    exclude_pk=existing.pk if existing else None,
                )
        except ApiError as exc:
            errors = exc.details.get("validation_errors") or {"name": [exc.message]}
            for field_path, problems in errors.items():
                field = _form_field(field_path)
                if field in unparsed:
                    continue  # its own error (it did not parse) says more than the saved value's
                for problem in problems:
                    message = problem if field == field_path else f"{field_path}: {problem}"
                    self.add_error(field if field in self.fields else None, message)
        if existing is not None and existing.status == AgentStatus.DEPRECATED:
            before = flatten(agent_draft_config(existing))
            after = flatten(config)
            if any(before[k] != after[k] for k in before if k.split(".")[0] in VERSIONED_FIELDS):
                raise forms.ValidationError("A deprecated agent only moves to archived; its configuration is frozen.")
        self.agent_config = config
        return cleaned


class AgentConfigurationForm(forms.ModelForm):
    class Meta:
        model = AgentConfiguration
        fields = ["organization", "agent", "overrides", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        agent = cleaned.get("agent")
        if agent is not None and "overrides" in cleaned:
            try:
                agent_configuration_validate(agent, cleaned["overrides"])
            except ApiError as exc:
                for field_path, problems in (exc.details.get("validation_errors") or {"": [exc.message]}).items():
                    self.add_error("overrides", "; ".join(f"{field_path}: {p}" for p in problems))
        return cleaned
