"""Base weights in NF4, int8 or bf16 through bitsandbytes' own layers.

diffusers' ``from_pretrained(quantization_config=...)`` refuses to run without a GPU, so the
trainer swaps ``nn.Linear`` for ``bnb.nn.Linear4bit`` / ``Linear8bitLt`` itself (as diffusers'
``replace_with_bnb_linear`` does) and quantises each weight the moment it arrives. One code
path serves CPU and CUDA, and the full-precision model is never resident at once: the
skeleton lives on the meta device and tensors stream in one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import bitsandbytes
import torch
from torch import nn

from core.bases.quantization import Quantization

# bitsandbytes' stubs do not export its layer and parameter classes.
bnb: Any = bitsandbytes


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Build modules whose parameters live on the meta device while buffers stay real.

    Buffers that no checkpoint holds (rotary tables) are computed in ``__init__``; putting
    everything on meta would lose them, so only parameters are redirected.
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None:
            kwargs = dict(param.__dict__)
            kwargs["requires_grad"] = param.requires_grad
            module._parameters[name] = type(param)(param.to("meta"), **kwargs)

    nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def replace_linears(
    model: nn.Module,
    quantization: Quantization,
    *,
    compute_dtype: torch.dtype,
    should_quantize: Callable[[str], bool],
    int8_threshold: float = 0.0,
) -> list[str]:
    """Swap every matching ``nn.Linear`` for an empty bitsandbytes layer; returns their names.

    Run on a meta skeleton: the new layers hold no data until ``assign_tensor`` fills them.
    ``int8_threshold`` is LLM.int8()'s outlier threshold: int8 layers quantise their inputs
    row by row too, and input features above it stay in 16-bit instead.
    """
    if not quantization.is_quantized:
        return []
    replaced: list[str] = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear or not should_quantize(name):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        has_bias = module.bias is not None
        layer: Any
        with torch.device("meta"):
            if quantization is Quantization.NF4:
                layer = bnb.nn.Linear4bit(
                    module.in_features,
                    module.out_features,
                    bias=has_bias,
                    compute_dtype=compute_dtype,
                    compress_statistics=True,
                    quant_type="nf4",
                )
            else:
                layer = bnb.nn.Linear8bitLt(
                    module.in_features,
                    module.out_features,
                    bias=has_bias,
                    has_fp16_weights=False,
                    threshold=int8_threshold,
                )
        # bitsandbytes repacks 4-bit weights for its CPU inference kernel the first time a
        # layer runs in eval mode without grad, and keeps them repacked. Validation would then
        # change the numerics of every later training step; one layout keeps runs reproducible.
        layer.support_avx512bf16_for_cpu = False
        layer.requires_grad_(False)
        setattr(parent, child, layer)
        replaced.append(name)
    return replaced


def _keeps_fp32(name: str, keep_in_fp32: Iterable[str]) -> bool:
    parts = name.split(".")
    return any(pattern in parts for pattern in keep_in_fp32)


def assign_tensor(
    model: nn.Module,
    name: str,
    tensor: torch.Tensor,
    *,
    device: torch.device,
    dtype: torch.dtype,
    keep_in_fp32: Iterable[str] = (),
) -> None:
    """Put one checkpoint tensor into the skeleton, quantising it if its layer is a bnb layer.

    The caller drops its own reference afterwards, so at most one full-precision tensor is
    alive beyond the model being built.
    """
    module_name, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(module_name)
    except AttributeError as exc:
        raise KeyError(f"checkpoint tensor {name!r} has no place in the model") from exc
    if attr in module._buffers:
        module._buffers[attr] = tensor.to(device=device)
        return
    if attr not in module._parameters:
        raise KeyError(f"checkpoint tensor {name!r} has no place in the model")
    if attr == "weight" and isinstance(module, bnb.nn.Linear4bit):
        # Params4bit quantises on its first move to a real device, here from the
        # compute dtype so that CPU and CUDA quantise the same numbers.
        param: nn.Parameter = bnb.nn.Params4bit(
            tensor.to(dtype=dtype),
            requires_grad=False,
            compress_statistics=module.weight.compress_statistics,
            quant_type=module.weight.quant_type,
            quant_storage=module.weight.quant_storage,
            module=module,
        ).to(device)
    elif attr == "weight" and isinstance(module, bnb.nn.Linear8bitLt):
        param = bnb.nn.Int8Params(tensor.to("cpu"), requires_grad=False, has_fp16_weights=False).to(device)
    else:
        target = torch.float32 if _keeps_fp32(name, keep_in_fp32) else dtype
        param = nn.Parameter(tensor.to(device=device, dtype=target), requires_grad=False)
    module._parameters[attr] = param


def load_streaming(
    model: nn.Module,
    tensors: Iterable[tuple[str, torch.Tensor]],
    *,
    device: torch.device,
    dtype: torch.dtype,
    keep_in_fp32: Iterable[str] = (),
    ignore_unexpected: Callable[[str], bool] = lambda _name: False,
    on_host: Callable[[str], bool] = lambda _name: False,
) -> None:
    """Fill a meta skeleton from a stream of ``(name, tensor)``; raise if anything stays empty.

    Tensors ``on_host`` names go to the CPU whatever ``device`` is: a lookup table that only
    ever gathers a few rows costs the accelerator its whole size for no compute.
    """
    keep = tuple(keep_in_fp32)
    host = torch.device("cpu")
    for name, tensor in tensors:
        if ignore_unexpected(name):
            continue
        target = host if on_host(name) else device
        assign_tensor(model, name, tensor, device=target, dtype=dtype, keep_in_fp32=keep)
        del tensor
    missing = [name for name, p in model.named_parameters() if p.device.type == "meta"]
    missing += [name for name, b in model.named_buffers() if b.device.type == "meta"]
    if missing:
        shown = ", ".join(missing[:5])
        raise KeyError(f"the checkpoint lacks {len(missing)} tensors the model needs: {shown}")


def quantized_layers(model: nn.Module) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit | bnb.nn.Linear8bitLt)]


def describe(model: nn.Module) -> dict[str, Any]:
    """Counts for logs and the training record: how much of the base is quantised."""
    quantized = quantized_layers(model)
    return {
        "quantized_linears": len(quantized),
        "quantized_weights": sum(m.in_features * m.out_features for m in quantized),
        "other_parameters": sum(
            p.numel() for p in model.parameters() if not isinstance(p, bnb.nn.Params4bit | bnb.nn.Int8Params)
        ),
    }
