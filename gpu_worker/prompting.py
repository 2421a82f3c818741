"""Zero/few-shot prompt scores of the strong LM on every example, cached per (model, task, template, k, seed).

The only labels a prompt can carry are weak_train's gold labels, which the view holds for the weak
supervisor: ``build_prompts`` takes nothing but the view, and the view has no pool, dev or final
label by construction. Scores are log-probabilities of each class's verbalizer; they are label-free
features of the texts, like strong embeddings, and reach methods as ``MethodInput.prompt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpu_worker.errors import BadParamsError
from gpu_worker.features import FeatureTable
from gpu_worker.models.base import Array
from gpu_worker.models.scorer import get_scorer
from gpu_worker.prompt_templates import PromptTemplate, template_for
from schemas.artifacts import TaskView

# Splits methods read: the transfer pool and the unlabelled eval texts (weak_train feeds demonstrations).
PROMPT_SPLITS = ("pool", "dev", "final")


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """Which prompt scores to compute.

    Attributes:
        model: a registered scorer spec, e.g. ``smollm2`` or ``smollm2#256``.
        template: a template name (``rt``, ``roget``, ``code``, ``generic``); None: the task's own.
        k: demonstrations per prompt, drawn class-balanced from weak_train with its gold labels.
        seed: picks and orders the demonstrations.
    """

    model: str = "smollm2"
    template: str | None = None
    k: int = 0
    seed: int = 0

    def table_name(self, template: PromptTemplate) -> str:
        """The cache folder's model part (rows are keyed by the full prompt, so this only groups them).

        Zero-shot prompts do not depend on the seed, so every seed shares one table.
        """
        return f"prompt-{self.model}-{template.name}-k{self.k}" + (f"-s{self.seed}" if self.k else "")


def pick_demos(view: TaskView, k: int, seed: int) -> list[tuple[str, str | None, int]]:
    """``k`` weak_train examples with their gold labels, classes in turn, in a seeded random order.

    Class balance keeps the demonstrations from teaching a class prior; shuffling their order keeps the
    last one (which small LMs copy most) from always being the same class.
    """
    if k < 0:
        raise BadParamsError(f"k must be >= 0, got {k}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(view.weak_train_labels)
    by_class = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in range(view.n_classes)]
    picked: list[int] = []
    while len(picked) < k and any(by_class):
        for c in rng.permutation(view.n_classes):
            if by_class[c] and len(picked) < k:
                picked.append(by_class[c].pop())
    s = view.weak_train
    return [
        (s.texts[i], None if s.texts_b is None else s.texts_b[i], int(labels[i]))
        for i in rng.permutation(picked)
    ]


def build_prompts(
    view: TaskView, template: PromptTemplate, k: int = 0, seed: int = 0
) -> dict[str, list[str]]:
    """Prompts for every text of ``PROMPT_SPLITS``; the same demonstrations prefix all of them.

    Raises:
        BadParamsError: the template has a different number of classes than the task, or ``k < 0``.
    """
    if len(template.verbalizers) != view.n_classes:
        raise BadParamsError(
            f"template {template.name!r} has {len(template.verbalizers)} classes, task {view.task!r} has "
            f"{view.n_classes}"
        )
    demos = pick_demos(view, k, seed)
    out: dict[str, list[str]] = {}
    for name in PROMPT_SPLITS:
        s = view.split(name)
        bs: list[str | None] = list(s.texts_b) if s.texts_b is not None else [None] * len(s)
        out[name] = [template.render(demos, a, b) for a, b in zip(s.texts, bs, strict=True)]
    return out


def prompt_scores(
    view: TaskView,
    spec: PromptSpec,
    *,
    root: Path | None = None,
    progress: bool = False,
    batch_size: int = 16,
) -> dict[str, Array]:
    """``(n, K)`` verbalizer log-probabilities for every split of ``PROMPT_SPLITS``, computed once per prompt.

    The cache is a ``FeatureTable`` keyed by a hash of the full prompt, so a changed demonstration,
    template or text can never be served a stale score.

    Args:
        view: the label-free task view.
        spec: scorer, template, shots and seed.
        root: cache root (default: the user cache dir).
        progress: show a progress bar while scoring.
        batch_size: prompts per forward pass.
    """
    template = template_for(view, spec.template)
    prompts = build_prompts(view, template, spec.k, spec.seed)
    table = FeatureTable(spec.table_name(template), view.task, root)
    todo = table.missing([p for ps in prompts.values() for p in ps])
    if todo:
        scorer = get_scorer(spec.model)
        table.add(todo, scorer.score(todo, template.verbalizers, batch_size=batch_size, progress=progress))
    return {name: table.get(ps) for name, ps in prompts.items()}
