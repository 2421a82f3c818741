"""Models: frozen text encoders by spec, the TF-IDF weak model and a fine-tuning path."""

from gpu_worker.models import hf
from gpu_worker.models.base import Encoder, EncoderSpec, encoder_names, get_encoder, register_encoder

__all__ = ["Encoder", "EncoderSpec", "encoder_names", "get_encoder", "hf", "register_encoder"]
