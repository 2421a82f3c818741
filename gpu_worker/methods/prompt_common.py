"""Calibration of zero/few-shot prompt scores, shared by the prompting methods.

Small LMs carry a strong bias towards some verbalizers whatever the input (SmolLM2 says " positive"
far more than " negative"), so raw argmax mostly predicts one class. Both calibrations below use
only unlabelled texts or weak labels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from gpu_worker.errors import BadParamsError
from gpu_worker.methods.base import MethodInput
from gpu_worker.models.base import Array

Calibration = Literal["none", "mean", "batch", "prior"]


def require_prompt(inp: MethodInput, method: str) -> tuple[Array, Array]:
    """The pool and eval prompt scores.

    Raises:
        BadParamsError: the features were prepared without prompt scores.
    """
    if inp.prompt_pool is None or inp.prompt_eval is None:
        raise BadParamsError(
            f"method {method!r} needs prompt scores: prepare features with a PromptSpec "
            "(prepare_features(..., prompt=PromptSpec()))"
        )
    return inp.prompt_pool, inp.prompt_eval


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(1, keepdims=True)))


def prior_bias(z: np.ndarray, prior: np.ndarray, steps: int = 200) -> np.ndarray:
    """Per-class biases so that ``argmax(z + bias)`` labels follow ``prior`` on these rows.

    Two classes get the exact quantile threshold; more classes get a multiplicative-weights search.
    """
    k = z.shape[1]
    if k == 2:
        margin = z[:, 1] - z[:, 0]
        thr = float(np.quantile(margin, 1.0 - float(prior[1])))
        return np.asarray([0.0, -thr])
    bias = np.zeros(k)
    scale = float(z.std()) + 1e-12
    target = np.log(np.clip(prior, 1e-6, 1.0))
    for _ in range(steps):
        freq = np.bincount((z + bias).argmax(1), minlength=k) / len(z)
        bias += 0.1 * scale * (target - np.log(freq + 1e-3))
    return bias


def calibrated_logits(inp: MethodInput, mode: Calibration, method: str) -> tuple[Array, Array]:
    """Class log-scores on the pool and on eval, after calibration.

    ``mean``: subtract each class's mean log-probability over every unlabelled text (pool and eval), so a
    verbalizer the LM favours everywhere no longer wins; exact for a bias that adds to the logits.
    ``batch`` (batch calibration, Zhou et al. 2024): divide each class's probability by its mean over the
    same texts instead; weaker when the LM's probabilities saturate.
    ``prior``: add the biases that make the pool's zero-shot labels follow the weak labels' class prior.
    """
    pool, ev = require_prompt(inp, method)
    lp, le = _log_softmax(pool.astype(np.float64)), _log_softmax(ev.astype(np.float64))
    if mode == "mean":
        shift = -np.concatenate([lp, le]).mean(0)
    elif mode == "batch":
        mean_p = np.exp(np.concatenate([lp, le])).mean(0)
        shift = -np.log(mean_p + 1e-12)
    elif mode == "prior":
        shift = prior_bias(lp, inp.weak_pool.mean(0))
    else:
        shift = np.zeros(lp.shape[1])
    return (lp + shift).astype(np.float32), (le + shift).astype(np.float32)


def softmax(z: Array, temperature: float = 1.0) -> Array:
    """Row softmax of ``z / temperature`` as float32."""
    return np.asarray(np.exp(_log_softmax(z.astype(np.float64) / temperature)), dtype=np.float32)
