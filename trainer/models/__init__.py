"""Base model specifications. Importing this package registers every shipped architecture."""

from trainer.models import tiny, wan
from trainer.models.registry import (
    ModelSpecification,
    NoisedBatch,
    TextEncoder,
    architectures,
    get_specification,
    load_specification,
    register,
)

__all__ = [
    "ModelSpecification",
    "NoisedBatch",
    "TextEncoder",
    "architectures",
    "get_specification",
    "load_specification",
    "register",
    "tiny",
    "wan",
]
