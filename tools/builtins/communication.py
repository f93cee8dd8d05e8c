"""email_send, email_draft, notify_user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from config.api.errors import NotFound
from tools.builtins.base import Invocation, ToolError
from tools.builtins.people import member
from tools.builtins.remote import sms_send
from tools.email_templates import TemplateProblem, template_render
from tools.selectors import email_template_get
from tools.services import email_draft_create, notification_create


def _agent_headers(call: Invocation) -> dict[str, str]:
    # Lets a mail system trace an agent's email back to the run that sent it.
    return {"X-Agentry-Agent": str(call.agent_id), "X-Agentry-Execution": str(call.execution.pk)}


def _email_content(call: Invocation) -> tuple[str, str, str | None]:
    """(subject, body, template name): the arguments', or the organization's template
    rendered with ``variables`` (tools.email_templates). With a template, the subject and body
    the model wrote (the schema requires them, as the reference's does) are replaced, as the
    tool's description says; the answer names the template and the subject actually sent."""
    args = call.arguments
    template_id = args.get("template_id")
    if not template_id:
        if args.get("variables"):
            raise ToolError("variables fill a template: give template_id too, or leave variables out.")
        return args["subject"], args["body"], None
    try:
        template = email_template_get(organization_id=call.organization_id, template_id=template_id)
    except NotFound:
        raise ToolError(
            f"No email template {template_id!r} in this organization; GET /api/v1/email-templates/ lists them."
        ) from None
    try:
        subject, body = template_render(subject=template.subject, body=template.body, variables=args.get("variables"))
    except TemplateProblem as exc:
        raise ToolError(f"The email template {template.name!r} could not be rendered: {exc}") from exc
    return subject, body, template.name


def email_send(call: Invocation) -> dict[str, Any]:
    args = call.arguments
    subject, body, template_name = _email_content(call)
    connection = get_connection(timeout=max(1, int(call.remaining())))
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(args["to"]),
        headers=_agent_headers(call),
        connection=connection,
    )
    try:
        sent = message.send(fail_silently=False)
    except OSError as exc:  # smtplib errors are OSErrors
        raise ToolError(f"The mail server refused the message: {type(exc).__name__}.") from exc
    result = {"sent": bool(sent), "to": list(args["to"]), "subject": subject}
    if template_name is not None:
        result["template"] = template_name
    return result


def email_draft(call: Invocation) -> dict[str, Any]:
    draft = email_draft_create(
        organization_id=call.organization_id,
        to=list(call.arguments["to"]),
        subject=call.arguments["subject"],
        body=call.arguments["body"],
        agent_id=call.agent_id,
        execution_id=call.execution.pk,
        idempotency_key=call.idempotency_key,
    )
    return {"draft_id": str(draft.pk), "status": "draft", "to": draft.to, "subject": draft.subject}


def notify_user(call: Invocation) -> dict[str, Any]:
    args = call.arguments
    channel = args.get("channel") or "in_app"
    execution = call.execution
    if channel == "sms":
        call.require("send_sms", "an SMS")
        phone = args.get("phone")
        if not phone:
            raise ToolError("An SMS needs a phone number in E.164 form (phone: +15551234567).")
        user = member(organization_id=call.organization_id, ref=args["user_id"]) if args.get("user_id") else None
        gateway_answer = sms_send(call=call, to=phone, message=args["message"])
        notification_create(
            organization_id=call.organization_id,
            user=user,
            channel="sms",
            recipient=phone,
            message=args["message"],
            agent_id=call.agent_id,
            execution_id=execution.pk,
        )
        return {"sent": True, "channel": "sms", "to": phone, "gateway": gateway_answer}

    if args.get("user_id"):
        user = member(organization_id=call.organization_id, ref=args["user_id"])
    elif execution.triggered_by_user_id:
        user = member(organization_id=call.organization_id, ref=str(execution.triggered_by_user_id))
    else:
        raise ToolError("Say which member to notify (user_id); this run was not started by a person.")
    if channel == "email":
        call.require("send_emails", "an email notification")
        if not user.email:
            raise ToolError("That member has no email address.")
        message = EmailMessage(
            subject="A message from your agent",
            body=args["message"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[user.email],
            headers=_agent_headers(call),
            connection=get_connection(timeout=max(1, int(call.remaining()))),
        )
        try:
            message.send(fail_silently=False)
        except OSError as exc:
            raise ToolError(f"The mail server refused the message: {type(exc).__name__}.") from exc
    notification = notification_create(
        organization_id=call.organization_id,
        user=user,
        channel=channel,
        recipient=user.email if channel == "email" else "",
        message=args["message"],
        agent_id=call.agent_id,
        execution_id=execution.pk,
    )
    return {"sent": True, "channel": channel, "user": user.get_username(), "notification_id": str(notification.pk)}
