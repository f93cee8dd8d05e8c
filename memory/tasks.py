"""Entry points on the ``default`` queue: take ids, call a service, return quietly."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError, transaction

from executions.models import Execution
from memory.embedders import EmbedderUnavailable
from memory.models import Document, DocumentStatus

logger = logging.getLogger(__name__)

QUEUE = "default"


# The database unreachable or its pool exhausted: tried again with backoff (the service is
# safe to call twice: one Episode per execution).
@shared_task(
    name="memory.after_execution",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=8,
)
def after_execution(execution_id: str) -> None:
    """Extraction, memories and the Episode of a finished run; its conversation turn."""
    from memory.services import conversation_append, execution_memory_process  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    execution_memory_process(execution_id=execution_id)
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is not None:
        conversation_append(execution=execution)  # idempotent: usually done by the hook already


def enqueue_after_execution(execution_id: Any) -> None:
    transaction.on_commit(lambda: after_execution.apply_async(args=[str(execution_id)], queue=QUEUE))


@shared_task(
    name="memory.embed_pending",
    ignore_result=True,
    autoretry_for=(EmbedderUnavailable,),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=8,
)
def embed_pending() -> dict:
    from memory.services import memory_embed_pending  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    return memory_embed_pending()


def enqueue_embed_pending() -> None:
    transaction.on_commit(lambda: embed_pending.apply_async(queue=QUEUE))


@shared_task(name="memory.index_document", bind=True, acks_late=True, ignore_result=True, max_retries=5)
def index_document(self, document_id: str) -> None:
    from memory.services import document_index  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    try:
        document_index(document_id=document_id)
    except EmbedderUnavailable as exc:
        if self.request.retries >= self.max_retries:
            Document.objects.filter(pk=document_id).update(status=DocumentStatus.FAILED, error=str(exc)[:2000])
            return
        raise self.retry(exc=exc, countdown=min(900, 30 * 2**self.request.retries)) from exc


def enqueue_index_document(document_id: Any) -> None:
    transaction.on_commit(lambda: index_document.apply_async(args=[str(document_id)], queue=QUEUE))


@shared_task(name="memory.maintain", ignore_result=True)
def maintain() -> dict:
    """Daily: consolidate and prune every agent holding enough memories; drop expired ones."""
    from memory.services import memory_maintain  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    result = memory_maintain(progress=logger.info)
    return vars(result)


@shared_task(name="memory.expire_conversations", ignore_result=True)
def expire_conversations() -> int:
    from memory.services import conversations_expire  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    return conversations_expire()
