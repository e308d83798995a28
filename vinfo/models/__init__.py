"""Codecs of the paper (§3): transforms, quantisation, entropy models, tasks, base and
enhancement codecs, checkpoints. One module per concept; the public names are re-exported here.
"""

from vinfo.models.base import BaseCodec, BaseOutput, LossTerms, check_beta, check_lmbda
from vinfo.models.checkpoint import (
    MODEL_KINDS,
    build_model,
    load_checkpoint,
    model_spec,
    save_checkpoint,
)
from vinfo.models.config import (
    CODEC_PRESETS,
    HEAD_VARIANTS,
    TRANSFORM_LAYOUTS,
    CodecConfig,
    codec_preset,
)
from vinfo.models.enhancement import STRATEGIES, EnhancementCodec, EnhancementOutput, Strategy
from vinfo.models.entropy import (
    AutoregressiveEntropyModel,
    ConditionalEntropyModel,
    EntropyOutput,
    rate_bits,
    rate_bpp,
)
from vinfo.models.quantize import latent_from_symbols, quantize_ste, symbols_from_latent
from vinfo.models.tasks import TASKS, Task, get_task
from vinfo.models.transforms import (
    STRIDE,
    AnalysisTransform,
    ResidualBottleneckBlock,
    SynthesisTransform,
    pad_to_stride,
)

__all__ = [
    "CODEC_PRESETS",
    "HEAD_VARIANTS",
    "TRANSFORM_LAYOUTS",
    "MODEL_KINDS",
    "STRATEGIES",
    "STRIDE",
    "TASKS",
    "AnalysisTransform",
    "AutoregressiveEntropyModel",
    "BaseCodec",
    "BaseOutput",
    "CodecConfig",
    "ConditionalEntropyModel",
    "EnhancementCodec",
    "EnhancementOutput",
    "EntropyOutput",
    "LossTerms",
    "ResidualBottleneckBlock",
    "Strategy",
    "SynthesisTransform",
    "Task",
    "build_model",
    "check_beta",
    "check_lmbda",
    "codec_preset",
    "get_task",
    "latent_from_symbols",
    "load_checkpoint",
    "model_spec",
    "pad_to_stride",
    "quantize_ste",
    "rate_bits",
    "rate_bpp",
    "save_checkpoint",
    "symbols_from_latent",
]
