"""Writes for memory. Import from here: ``from memory.services import memory_store, ...``.

The runtime reaches memory only through ``memory.hooks`` (registered in settings); the tools
app wires ``knowledge_search`` as the built-in tool of that name.
"""

from memory.services.conversations import (
    conversation_append,
    conversation_delete,
    conversation_history_for,
    conversations_expire,
    history_window,
)
from memory.services.extraction import execution_memory_process, extraction_parse
from memory.services.knowledge import (
    document_delete,
    document_index,
    document_upload,
    knowledge_base_create,
    knowledge_base_delete,
    knowledge_base_reindex,
    knowledge_base_search,
    knowledge_base_update,
    knowledge_search,
)
from memory.services.maintenance import (
    memories_expire,
    memories_reembed,
    memory_consolidate,
    memory_maintain,
    memory_prune,
)
from memory.services.memories import (
    MemoryInput,
    StoreResult,
    memories_store,
    memory_access_record,
    memory_delete,
    memory_input_validate,
    memory_retrieve,
    memory_store,
    memory_update,
)
from memory.services.pending import memory_embed_pending

__all__ = [
    "MemoryInput",
    "StoreResult",
    "conversation_append",
    "conversation_delete",
    "conversation_history_for",
    "conversations_expire",
    "document_delete",
    "document_index",
    "document_upload",
    "execution_memory_process",
    "extraction_parse",
    "history_window",
    "knowledge_base_create",
    "knowledge_base_delete",
    "knowledge_base_reindex",
    "knowledge_base_search",
    "knowledge_base_update",
    "knowledge_search",
    "memories_expire",
    "memories_reembed",
    "memories_store",
    "memory_access_record",
    "memory_consolidate",
    "memory_delete",
    "memory_embed_pending",
    "memory_input_validate",
    "memory_maintain",
    "memory_prune",
    "memory_retrieve",
    "memory_store",
    "memory_update",
]
