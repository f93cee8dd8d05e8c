"""email_send, email_draft, notify_user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from tools.builtins.base import Invocation, ToolError
from tools.builtins.people import member
from tools.builtins.remote import sms_send
from tools.services import email_draft_create, notification_create


def _agent_headers(call: Invocation) -> dict[str, str]:
    # Lets a mail system trace an agent's email back to the run that sent it.
    return {"X-Agentry-Agent": str(call.agent_id), "X-Agentry-Execution": str(call.execution.pk)}


def email_send(call: Invocation) -> dict[str, Any]:
    args = call.arguments
    if args.get("template_id"):
        raise ToolError("template_id is not supported here; send the subject and body themselves.")
    connection = get_connection(timeout=max(1, int(call.remaining())))
    message = EmailMessage(
        subject=args["subject"],
        body=args["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(args["to"]),
        headers=_agent_headers(call),
        connection=connection,
    )
    try:
        sent = message.send(fail_silently=False)
    except OSError as exc:  # smtplib errors are OSErrors
        raise ToolError(f"The mail server refused the message: {type(exc).__name__}.") from exc
    return {"sent": bool(sent), "to": list(args["to"]), "subject": args["subject"]}


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
