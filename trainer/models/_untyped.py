"""Third-party classes the trainer uses, typed as ``Any`` in one place.

diffusers builds its models behind lazy imports and an untyped ``register_to_config``
decorator, and transformers wraps ``to``; mypy --strict cannot follow either. Going through
this module keeps those gaps here instead of as ignores on every call.
"""

from typing import Any

import diffusers
import transformers
from diffusers.pipelines.wan import pipeline_wan

AutoencoderKLWan: Any = diffusers.AutoencoderKLWan
UniPCMultistepScheduler: Any = diffusers.UniPCMultistepScheduler
WanPipeline: Any = diffusers.WanPipeline
WanTransformer3DModel: Any = diffusers.WanTransformer3DModel
UMT5EncoderModel: Any = transformers.UMT5EncoderModel
prompt_clean: Any = pipeline_wan.prompt_clean
