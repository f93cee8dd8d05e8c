"""Admin for many organizations: superusers see everything, everybody else their own.

A staff user who is an owner or admin of organizations sees only those organizations' rows,
whatever Django model permissions say, and changes there exactly what the API lets their
role change, through the API's services (which check the rules and write the activity log):

- ``api_permissions`` names, per ``view``/``add``/``change``/``delete``, the permission
  (``accounts.roles``) the API asks of the role in the row's organization; ``None`` means any
  owner or admin there. An action without an entry is refused to organization admins, so a
  new admin is read-only for them until someone decides.
- ``service_save(request, actor, form, change)`` and ``service_delete(request, actor, obj)``
  make the change as that person (an ``Actor`` of their membership). The service runs when the
  form is validated, inside the admin's transaction, so what it refuses comes back as form
  errors and nothing is half-written.
- Foreign keys and many-to-many choices list only their organizations' rows and people.

Superusers are the platform: no role limits them, and their saves are the model admin's own
unless ``platform_uses_services`` (then the services run for them too, with no actor).
Every tenant-owned ModelAdmin of every app inherits from ``OrganizationScopedAdmin``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts.access import Actor
from accounts.models import Membership, Organization
from accounts.roles import Role
from config.api.errors import ApiError, InvalidInput
from config.forms import BoundedJSONField

ADMIN_ROLES = (Role.OWNER, Role.ADMIN)


def admin_memberships(request: HttpRequest) -> dict[Any, Membership]:
    """The request user's owner/admin memberships, by organization id (once per request)."""
    cached = getattr(request, "_agentry_admin_memberships", None)
    if cached is None:
        rows = Membership.objects.select_related("organization").filter(
            user_id=request.user.pk,  # type: ignore[misc]
            role__in=ADMIN_ROLES,
            organization__is_active=True,
        )
        cached = {membership.organization_id: membership for membership in rows}
        request._agentry_admin_memberships = cached  # type: ignore[attr-defined]
    return cached


def managed_organization_ids(request: HttpRequest) -> list[Any]:
    return list(admin_memberships(request))


def admin_actor(request: HttpRequest, organization_id: Any) -> Actor:
    """The organization admin acting in ``organization_id``, as the services know them."""
    membership = admin_memberships(request).get(organization_id)
    if membership is None:
        raise PermissionDenied("You do not manage this organization.")
    return Actor(organization=membership.organization, user=request.user, membership=membership)  # type: ignore[arg-type]


def api_validated(serializer_class: Any, data: dict[str, Any], *, partial: bool = False, **kwargs: Any) -> dict:
    """``data`` checked by the API's own input serializer: the admin accepts what the API does."""
    serializer = serializer_class(data=data, partial=partial, **kwargs)
    if not serializer.is_valid():
        raise InvalidInput(validation_errors=_flat_errors(serializer.errors))
    return dict(serializer.validated_data)


def _flat_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else str(key)
            flat.update(_flat_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return flat
    if isinstance(errors, list) and errors and not all(isinstance(item, str) for item in errors):
        flat = {}
        for index, value in enumerate(errors):
            if value:
                flat.update(_flat_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix: [str(item) for item in (errors if isinstance(errors, list) else [errors])]}


def error_messages(error: ApiError) -> dict[str | None, list[str]]:
    """An ApiError as form errors: field -> messages (None: the whole form)."""
    problems = error.details.get("validation_errors")
    if not problems:
        return {None: [error.message]}
    found: dict[str | None, list[str]] = {}
    for path, messages_ in problems.items():
        items = messages_ if isinstance(messages_, list) else [messages_]
        found.setdefault(str(path) or None, []).extend(str(m) for m in items)
    return found


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Rows reach the organization through ``organization_path`` (a lookup path)."""

    organization_path = "organization"
    # JSON typed by a tenant's admins: the API parser's bounds (depth, no NUL), not a 500.
    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONField}}
    api_permissions: dict[str, str | None] = {"view": None}
    platform_uses_services = False

    # --- who -------------------------------------------------------------------------------

    def _is_platform(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def _is_org_admin(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff and admin_memberships(request))

    def organization_id_of(self, obj: Any) -> Any:
        """The organization of ``obj``, following ``organization_path``."""
        *hops, last = self.organization_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop, None)
            if obj is None:
                return None
        if last == "id":
            return obj.pk
        return getattr(obj, f"{last}_id", None)

    def role_allows(self, request: HttpRequest, action: str, obj: Any = None) -> bool:
        """What the API lets this person do: the role's permission in the row's organization
        (with no row: in any organization they manage)."""
        if self._is_platform(request):
            return True
        if not self._is_org_admin(request) or action not in self.api_permissions:
            return False
        perm = self.api_permissions[action]
        memberships = admin_memberships(request)
        if obj is None:
            candidates = list(memberships.values())
        else:
            found = memberships.get(self.organization_id_of(obj))
            candidates = [found] if found is not None else []
        return any(perm is None or m.has_perm(perm) for m in candidates)

    def actor_for(self, request: HttpRequest, organization_id: Any, action: str) -> Actor | None:
        """The actor the services act for (None: the platform), refusing what the role may not do."""
        if self._is_platform(request):
            return None
        perm = self.api_permissions.get(action, "-")
        actor = admin_actor(request, organization_id)
        if action not in self.api_permissions or (perm is not None and not actor.has_perm(perm)):
            raise PermissionDenied(f"Your role does not allow this ({perm or action}).")
        return actor

    # --- what they see ---------------------------------------------------------------------

    def scope(self, queryset: QuerySet, request: HttpRequest) -> QuerySet:
        if self._is_platform(request):
            return queryset
        return queryset.filter(**{f"{self.organization_path}__in": managed_organization_ids(request)})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(super().get_queryset(request), request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_platform(request) or self._is_org_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.role_allows(request, "view", obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.role_allows(request, "change", obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.role_allows(request, "add")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.role_allows(request, "delete", obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if not self._is_platform(request) and "queryset" not in kwargs:
            kwargs["queryset"] = tenant_choices(db_field.related_model, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        if not self._is_platform(request) and "queryset" not in kwargs:
            kwargs["queryset"] = tenant_choices(db_field.related_model, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- what they change: through the services ----------------------------------------------

    def _through_services(self, request: HttpRequest) -> bool:
        return self.platform_uses_services or not self._is_platform(request)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: ModelForm, change: bool) -> models.Model:
        """Make the change of ``form`` through the API's service as ``actor``; return the row."""
        raise PermissionDenied("Organization admins cannot change this here.")

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Any) -> None:
        raise PermissionDenied("Organization admins cannot delete this here.")

    def form_organization_id(self, request: HttpRequest, form: ModelForm, change: bool) -> Any:
        """The organization a form's change happens in (an added row's chosen organization)."""
        if change:
            return self.organization_id_of(form.instance)
        chosen = form.cleaned_data.get("organization")
        return chosen.pk if chosen is not None else None

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change, **kwargs)
        if not self._through_services(request):
            return form_class
        model_admin = self

        class ThroughTheService(form_class):  # type: ignore[valid-type,misc]
            def _post_clean(self) -> None:
                super()._post_clean()
                if self.errors:
                    return
                action = "change" if change else "add"
                actor = model_admin.actor_for(request, model_admin.form_organization_id(request, self, change), action)
                try:
                    with transaction.atomic():
                        self.saved_by_service = model_admin.service_save(request, actor, self, change)
                except ApiError as error:
                    for field, problems in error_messages(error).items():
                        name = field.split(".")[0] if field else None
                        target = name if name in self.fields else None
                        for problem in problems:
                            self.add_error(
                                target, problem if field is None or target == field else f"{field}: {problem}"
                            )

        ThroughTheService.__name__ = form_class.__name__
        return ThroughTheService

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = getattr(form, "saved_by_service", None)
        if saved is None:
            if self._through_services(request):
                raise PermissionDenied("Organization admins change rows through the services only.")
            super().save_model(request, obj, form, change)
            return
        # The admin goes on with ``obj`` (its message, its log entry): make it the saved row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if getattr(form, "saved_by_service", None) is not None:
            # The service saved what the form holds; inlines are read-only to organization admins.
            if any(formset.has_changed() for formset in formsets):
                raise PermissionDenied("Organization admins cannot change these inline rows here.")
            for formset in formsets:  # nothing saved: what the change message reads
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_related(request, form, formsets, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if not self._through_services(request):
            super().delete_model(request, obj)
            return
        try:
            self.service_delete(request, self.actor_for(request, self.organization_id_of(obj), "delete"), obj)
        except ApiError as error:
            # Django's delete page has no place for an error: refuse it with the reason.
            raise PermissionDenied(error.message) from error

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if not self._is_platform(request):
            # The API's service decides what goes with the row (an agent is only marked
            # deleted, a knowledge base takes its documents): the records it takes along are
            # not the organization admin's to delete one by one, and need not be.
            perms_needed = set()
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not self._through_services(request):
            super().delete_queryset(request, queryset)
            return
        for obj in queryset:
            try:
                with transaction.atomic():
                    self.delete_model(request, obj)
            except PermissionDenied as refused:
                self.message_user(request, f"{obj}: not deleted: {refused}", messages.ERROR)


def tenant_choices(model: type[models.Model], request: HttpRequest) -> QuerySet:
    """The rows of ``model`` an organization admin may point at: their organizations', their
    organizations' people, nothing of anyone else's (and nothing of a model nobody scoped)."""
    ids = managed_organization_ids(request)
    if model is Organization:
        return Organization.objects.filter(id__in=ids)
    if model is get_user_model():
        return model._default_manager.filter(memberships__organization_id__in=ids).distinct()
    registered = admin.site._registry.get(model)
    if isinstance(registered, OrganizationScopedAdmin):
        return registered.scope(model._default_manager.all(), request)
    if any(field.name == "organization" for field in model._meta.get_fields()):
        return model._default_manager.filter(organization_id__in=ids)
    return model._default_manager.none()


class ReadOnlyAdminMixin:
    """Records (logs, usage, runs, results): looked at, never edited here; deleted by nobody
    but the platform (an organization does not erase its own audit trail or usage)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)
