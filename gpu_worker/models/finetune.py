"""Fine-tuning a strong encoder (full or LoRA) on weak targets; CUDA when present, CPU for tiny runs."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gpu_worker.errors import TaskFailedError
from gpu_worker.models.base import Array
from gpu_worker.models.hf import device, minilm_dir
from schemas.artifacts import SplitTexts, TaskView

# progress(step, total_steps, loss)
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    """Settings of one fine-tuning run.

    Attributes:
        model: ``minilm`` or a local/hub path loadable by ``AutoModel``.
        epochs: passes over the (kept) pool.
        lr: AdamW learning rate.
        batch_size: examples per step.
        max_length: tokens per text.
        lora_r: LoRA rank; 0 means full fine-tuning.
        keep: fraction of the pool kept, most weak-confident first (1.0 keeps all).
        soft: train on weak probabilities rather than hard labels.
        max_examples: cap on pool examples (for quick CPU runs).
        device: ``cpu`` or ``cuda``; default CUDA when present.
    """

    model: str = "minilm"
    epochs: int = 1
    lr: float = 3e-5
    batch_size: int = 32
    max_length: int = 128
    lora_r: int = 0
    keep: float = 1.0
    soft: bool = False
    max_examples: int | None = None
    device: str | None = None


class _Student(nn.Module):
    def __init__(self, encoder: Any, dim: int, n_classes: int, pair: bool) -> None:
        super().__init__()
        self.encoder, self.pair = encoder, pair
        self.head = nn.Linear(dim * (4 if pair else 1), n_classes)

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.encoder(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
        out: torch.Tensor = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return out

    def forward(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor] | None) -> torch.Tensor:
        u = self.embed(a)
        if b is None:
            return self.head(u)  # type: ignore[no-any-return]
        v = self.embed(b)
        return self.head(torch.cat([u, v, u * v, (u - v).abs()], -1))  # type: ignore[no-any-return]


def _load(cfg: FinetuneConfig) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = str(minilm_dir()) if cfg.model == "minilm" else cfg.model
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cfg.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        targets = [
            n for n in ("query", "value", "q_proj", "v_proj") if any(n in k for k, _ in enc.named_modules())
        ]
        with warnings.catch_warnings():
            # peft 0.21 still calls transformers' deprecated is_gradient_checkpointing; harmless, not ours.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            enc = get_peft_model(
                enc, LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules=targets)
            )
    return tok, enc


def finetune_student(
    view: TaskView,
    weak_pool: Array,
    cfg: FinetuneConfig,
    seed: int = 0,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> Array:
    """Fine-tune the strong encoder plus a linear head on weak pool targets; predict dev then final.

    Args:
        view: the label-free task view.
        weak_pool: ``(n_pool, K)`` weak probabilities on the pool.
        cfg: run settings.
        seed: seeds init and batch order.
        stop: set it to abort between steps.
        progress: called after every step.

    Returns:
        ``(n_dev + n_final, K)`` class probabilities.

    Raises:
        TaskFailedError: aborted through ``stop`` (retryable).
    """
    torch.manual_seed(seed)
    dev = torch.device(cfg.device) if cfg.device else device()
    tok, enc = _load(cfg)
    pair = view.kind == "pair"
    model = _Student(enc, int(enc.config.hidden_size), view.n_classes, pair).to(dev)
    conf, labels = weak_pool.max(1), weak_pool.argmax(1)
    rows = np.argsort(-conf, kind="stable")[: max(1, round(cfg.keep * len(conf)))]
    rows = np.sort(rows[: cfg.max_examples] if cfg.max_examples else rows)
    targets = torch.from_numpy(weak_pool if cfg.soft else np.eye(view.n_classes, dtype=np.float32)[labels])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    rng = np.random.default_rng(seed)
    steps = cfg.epochs * -(-len(rows) // cfg.batch_size)

    def tokens(texts: Sequence[str]) -> dict[str, torch.Tensor]:
        out = tok(list(texts), padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt")
        return {k: v.to(dev) for k, v in out.items()}

    def batch(
        split: SplitTexts, idx: Sequence[int]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        a = tokens([split.texts[i] for i in idx])
        return a, (tokens([split.texts_b[i] for i in idx]) if split.texts_b is not None else None)

    model.train()
    step = 0
    for _ in range(cfg.epochs):
        order = rows[rng.permutation(len(rows))]
        for s in range(0, len(order), cfg.batch_size):
            if stop is not None and stop.is_set():
                raise TaskFailedError("fine-tuning stopped", retryable=True)
            idx = order[s : s + cfg.batch_size].tolist()
            logits = model(*batch(view.pool, idx))
            loss = -(targets[idx].to(dev) * torch.log_softmax(logits, -1)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            step += 1
            if progress is not None:
                progress(step, steps, float(loss.detach()))
    model.eval()
    out = []
    with torch.inference_mode():
        for split in (view.dev, view.final):
            for s in range(0, len(split), 64):
                out.append(torch.softmax(model(*batch(split, range(s, min(s + 64, len(split))))), -1).cpu())
    return torch.cat(out).numpy().astype(np.float32)
