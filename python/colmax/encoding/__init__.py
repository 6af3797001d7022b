"""Texts to token vectors: ColBERT tokenization, model directories, the ONNX encoder, checkpoint
conversion without torch, and the packaged default model."""

from .encoder import Encoder
from .models import ModelConfig, ModelFormatError
from .weights import CheckpointError

__all__ = ["CheckpointError", "Encoder", "ModelConfig", "ModelFormatError"]
