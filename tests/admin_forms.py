"""Driving the real admin: the POST body a change page would send, as a browser would."""

from __future__ import annotations

from typing import Any

from django import forms
from django.test import Client


def page_data(client: Client, url: str, **changes: Any) -> dict[str, Any]:
    """GET the admin's add/change page at ``url`` and return what submitting it sends: every
    editable field with its shown value (inline management forms included), then ``changes``."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        data.update(_field_data(form.add_prefix(name), field, form[name].value()))
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for child in formset.forms:
            for name, field in child.fields.items():
                data.update(_field_data(child.add_prefix(name), field, child[name].value()))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _field_data(key: str, field: forms.Field, value: Any) -> dict[str, Any]:
    widget = field.widget
    if isinstance(widget, forms.MultiWidget):
        parts = widget.decompress(value) if not isinstance(value, list) else value
        return {f"{key}_{i}": "" if part is None else str(part) for i, part in enumerate(parts)}
    if isinstance(field, forms.BooleanField):
        return {key: "on"} if value else {}
    if isinstance(value, list | tuple):
        return {key: [str(item) for item in value]}
    return {key: "" if value is None else str(value)}
