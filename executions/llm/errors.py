"""The errors every LLM adapter raises, whatever SDK is underneath.

Callers catch these, never an SDK's own classes: the runtime decides on retry, fallback and
what to record from ``retryable`` and the subclass. Messages are built from the provider's error
text and status only; they never include request headers, so an API key cannot leak through
``str(exc)``, ``repr(exc)`` or a traceback's locals of this object.
"""

from __future__ import annotations

import re

# Provider error texts sometimes quote the key they rejected ("Incorrect API key provided:
# sk-abc...xyz"). Mask anything that looks like a key before it reaches a message or log line.
_KEY_PATTERN = re.compile(r"\b(?:sk|gsk|xai)[-_][A-Za-z0-9_\-*.]{6,}")
# What a provider's answer may contribute to an error a tenant reads: a short excerpt.
# The server behind an organization's base URL is theirs to choose, so its body is anyone's
# content (an internal page, a script); it is never copied whole.
EXCERPT_CHARS = 240
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)
_UNPRINTABLE = re.compile(r"[^\S ]+|[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A bounded, one-line, plain-text excerpt of something a provider sent: markup, scripts
    and control characters removed, whitespace collapsed, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text[: limit * 50]  # bound the work below, whatever the size of the body
    text = _TAGS.sub(" ", text)
    text = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def redact(text: str, *, secrets: tuple[str | None, ...] = ()) -> str:
    """A provider's error text as a run may show it: known secrets and key-shaped tokens
    masked (before cutting, so no half of a key survives), then a short plain excerpt."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _KEY_PATTERN.sub("***", text)
    return excerpt(text)


def describe_answer(value: object) -> str:
    """What came back instead of the protocol's answer, in a few words (for error messages)."""
    if isinstance(value, str | bytes):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return f"it is text: '{excerpt(_KEY_PATTERN.sub('***', text[:20_000]), 80)}'" if text.strip() else "it is empty"
    if isinstance(value, list | tuple):
        return "it is a JSON list"
    if value is None or isinstance(value, bool | int | float):
        return f"it is {value!r}"
    return "it has another shape"


class LLMError(Exception):
    """A model call failed. ``retryable``: the same call may succeed if repeated later."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        retryable: bool | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.code = code
        # Seconds the provider asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after
        # How many times the call was tried before giving up (set by the retry loop).
        self.attempts = attempts
        # Set by complete_with_fallback when every config failed: what was tried, in order.
        self.fallback_attempts: list = []
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = "/".join(part for part in (self.provider, self.model) if part)
        status = f" HTTP {self.status_code}" if self.status_code else ""
        prefix = f"{where}{status}: " if where or status else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, "
            f"status_code={self.status_code!r}, retryable={self.retryable!r}, message={self.message!r})"
        )

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Celery serialises exceptions between processes; keep every attribute across the trip.
        return (
            _rebuild,
            (
                type(self),
                self.message,
                {
                    "provider": self.provider,
                    "model": self.model,
                    "status_code": self.status_code,
                    "retryable": self.retryable,
                    "code": self.code,
                    "retry_after": self.retry_after,
                    "attempts": self.attempts,
                },
            ),
        )


def _rebuild(cls: type[LLMError], message: str, kwargs: dict) -> LLMError:
    return cls(message, **kwargs)


class LLMRateLimited(LLMError):
    """HTTP 429. Retryable, except OpenAI's ``insufficient_quota`` (a billing state, not a burst)."""

    default_retryable = True


class LLMProviderUnavailable(LLMError):
    """5xx, 529 overloaded, connection refused or reset, timeouts: the provider, not the request."""

    default_retryable = True


class LLMInvalidResponse(LLMProviderUnavailable):
    """HTTP 200, but not the protocol's answer: HTML, JSON of another shape, a cut-off body or
    stream. The provider's fault (retried, then the next fallback), never the run's loop's."""


def invalid_response(what: str, problem: str, *, provider: str, model: str) -> LLMInvalidResponse:
    """``the provider's answer is not <what> (<problem>)``: ``problem`` is ours or an excerpt."""
    return LLMInvalidResponse(
        f"the provider's answer is not {what} ({problem})", provider=provider, model=model, code="invalid_response"
    )


class LLMAuthError(LLMError):
    """401/403 or no credentials at all: this configuration cannot work until someone fixes it."""


class LLMBadRequest(LLMError):
    """400/404/413/422: the provider rejected what we sent (unknown model, context too long, bad schema)."""


class LLMUnsupported(LLMError):
    """The provider has no such capability here (for example embeddings on Anthropic)."""


class LLMConfigurationError(LLMError):
    """The ProviderConfig itself is unusable (unknown provider, compatible server without base_url)."""
