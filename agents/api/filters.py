from __future__ import annotations

import django_filters
from django.db.models import F, Q, QuerySet

from agents.models import Agent, AgentStatus, AgentType, RuntimeState, Visibility

SORT_FIELDS = (
    "name", "created_at", "updated_at", "agent_type", "status", "total_runs", "last_run_at", "execution_count"
)  # fmt: skip
# The reference's names for our columns.
SORT_ALIASES = {"execution_count": "total_runs"}
SORT_ORDERS = ("asc", "desc")


class AgentFilter(django_filters.FilterSet):
    """The list filters of API.md; ``runtime_state`` filters the annotation of
    agents.selectors.with_runtime_state."""

    status = django_filters.ChoiceFilter(choices=AgentStatus.choices)
    agent_type = django_filters.ChoiceFilter(choices=AgentType.choices)
    provider = django_filters.CharFilter(field_name="llm_provider")
    model = django_filters.CharFilter(field_name="llm_model")
    is_active = django_filters.BooleanFilter()
    runtime_state = django_filters.ChoiceFilter(choices=RuntimeState.choices)
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)
    domain = django_filters.CharFilter()
    search = django_filters.CharFilter(method="filter_search")
    sort_by = django_filters.ChoiceFilter(choices=[(f, f) for f in SORT_FIELDS], method="keep")
    sort_order = django_filters.ChoiceFilter(choices=[(o, o) for o in SORT_ORDERS], method="keep")

    class Meta:
        model = Agent
        fields: list[str] = []

    def filter_search(self, qs: QuerySet[Agent], name: str, value: str) -> QuerySet[Agent]:
        value = value.strip()
        if not value:
            return qs
        return qs.filter(
            Q(name__icontains=value) | Q(description__icontains=value) | Q(domain__icontains=value) | Q(slug=value)
        )

    def keep(self, qs: QuerySet[Agent], name: str, value: str) -> QuerySet[Agent]:
        return qs  # applied together in filter_queryset

    def filter_queryset(self, queryset: QuerySet[Agent]) -> QuerySet[Agent]:
        qs = super().filter_queryset(queryset)
        return _ordered(qs, self.form.cleaned_data.get("sort_by"), self.form.cleaned_data.get("sort_order"))

    @classmethod
    def unfiltered(cls, queryset: QuerySet[Agent]) -> QuerySet[Agent]:
        """What filter_queryset gives a request with none of the parameters (the default
        order), without building the filter set (config.api.filters.FilterBackend)."""
        return _ordered(queryset, None, None)


def _ordered(qs: QuerySet[Agent], sort_by: str | None, sort_order: str | None) -> QuerySet[Agent]:
    field = sort_by or "created_at"
    field = SORT_ALIASES.get(field, field)
    descending = (sort_order or ("asc" if field == "name" else "desc")) == "desc"
    # Nullable columns (last_run_at) sort their NULLs last; NOT NULL ones use plain
    # ASC/DESC, the order the list indexes are built in (NULLS LAST would defeat them).
    nulls_last = True if Agent._meta.get_field(field).null else None
    expression = F(field).desc(nulls_last=nulls_last) if descending else F(field).asc(nulls_last=nulls_last)
    # id breaks ties so pages never overlap or skip rows.
    return qs.order_by(expression, "-id" if descending else "id")
