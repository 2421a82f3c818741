"""Prompt scorers: a causal LM's log-probability of each class's verbalizer after a prompt.

A scorer is looked up by spec like an encoder (``smollm2`` or ``smollm2#256``, the number being the
token limit of a prompt). Tests register tiny stand-ins through ``register_scorer``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm  # type: ignore[import-untyped]

from gpu_worker.errors import DataError, UnknownNameError
from gpu_worker.models.base import Array, EncoderSpec
from gpu_worker.models.hf import SMOLLM2_GGUF, device, smollm2_dir

# Verbalizers of one class: alternative continuations (e.g. " positive", " good"); their probabilities add.
Verbalizers = Sequence[Sequence[str]]


class Scorer(Protocol):
    """Maps prompts to ``(n, K)`` log-probabilities of K classes' verbalizers, deterministically."""

    @property
    def name(self) -> str:
        """The full spec this scorer was built from (part of its cache key)."""
        ...

    def score(
        self,
        prompts: Sequence[str],
        verbalizers: Verbalizers,
        *,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Array:
        """Return ``(len(prompts), len(verbalizers))`` float32 log-probabilities."""
        ...


ScorerFactory = Callable[[EncoderSpec], Scorer]
_SCORERS: dict[str, ScorerFactory] = {}
_LOADED: dict[str, Scorer] = {}


def register_scorer(base: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Register a factory for scorer specs whose base name is ``base``."""

    def deco(fn: ScorerFactory) -> ScorerFactory:
        _SCORERS[base] = fn
        return fn

    return deco


def get_scorer(spec: str) -> Scorer:
    """Return the scorer for a spec, loading its model once per process.

    Raises:
        UnknownNameError: the base name is not registered.
        BadParamsError: the spec is malformed.
    """
    parsed = EncoderSpec.parse(spec)
    key = str(parsed)
    if key not in _LOADED:
        if parsed.base not in _SCORERS:
            raise UnknownNameError("prompt scorer", parsed.base, list(_SCORERS))
        _LOADED[key] = _SCORERS[parsed.base](parsed)
    return _LOADED[key]


def shared_start(ids: Sequence[list[int]]) -> int:
    """How many leading tokens every sequence shares, keeping at least one token of each (0: none)."""
    if len(ids) < 2:
        return 0
    # The common start of all sequences is that of the smallest and the largest in sort order.
    lo, hi = min(ids), max(ids)
    n = next((i for i, (a, b) in enumerate(zip(lo, hi, strict=False)) if a != b), min(len(lo), len(hi)))
    return max(0, min(n, min(len(x) for x in ids) - 1))


class CausalLMScorer:
    """Scores the first token of each verbalizer after a prompt with a transformers causal LM.

    Only the last prompt position goes through the LM head, and only its log-softmax is kept, so a
    prompt costs one decoder pass however many classes there are.
    """

    def __init__(self, name: str, lm: Any, tokenizer: Any, *, max_length: int) -> None:
        self._name = name
        self.lm = lm.to(device()).eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.max_length = max_length

    @property
    def name(self) -> str:
        """The spec this scorer was built from."""
        return self._name

    def first_tokens(self, verbalizers: Verbalizers) -> list[list[int]]:
        """The distinct first token ids of each class's verbalizers.

        Raises:
            DataError: two classes share a first token, so the LM could not tell them apart.
        """
        ids = [
            sorted({int(self.tokenizer.encode(v, add_special_tokens=False)[0]) for v in vs})
            for vs in verbalizers
        ]
        flat = [i for c in ids for i in c]
        if len(flat) != len(set(flat)):
            raise DataError(f"verbalizers {verbalizers!r} share a first token: {ids}", retryable=False)
        return ids

    @torch.inference_mode()
    def score(
        self,
        prompts: Sequence[str],
        verbalizers: Verbalizers,
        *,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Array:
        """Log-probabilities ``(n, K)``: per class, logsumexp over its verbalizers' first tokens.

        The tokens every prompt starts with (instruction and demonstrations) run through the LM once;
        each batch reuses their keys and values, so k demonstrations cost little more than none. The
        split is made on token ids, so the scores equal those of the whole prompts.
        """
        cls_ids = self.first_tokens(verbalizers)
        # Keep each prompt's last max_length tokens: a long prompt loses its start, never its answer cue.
        ids = [self.tokenizer(p)["input_ids"][-self.max_length :] for p in prompts]
        cut = shared_start(ids)
        prefix = self._prefix(ids[0][:cut]) if cut else None
        # Sorting by length packs similar lengths together, so batches carry little padding.
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(prompts), len(cls_ids)), dtype=np.float32)
        for start in tqdm(
            range(0, len(prompts), batch_size), desc=f"prompt {self._name}", disable=not progress
        ):
            idx = order[start : start + batch_size]
            h = self._last_states([ids[i][cut:] for i in idx], prefix, cut)
            logp = torch.log_softmax(self.lm.lm_head(h).float(), -1)
            out[idx] = torch.stack([torch.logsumexp(logp[:, c], -1) for c in cls_ids], 1).cpu().numpy()
        return out

    def _prefix(self, ids: list[int]) -> Any:
        """The LM's key/value cache after the shared tokens."""
        x = torch.tensor([ids], device=device())
        return self.lm.model(input_ids=x, use_cache=True).cache

    def _last_states(self, ids: list[list[int]], prefix: Any, p_len: int) -> torch.Tensor:
        """The final hidden state at each sequence's last token, continuing the cached prefix if any."""
        width = max(len(x) for x in ids)
        pad = int(self.tokenizer.pad_token_id)
        x = torch.tensor([s + [pad] * (width - len(s)) for s in ids], device=device())
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids], device=device())
        if prefix is None:
            h = self.lm.model(input_ids=x, attention_mask=mask).last_hidden_state
        else:
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(ids))
            full = torch.cat([torch.ones(len(ids), p_len, dtype=mask.dtype, device=mask.device), mask], 1)
            h = self.lm.model(input_ids=x, attention_mask=full, cache=cache, use_cache=True).last_hidden_state
        out: torch.Tensor = h[torch.arange(len(ids)), mask.sum(1) - 1]
        return out


@register_scorer("smollm2")
def _smollm2(spec: EncoderSpec) -> CausalLMScorer:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = smollm2_dir(), Path(SMOLLM2_GGUF).name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    lm = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    return CausalLMScorer(str(spec), lm, tok, max_length=spec.max_length or 384)
