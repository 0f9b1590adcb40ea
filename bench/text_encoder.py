"""Peak memory and embedding quality of the caching stage's UMT5 text encoder in bf16, int8 and NF4.

    python -m bench.text_encoder [--layers 24] [--tokens 64] [--variants bf16 int8 nf4]

Builds a UMT5 encoder with UMT5-XXL's dimensions (Wan 2.1's text encoder: d_model 4096, 64
heads, gated FFN 10240, vocabulary 256,384) and random weights drawn with transformers' own
initialisation, streamed through the trainer's loader (``load_umt5_encoder``): a meta
skeleton filled tensor by tensor, each layer linear quantised the moment it is drawn, the
token embedding on the host. It then encodes a handful of prompts through
``WanSpecification.encode_prompts`` with bf16 compute in every variant (as on CUDA), and
the parent compares each variant's embeddings, real tokens only, with bf16's.

Each variant runs in its own subprocess so its peak RSS is its own. The weights are the
same in every child (one seeded generator, drawn in the same order). The tokenizer is a
stand-in (UMT5's vocabulary file is not here): words hash to token ids, so prompts differ
as real ones do in length and content. Prompts are padded to ``--tokens`` rather than 512;
padding is masked out of attention, so the real tokens' embeddings do not depend on it,
and the shorter padding keeps a CPU run to minutes. CPU only, run by hand (not in tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.processes import CHILD_ENV, child_result, current_rss, peak_rss
from bench.train_memory import _gib

VARIANTS = ("bf16", "int8", "nf4")
PROMPTS = (
    "sks, a person walking through rain at night, neon signs reflected in puddles",
    "a slow dolly shot across a kitchen table, morning light, steam rising from a cup",
    "sks",
    "aerial view of a coastline at dusk, waves breaking on black rocks, cinematic colour grade",
    "close-up of hands shuffling a deck of cards on green felt",
    "a red vintage car drives along a mountain road in autumn, the camera follows from behind, "
    "leaves blowing across the asphalt, warm film grain",
)


class _HashTokenizer:
    """Words to ids by hash, with the call signature ``encode_prompts`` uses."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def _ids(self, text: str) -> list[int]:
        words = text.replace(",", " ,").split()
        ids = [2 + int(hashlib.sha256(w.encode()).hexdigest(), 16) % (self.vocab_size - 2) for w in words]
        return [*ids, 1]  # the end-of-sequence token, as UMT5's tokenizer appends

    def __call__(self, texts: Sequence[str], *, max_length: int, **_: Any) -> Any:
        import torch
        from transformers import BatchEncoding

        rows = [self._ids(text)[:max_length] for text in texts]
        ids = torch.zeros(len(rows), max_length, dtype=torch.long)
        mask = torch.zeros(len(rows), max_length, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return BatchEncoding({"input_ids": ids, "attention_mask": mask})


def _config(layers: int) -> Any:
    from transformers import UMT5Config

    from core.bases.architecture import UMT5_XXL

    return UMT5Config(**{**UMT5_XXL, "num_layers": layers}, dropout_rate=0.0)


def _random_tensors(config: Any) -> Iterator[tuple[str, Any]]:
    """UMT5's parameters with transformers' initialisation (``UMT5PreTrainedModel._init_weights``)."""
    import torch

    from trainer.models._untyped import UMT5EncoderModel
    from trainer.quantize import parameters_on_meta

    with parameters_on_meta():
        skeleton = UMT5EncoderModel(config)
    skeleton.encoder.embed_tokens = skeleton.shared  # tied: one tensor, as checkpoints hold it
    d, kv, heads, ff = config.d_model, config.d_kv, config.num_heads, config.d_ff
    std = {
        "q": (d * kv) ** -0.5,
        "k": d**-0.5,
        "v": d**-0.5,
        "o": (heads * kv) ** -0.5,
        "relative_attention_bias": d**-0.5,
        "wi_0": d**-0.5,
        "wi_1": d**-0.5,
        "wo": ff**-0.5,
        "shared": 1.0,
    }
    generator = torch.Generator().manual_seed(0)
    for name, param in skeleton.named_parameters():
        role = name.split(".")[-2]
        if param.ndim == 1:  # layer norm scales
            yield name, torch.ones(param.shape, dtype=torch.bfloat16)
            continue
        # Drawn in slices, so the 1B-entry embedding never exists in fp32 (the checkpoint's
        # tensors arrive in bf16 too).
        tensor = torch.empty(param.shape, dtype=torch.bfloat16)
        for rows in torch.split(tensor, 4096):
            rows.copy_(torch.randn(rows.shape, generator=generator) * std[role])
        yield name, tensor
        del tensor


def _measure(variant: str, layers: int, tokens: int, out: Path) -> dict[str, Any]:
    import torch

    from core.bases.architecture import WAN_TEXT_TOKENS, umt5_encoder_dims, umt5_encoder_params
    from core.bases.memory import text_encoder_memory
    from core.bases.quantization import Quantization
    from trainer.models.registry import TextEncoder
    from trainer.models.wan import WanSpecification, load_umt5_encoder

    class Encoder(WanSpecification):
        name = "bench-umt5"
        max_sequence_length = tokens

        def _check_folder(self) -> None:
            """No folder: the weights are random."""

    config = _config(layers)
    device, dtype = torch.device("cpu"), torch.bfloat16
    spec = Encoder("random", device=device, dtype=dtype)
    baseline = current_rss()
    started = time.perf_counter()
    model = load_umt5_encoder(
        config, _random_tensors(config), Quantization(variant), device=device, dtype=dtype
    )
    load_seconds = time.perf_counter() - started
    load_peak = peak_rss()
    resident = current_rss()
    encoder = TextEncoder(tokenizer=_HashTokenizer(config.vocab_size), model=model)
    started = time.perf_counter()
    embeds = spec.encode_prompts(encoder, PROMPTS)
    encode_seconds = time.perf_counter() - started
    torch.save(embeds, out)
    embedding = dict(model.named_parameters())["shared.weight"]
    return {
        "variant": variant,
        "parameters": umt5_encoder_params(config.to_dict()),
        # What the memory plan counts on the accelerator for this encoder and storage, with
        # Wan's 512-token prompts.
        "plan_text_stage": text_encoder_memory(
            umt5_encoder_dims(config.to_dict()), quantization=Quantization(variant), tokens=WAN_TEXT_TOKENS
        ),
        "embedding_bytes": embedding.numel() * embedding.element_size(),
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "baseline_rss": baseline,
        "load_peak_rss": load_peak,
        "resident_after_load": resident,
        "encode_peak_rss": peak_rss(),
        "load_seconds": load_seconds,
        "encode_seconds": encode_seconds,
        "real_tokens": sum(e.shape[0] for e in embeds),
    }


def _compare(reference: list[Any], other: list[Any]) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    ref, got = torch.cat(reference), torch.cat(other)
    per_token = F.cosine_similarity(got, ref, dim=-1)
    per_prompt = [
        float(F.cosine_similarity(o, r, dim=-1).mean()) for o, r in zip(other, reference, strict=True)
    ]
    return {
        "token_mean": float(per_token.mean()),
        "token_min": float(per_token.min()),
        "prompt_min": min(per_prompt),
        "relative_error": float((got - ref).norm() / ref.norm()),
    }


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| weights | peak RSS, load and encode (above import baseline) | vs bf16 (above baseline) "
        "| resident weights (of which host embedding) "
        "| on the accelerator (weights without the embedding) | plan, text stage before context "
        "and slack | cosine vs bf16, token mean / min | relative error | load s | encode s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bf16 = next((r for r in results if r["variant"] == "bf16"), None)
    for r in results:
        above = r["encode_peak_rss"] - r["baseline_rss"]
        ratio = "n/a"
        if bf16 is not None:
            ratio = f"{r['encode_peak_rss'] / bf16['encode_peak_rss']:.2f}x "
            ratio += f"({above / (bf16['encode_peak_rss'] - bf16['baseline_rss']):.2f}x)"
        quality = r.get("cosine")
        cosine = (
            "reference" if quality is None else f"{quality['token_mean']:.5f} / {quality['token_min']:.5f}"
        )
        error = "" if quality is None else f"{quality['relative_error']:.3f}"
        lines.append(
            f"| {r['variant']} "
            f"| {_gib(r['encode_peak_rss'])} GiB ({_gib(above)}) | {ratio} "
            f"| {_gib(r['weight_bytes'])} GiB ({_gib(r['embedding_bytes'])}) "
            f"| {_gib(r['weight_bytes'] - r['embedding_bytes'])} GiB | {_gib(r['plan_text_stage'])} GiB "
            f"| {cosine} | {error} | {r['load_seconds']:.0f} | {r['encode_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=24, help="encoder layers (UMT5-XXL has 24)")
    parser.add_argument("--tokens", type=int, default=64, help="padded prompt length")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_measure(args.child, args.layers, args.tokens, args.out)))
        return 0

    import torch

    results = []
    with tempfile.TemporaryDirectory() as folder:
        embeds = {}
        for variant in args.variants:
            out = Path(folder) / f"{variant}.pt"
            command = [
                *(sys.executable, "-m", "bench.text_encoder", "--child", variant, "--out", str(out)),
                *("--layers", str(args.layers), "--tokens", str(args.tokens)),
            ]
            results.append(child_result(command, variant, CHILD_ENV))
            embeds[variant] = torch.load(out)
            print(f"{variant}: done", file=sys.stderr)
    if "bf16" in embeds:
        for r in results:
            if r["variant"] != "bf16":
                r["cosine"] = _compare(embeds["bf16"], embeds[r["variant"]])

    first = results[0]
    print(
        f"UMT5-XXL dimensions, {args.layers} of 24 layers, {first['parameters'] / 1e9:.2f}B parameters, "
        f"random weights; {len(PROMPTS)} prompts ({first['real_tokens']} real tokens) padded to "
        f"{args.tokens}; bf16 compute"
    )
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, CPU only; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(_table(results))
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
