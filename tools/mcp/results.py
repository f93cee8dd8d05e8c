"""An MCP ``CallToolResult`` as what the model, the step and the ToolCall log get.

- Text blocks: their text, joined (the gateway bounds the whole answer afterwards).
- ``structuredContent``: as it came, checked against the tool's output schema (the one its
  sync vetted) with the platform's bounded evaluator; a mismatch is a failed call.
- Embedded text resources: their URI, type and text, each at most ``RESOURCE_MAX_CHARS``;
  resource links: their URI, name and description.
- Images, audio and binary resources are recorded *by reference*: their bytes go nowhere (not
  to the model, the step, the log or the database). What is kept is ``{"kind", "mime_type",
  "size_bytes", "sha256"}`` (and the URI, for a resource) — enough to tell which content the
  server sent and to fetch it again from the server where it has a URI.
- ``isError``: the server's own error text becomes the failed call's message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import mcp_types as types

from config.json_schema import error_line, schema_errors
from tools.builtins.base import ToolError

RESOURCE_MAX_CHARS = 4_000
MAX_BLOCKS = 50
ERROR_MAX_CHARS = 1_000


def _by_reference(kind: str, mime_type: str | None, data: str, uri: str | None = None) -> dict[str, Any]:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = data.encode()
    reference: dict[str, Any] = {
        "kind": kind,
        "mime_type": mime_type or "application/octet-stream",
        "size_bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    if uri:
        reference["uri"] = uri
    reference["note"] = f"The server returned {kind} content; it is recorded by reference, not shown."
    return reference


def _resource(block: types.EmbeddedResource) -> dict[str, Any]:
    contents = block.resource
    if isinstance(contents, types.TextResourceContents):
        text = contents.text
        entry: dict[str, Any] = {"uri": str(contents.uri), "mime_type": contents.mime_type or "text/plain"}
        entry["text"] = text[:RESOURCE_MAX_CHARS]
        if len(text) > RESOURCE_MAX_CHARS:
            entry["truncated"] = True
            entry["original_chars"] = len(text)
        return entry
    return _by_reference("binary", contents.mime_type, contents.blob, str(contents.uri))


def result_output(
    result: types.CallToolResult, *, tool: str, output_schema: dict[str, Any] | None, untrusted: bool
) -> dict[str, Any]:
    """The answer for the model (JSON-able), or ``ToolError`` for ``isError`` or a bad result."""
    texts: list[str] = []
    resources: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for block in result.content[:MAX_BLOCKS]:
        if isinstance(block, types.TextContent):
            texts.append(block.text)
        elif isinstance(block, types.ImageContent):
            media.append(_by_reference("image", block.mime_type, block.data))
        elif isinstance(block, types.AudioContent):
            media.append(_by_reference("audio", block.mime_type, block.data))
        elif isinstance(block, types.EmbeddedResource):
            entry = _resource(block)
            (media if entry.get("kind") else resources).append(entry)
        elif isinstance(block, types.ResourceLink):
            resources.append(
                {"uri": str(block.uri), "name": block.name, "description": block.description or "", "link": True}
            )
    text = "\n".join(texts)
    if result.is_error:
        raise ToolError(f"{tool} reported an error: {text[:ERROR_MAX_CHARS] or '(no message)'}")
    output: dict[str, Any] = {"text": text}
    if result.structured_content is not None:
        if output_schema:
            problems = [error_line(e) for e in schema_errors(output_schema, result.structured_content, limit=3)]
            if problems:
                raise ToolError(
                    f"{tool} returned structured content that does not match its output schema: " + "; ".join(problems)
                )
        output["structured_content"] = result.structured_content
    if resources:
        output["resources"] = resources
    if media:
        output["media"] = media
    if len(result.content) > MAX_BLOCKS:
        output["omitted_blocks"] = len(result.content) - MAX_BLOCKS
    if untrusted:
        output["untrusted_content"] = True
    return output
