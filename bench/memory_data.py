"""The memory benchmark's data: structured vectors per agent (DESIGN.md §8) and the exact top-k.

Each agent has a weak centre and topics (one per ten memories) in a rank-64 latent space; a
memory is a topic plus latent spread, projected to 384 dimensions plus isotropic noise, then
L2-normalised; queries are fresh samples of the same agent (see ``bench.memory_search``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

DIMS = 384
RANK = 64
CHUNK = 50_000
K = 10


# -- data ----------------------------------------------------------------------------------


@dataclass
class AgentSpec:
    key: str  # "spread-17", "single", "ladder-20000"
    seed: int
    size: int
    offset: int = 0  # first row id

    @property
    def agent_id(self) -> uuid.UUID:
        return uuid.UUID(int=(1 << 64) + self.seed)


def _basis() -> np.ndarray:
    rng = np.random.default_rng(12345)
    return (rng.normal(size=(RANK, DIMS)) / np.sqrt(RANK)).astype(np.float32)


BASIS = _basis()


def _topics(seed: int, size: int) -> np.ndarray:
    """An agent's topics: around its (weak) centre; more memories, more topics."""
    rng = np.random.default_rng([seed, 0])
    centre = 0.4 * rng.normal(size=RANK)
    count = min(max(16, size // 10), 20_000)
    return centre + rng.normal(size=(count, RANK))


def _sample(topics: np.ndarray, rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    latent = topics[rng.integers(0, len(topics), n)] + 0.9 * rng.normal(size=(n, RANK))
    x = latent.astype(np.float32) @ BASIS + noise * rng.normal(size=(n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def agent_vectors(spec: AgentSpec, noise: float) -> Iterator[tuple[int, np.ndarray]]:
    """(first row index within the agent, vectors) chunk by chunk; deterministic per seed."""
    topics = _topics(spec.seed, spec.size)
    for start in range(0, spec.size, CHUNK):
        rng = np.random.default_rng([spec.seed, 1, start])
        yield start, _sample(topics, rng, min(CHUNK, spec.size - start), noise)


def agent_queries(spec: AgentSpec, count: int, noise: float) -> np.ndarray:
    return _sample(_topics(spec.seed, spec.size), np.random.default_rng([spec.seed, 2]), count, noise)


def exact_top_k(spec: AgentSpec, queries: np.ndarray, noise: float) -> list[list[int]]:
    """Ground truth: the k nearest row ids by cosine (vectors are unit length: dot product)."""
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    for start, vectors in agent_vectors(spec, noise):
        scores = queries @ vectors.T
        ids = np.broadcast_to(np.arange(start, start + len(vectors)) + spec.offset, scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, ids], axis=1)
        top = np.argpartition(-all_scores, K - 1, axis=1)[:, :K]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_ids = np.take_along_axis(all_ids, top, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_ids, order, axis=1).tolist()


@dataclass
class Layout:
    memories: int
    agents: int
    single: int
    ladder: list[int]
    noise: float
    specs: list[AgentSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        seed = 1
        per_agent, extra = divmod(self.memories, self.agents) if self.agents else (0, 0)
        for index in range(self.agents):
            self.specs.append(AgentSpec(f"spread-{index}", seed, per_agent + (1 if index < extra else 0)))
            seed += 1
        if self.single:
            self.specs.append(AgentSpec("single", seed, self.single))
            seed += 1
        for size in self.ladder:
            self.specs.append(AgentSpec(f"ladder-{size}", seed, size))
            seed += 1
        offset = 0
        for spec in self.specs:
            spec.offset = offset
            offset += spec.size

    @property
    def rows(self) -> int:
        return sum(s.size for s in self.specs)

    def signature(self) -> str:
        return json.dumps(
            {"memories": self.memories, "agents": self.agents, "single": self.single, "ladder": self.ladder,
             "noise": self.noise, "dims": DIMS, "rank": RANK, "version": 2},
            sort_keys=True,
        )  # fmt: skip
