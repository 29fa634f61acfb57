#!/usr/bin/env python3
"""Measure vit3d against the libraries a user would pick instead of it, on this machine, in one run.

    python3 bench/compare_peers.py --vit3d-build build-bench

prints one markdown table: for each shape of vit3d's C++ benches (bench/bench_attention.cpp,
bench/bench_models.cpp) and each thread count, vit3d's number next to its peers' numbers:

  * attention alone, 12 heads of 64, float32, q/k/v [B, 12, N, 64]: torch's
    F.scaled_dot_product_attention with its default dispatch (the fused CPU flash kernel) and with the math
    backend (skipped where its N x N scores would not fit in memory);
  * the whole attention module (width 768): torch.nn.MultiheadAttention (its inference fast path);
  * whole models, random weights: torchvision's vit_b_16 at 224 x 224 (B = 1, 8), timm's DINOv2 ViT-S/14
    with 4 registers at 518 x 518 (1,374 tokens), SigLIP ViT-B/16 at 256 x 256 and EVA-02 ViT-B/14 at
    224 x 224 (257 tokens), and MONAI's 3D ViT-B on a
    [1, 1, 256, 256, 64] volume (16 x 16 x 4 patches, 4,097 tokens), in torch eager mode and in ONNX Runtime
    (the same weights, exported once with torch.onnx.export into build-peers/onnx/);
  * the same models in int8 and bf16 (models_lowp; torchvision's vit_b_16): vit3d's int8 and bf16 against
    ONNX Runtime on the model onnxruntime.quantization.quantize_dynamic makes of the export (default
    settings, the one call a user makes) and OpenVINO's CPU plugin on the export, f32 and (where the CPU has
    bf16 instructions) bf16;
  * the anatomy-aware CT encoder with a 20-region label mask, on [1, 1, 64, 256, 256] (4,097 tokens) and at
    full size [1, 1, 64, 512, 512] (16,385 tokens): its Python reference (tools/ct_encoder_reference.py)
    with the attention written out (math: scores, the dense slice bias and softmax's output are N x N per
    head) and with F.scaled_dot_product_attention given the bias as a float mask. A peer whose estimated memory exceeds this machine's is reported as such, not attempted.
  * loading weights (bench/bench_load.cpp): one random-weight torchvision vit_b_16 exported once with
    tools/export_weights.py into build-peers/load/, loaded by vit3d::io::load_model and by
    safetensors.torch.load_file (load_weights_* functions below).

Every measurement, vit3d's included, runs in a fresh process of its own so that its peak resident memory
is that case's alone. Peers take the median of repeated calls after a warm-up; vit3d's numbers come from
its Google Benchmark executables (DIR/bench/bench_attention, bench_models, bench_load), run one benchmark per
process, or from JSON files they wrote earlier (--vit3d-json). Without either (and with --no-record), the
peers are printed alone.

Every run also writes a record to bench/results/ (bench/records.py): the rows below with the vit3d commit,
the machine, the build, and bench_gemm's FMA peak, measured before each row. So --vit3d-build must hold
bench_gemm too.

Python is only needed for this comparison. The script creates its own virtual environment
(build-peers/venv, packages pinned in bench/peer_requirements.txt, installed with --no-deps) and re-runs
itself inside it.

Useful options:
    --threads 1 2                 thread counts (default: 1 2)
    --cases attention,mha,models,models_lowp,ct_encoder,load  which sections to run (default: all six)
    --filter REGEX                only the cases whose id matches, e.g. 'attention/B:1/N:197|vit_b_16/B:1'
    --quick                       short timing, for a smoke test (numbers are then noisy)
    --rounds 3                    measure each row's implementations 3 times, interleaved, and report medians
                                  (and the per-round speedups), for a machine shared with noisy neighbours
    --json OUT                    also write every measurement (medians, minima, repetitions, RSS) as JSON
    --results-dir DIR             where the run's record goes (default bench/results; see bench/records.py)
    --no-record                   print the table only (needed when vit3d is not measured from a build)
    --vit3d-json FILE...          read vit3d's results from Google Benchmark JSON files instead of running
    --build-vit3d default-O3      build vit3d's benches first as a user would (also default-O2, native-O3)
    --isa avx2                    cap every library that has a switch for it at AVX2 (vit3d, ATen, MKL,
                                  oneDNN; ONNX Runtime has none and is left out): an AVX2 machine's contest,
                                  approximated on an AVX-512 one

A full run (both thread counts, all cases, one round) takes roughly an hour on a 2-core machine, mostly the
3D ViT (10-50 s per forward pass per implementation) and the full-size CT encoder (minutes per forward pass;
timed once); --rounds N multiplies the timing. Run it alone: no build or other bench at the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import records

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "bench" / "peer_requirements.txt"
DEFAULT_WORK_DIR = REPO_ROOT / "build-peers"

# The shapes of bench/bench_attention.cpp and bench/bench_models.cpp (a contract with the C++ side).
HEADS, HEAD_DIM = 12, 64
MODEL_DIM = HEADS * HEAD_DIM
ATTENTION_SHAPES = [(1, 197), (8, 197), (1, 1024), (1, 4096), (1, 16384)]

# Peers that materialise the B x H x N x N float scores (SDPA's math backend, nn.MultiheadAttention's fast
# path) are skipped beyond this, not attempted (N = 16384: 12.9 GB on a 24 GB machine, plus softmax's copy).
MATH_SCORES_LIMIT_BYTES = 8e9

SECTIONS = ("attention", "mha", "models", "models_lowp", "ct_encoder", "load")
# The models run in int8 and bf16 (vit3d's bench_models <model>_int8 and <model>_bf16 cases) against the peers'
# one-call low-precision paths.
LOWP_MODELS = ("vit_b_16",)
# Opset 23 has ONNX's own Attention op, which torch's exporter emits for scaled_dot_product_attention and
# nn.MultiheadAttention and ONNX Runtime runs as one kernel. For the same reason monai's ViT is exported with
# its SABlocks switched to use_flash_attention: as shipped, its einsum attention exports to Einsum + Softmax
# nodes, which in a trial here (1 thread) ran 35% slower in ONNX Runtime and peaked at 5.9 GB instead of 2.3.
ONNX_OPSET = 23
ONNX_EXPORT_FLASH_ATTENTION = True
CHILD_TIMEOUT_SECONDS = 3600
MIB = 1024.0**2


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A whole model of bench_models.cpp: its input and its sequence length (built by build_torch_model)."""

    name: str  # vit3d's benchmark name stem
    image_shape: tuple[int, ...]  # one input, channels first
    tokens: int  # sequence length inside the model (patches + class token)
    batches: tuple[int, ...]


MODELS = {
    "vit_b_16": ModelSpec("vit_b_16", (3, 224, 224), 197, (1, 8)),
    "vit3d_b16x16x4": ModelSpec("vit3d_b16x16x4", (1, 256, 256, 64), 4097, (1,)),
    "dinov2_s14_reg4_518": ModelSpec("dinov2_s14_reg4_518", (3, 518, 518), 1374, (1,)),
    "siglip_b16_256": ModelSpec("siglip_b16_256", (3, 256, 256), 256, (1,)),
    "eva02_b14_224": ModelSpec("eva02_b14_224", (3, 224, 224), 257, (1,)),
}

# The timm models of MODELS (vit3d's presets models::dinov2_vit_s14_reg4, siglip_vit_b16_256 and
# eva02_vit_b14_224).
TIMM_MODELS = {"dinov2_s14_reg4_518": "vit_small_patch14_reg4_dinov2",
               "siglip_b16_256": "vit_base_patch16_siglip_256",
               "eva02_b14_224": "eva02_base_patch14_224"}


# The CT encoder cases of bench_models.cpp ("ct_encoder/<size>/mask/threads:<t>"): volume [D, H, W] and tokens.
CT_ENCODERS = {"256": ((64, 256, 256), 4097), "full": ((64, 512, 512), 16385)}
CT_REGIONS = 20


@dataclasses.dataclass(frozen=True)
class Case:
    """One row group of the table: a shape of one section, measured at every thread count."""

    section: str  # "attention" | "mha" | "models"
    batch: int
    tokens: int
    model: str = ""  # models section only

    @property
    def id(self) -> str:
        if self.section == "models":
            return f"{self.model}/B:{self.batch}"
        if self.section == "models_lowp":
            return f"{self.model}/B:{self.batch}/int8+bf16"
        if self.section == "ct_encoder":
            return f"ct_encoder/{self.model}"
        return f"{self.section}/B:{self.batch}/N:{self.tokens}"

    def flops(self) -> float:
        """FLOP of one call, with bench_attention.cpp's formulas (0 where no formula is used)."""
        attention = 4.0 * self.batch * HEADS * self.tokens**2 * HEAD_DIM
        if self.section == "attention":
            return attention
        if self.section == "mha":  # plus the qkv and output projections
            return attention + 8.0 * self.batch * self.tokens * MODEL_DIM**2
        return 0.0


def all_cases() -> list[Case]:
    cases = [Case("attention", b, n) for b, n in ATTENTION_SHAPES]
    cases += [Case("mha", b, n) for b, n in ATTENTION_SHAPES]
    for spec in MODELS.values():
        cases += [Case("models", b, spec.tokens, spec.name) for b in spec.batches]
    for name in LOWP_MODELS:
        cases += [Case("models_lowp", b, MODELS[name].tokens, name) for b in MODELS[name].batches]
    cases += [Case("ct_encoder", 1, tokens, size) for size, (_, tokens) in CT_ENCODERS.items()]
    return cases + load_weights_cases()


# --------------------------------------------------------------------------------------------------------
# Peers: which implementation is measured in which column.


@dataclasses.dataclass(frozen=True)
class Peer:
    key: str  # the child's measurement kind
    column: str  # "torch" | "torch_alt" | "ort"
    label: str  # how the table's notes name it


def peers_of(case: Case) -> list[Peer]:
    if case.section == "load":
        return load_weights_peers(case)
    if case.section == "attention":
        return [
            Peer("sdpa", "torch", "torch F.scaled_dot_product_attention, default dispatch"),
            Peer("sdpa_math", "torch_alt", "torch F.scaled_dot_product_attention, math backend"),
        ]
    if case.section == "mha":
        return [Peer("mha", "torch", "torch nn.MultiheadAttention(768, 12, batch_first=True)")]
    if case.section == "ct_encoder":
        return [Peer("ct_math", "torch", "torch eager, the CT encoder reference with its attention written out"),
                Peer("ct_sdpa", "torch_alt", "torch eager, the reference with F.scaled_dot_product_attention "
                                             "and the slice bias as a float mask")]
    if case.section == "models_lowp":
        return [Peer("openvino", "torch", "OpenVINO CPU plugin on the ONNX export, INFERENCE_PRECISION_HINT f32"),
                Peer("openvino_bf16", "torch_alt", "OpenVINO CPU plugin on the ONNX export, INFERENCE_PRECISION_HINT "
                                                    "bf16"),
                Peer("ort_int8", "ort", "ONNX Runtime on onnxruntime.quantization.quantize_dynamic's model "
                                        "(int8 weights, dynamic u8 activations; MatMul and Gemm quantised)")]
    peers = [Peer("torch_model", "torch", "torch eager, the model as shipped")]
    if case.model == "vit3d_b16x16x4":
        # monai's ViT builds its SABlocks without use_flash_attention (an einsum + softmax attention);
        # a user after speed can switch it on per block, so that is measured too.
        peers.append(Peer("torch_model_sdpa", "torch_alt", "torch eager, monai SABlock use_flash_attention"))
    peers.append(Peer("ort_model", "ort", "ONNX Runtime, CPUExecutionProvider"))
    return peers


def skip_reason(peer: Peer, case: Case) -> str:
    """Why a peer is not attempted on a case ('' when it is).

    Besides the math backend, nn.MultiheadAttention's inference fast path (aten::_native_multi_head_attention)
    also materialises the scores: on torch 2.14 it runs bmm + _softmax, not the flash kernel (profiled; at
    N = 4096 its peak rose by 811 MiB, the 805 MB of scores). At N = 16384 the scores and softmax's output
    would take 2 x 12.9 GB of a 24 GB machine, so it is not attempted either.
    """
    if peer.key in ("ort_model", "ort_int8") and isa_cap_env:
        return "skipped (--isa: ONNX Runtime has no instruction-set cap)"
    if peer.key in ("openvino", "openvino_bf16") and isa_cap_env:
        return "skipped (--isa: OpenVINO's cap is not applied here)"
    if peer.key == "openvino_bf16" and "avx512_bf16" not in cpu_flags() and "amx_bf16" not in cpu_flags():
        return "skipped (the CPU has no bf16 instructions)"
    if peer.key in ("sdpa_math", "mha"):
        scores = 4.0 * case.batch * HEADS * case.tokens**2
        if scores > MATH_SCORES_LIMIT_BYTES:
            return f"skipped (N×N scores {scores / 1e9:.1f} GB)"
    if peer.key in ("ct_math", "ct_sdpa"):
        # The dense slice bias [1, 12, N, N] exists in both; the math attention adds the scores and softmax's
        # output, SDPA's fused kernel nothing of that size. Plus the reference's int16 distances and one
        # head's gathered bias while it is built, and ~2 GB of model and activations.
        n2 = 4.0 * HEADS * case.tokens**2
        need = (3 if peer.key == "ct_math" else 1) * n2 + 2 * case.tokens**2 + n2 / HEADS + 2e9
        have = memory_total_bytes()
        if need > 0.9 * have:
            return (f"cannot run: needs ≈ {need / 1e9:.1f} GB ({'bias, scores, softmax' if peer.key == 'ct_math' else 'bias'} "
                    f"{(3 if peer.key == 'ct_math' else 1) * n2 / 1e9:.1f} GB), the machine has {have / 2**30:.1f} GiB")
    return ""


def cpu_flags() -> set[str]:
    """The CPU's flags as /proc/cpuinfo lists them (empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def memory_total_bytes() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024.0
    return float("inf")


# --------------------------------------------------------------------------------------------------------
# The measurement itself, run in a child process (`--child SPEC`). Imports stay inside the functions so that
# the ONNX Runtime child never loads torch and its peak RSS is ONNX Runtime's own.


def current_rss_bytes() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) * 1024.0
    return 0.0


def peak_rss_bytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # Linux reports KiB


def time_calls(fn: Callable[[], Any], timing: dict) -> list[float]:
    """Seconds of each timed call of fn, after a warm-up.

    Warm-up: at least one call and at least timing['warmup'] seconds (first-call allocations, thread-pool
    start, oneDNN/ORT kernel selection). Then calls until timing['min_time'] seconds have passed and at least
    timing['min_reps'] calls are in, or timing['max_reps'] calls are in.
    """
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < timing["warmup"]:
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < timing["max_reps"]:
        if len(times) >= timing["min_reps"] and time.perf_counter() - start >= timing["min_time"]:
            break
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def torch_setup(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)  # must precede any inter-op parallel work
    return torch


def torch_ops_seen(torch, fn: Callable[[], Any]) -> list[str]:
    """The attention-related aten ops one call of fn dispatches to (proof of which kernel torch ran)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    keep = re.compile(r"attention|softmax|einsum|bmm", re.IGNORECASE)
    return sorted({e.key for e in prof.key_averages() if keep.search(e.key)})


def build_torch_model(torch, model: str, flash_attention: bool):
    """The model with default-initialised weights from seed 0 (the ONNX export uses the same seed)."""
    torch.manual_seed(0)
    if model == "vit_b_16":
        import torchvision

        net = torchvision.models.vit_b_16()
    elif model in TIMM_MODELS:
        import timm

        net = timm.create_model(TIMM_MODELS[model], pretrained=False, num_classes=0)  # timm's own attention
    else:
        from monai.networks.nets import ViT

        net = ViT(in_channels=1, img_size=(256, 256, 64), patch_size=(16, 16, 4), hidden_size=768,
                  mlp_dim=3072, num_layers=12, num_heads=12, proj_type="conv", classification=True,
                  num_classes=2)
        if flash_attention:
            for block in net.blocks:
                block.attn.use_flash_attention = True

    class LogitsOnly(torch.nn.Module):
        # monai's ViT also returns every block's hidden state; the logits are the inference result, and
        # exporting them alone lets ONNX Runtime free the intermediate activations.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            return out[0] if isinstance(out, tuple) else out

    return LogitsOnly(net).eval()


def torch_callable(torch, spec: dict, stack: contextlib.ExitStack) -> Callable[[], Any]:
    """The call to time, its inputs allocated once, contiguous, float32."""
    import torch.nn.functional as F

    batch, tokens = spec["batch"], spec["tokens"]
    gen = torch.Generator().manual_seed(1)
    kind = spec["peer"]
    if kind in ("ct_math", "ct_sdpa"):
        return ct_encoder_callable(torch, spec, gen, sdpa=kind == "ct_sdpa")
    if kind in ("sdpa", "sdpa_math"):
        q, k, v = (torch.randn(batch, HEADS, tokens, HEAD_DIM, generator=gen) for _ in range(3))
        if kind == "sdpa_math":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))  # held for warm-up and timing alike
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if kind == "mha":
        mha = torch.nn.MultiheadAttention(MODEL_DIM, HEADS, batch_first=True).eval()
        x = torch.randn(batch, tokens, MODEL_DIM, generator=gen)
        return lambda: mha(x, x, x, need_weights=False)  # self-attention: takes the inference fast path
    model = build_torch_model(torch, spec["model"], flash_attention=kind == "torch_model_sdpa")
    x = torch.randn(batch, *MODELS[spec["model"]].image_shape, generator=gen)
    return lambda: model(x)


def ct_encoder_callable(torch, spec: dict, gen, sdpa: bool) -> Callable[[], Any]:
    """The CT encoder reference at the case's size, weights ~ N(0, 0.02), a volume and a 20-region mask laid
    out as bench_models.cpp's synthetic_mask does (the work does not depend on the layout)."""
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import ct_encoder_reference as ct

    size, _ = CT_ENCODERS[spec["model"]]
    model = ct.CTEncoder(input_size=size, regions=CT_REGIONS).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=gen)
    volume = torch.randn(1, 1, *size, generator=gen)
    mask = torch.zeros(1, 1, *size, dtype=torch.uint8)
    cells = 5
    rows = (CT_REGIONS + cells - 1) // cells
    D, H, W = size
    y = torch.arange(H)[:, None] * rows // H
    x = torch.arange(W)[None, :] * cells // W
    labels = (y * cells + x + 1).clamp(max=CT_REGIONS + 1)
    labels[labels > CT_REGIONS] = 0
    inner = (slice(D // 8, D - D // 8), slice(H // 8, H - H // 8), slice(W // 8, W - W // 8))
    mask[0, 0][inner] = labels[inner[1], inner[2]].to(torch.uint8)
    return lambda: model(volume, mask, sdpa=sdpa)


def measure_torch(spec: dict) -> dict:
    torch = torch_setup(spec["threads"])
    rss_after_import = current_rss_bytes()
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        fn = torch_callable(torch, spec, stack)
        times = time_calls(fn, spec["timing"])
        peak = peak_rss_bytes()  # read before the profiler, which adds ~70 MiB of its own
        ops = torch_ops_seen(torch, fn)
    return {"times": times, "peak_rss": peak, "rss_after_import": rss_after_import, "torch_ops": ops,
            "torch_threads": torch.get_num_threads()}


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def measure_ort(spec: dict) -> dict:
    import numpy as np
    import onnxruntime  # noqa: F401  (imported before the baseline RSS is read)

    rss_after_import = current_rss_bytes()
    session = ort_session(spec["onnx"], spec["threads"])
    shape = (spec["batch"], *MODELS[spec["model"]].image_shape)
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    feeds = {session.get_inputs()[0].name: x}
    outputs = [session.get_outputs()[0].name]
    times = time_calls(lambda: session.run(outputs, feeds), spec["timing"])
    return {"times": times, "rss_after_import": rss_after_import, "providers": session.get_providers()}


def quantize_onnx(spec: dict) -> dict:
    """onnxruntime.quantization.quantize_dynamic on a float export (the one call a user makes): int8 weights,
    activations quantised to u8 at run time, default settings but for the operators (below)."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    start = time.perf_counter()
    # The torch.export-based exporter records intermediate shapes (value_info) that ONNX's shape inference,
    # which quantize_dynamic runs, refuses ("Inferred shape and existing shape differ" on vit_b_16's head):
    # they are dropped (inference recomputes them) before quantising.
    model = onnx.load(spec["onnx"])
    del model.graph.value_info[:]
    stripped = Path(spec["out"]).with_suffix(".stripped.onnx")
    onnx.save(model, str(stripped))
    # Its default operator list maps ONNX's Attention (opset 23) onto com.microsoft's QAttention, which
    # onnxruntime 1.31 then refuses to load ("Unrecognized attribute: is_causal"): the linear layers
    # (MatMul, Gemm) are quantised, the attention stays float, as in vit3d's int8.
    quantize_dynamic(str(stripped), spec["out"], op_types_to_quantize=["MatMul", "Gemm"])
    stripped.unlink()
    return {"seconds": time.perf_counter() - start}


def measure_openvino(spec: dict) -> dict:
    import numpy as np
    import openvino as ov

    rss_after_import = current_rss_bytes()
    core = ov.Core()
    precision = "bf16" if spec["peer"] == "openvino_bf16" else "f32"
    config = {"INFERENCE_NUM_THREADS": spec["threads"], "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": precision}
    compiled = core.compile_model(spec["onnx"], "CPU", config)
    request = compiled.create_infer_request()
    shape = (spec["batch"], *MODELS[spec["model"]].image_shape)
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    times = time_calls(lambda: request.infer({0: x}), spec["timing"])
    return {"times": times, "rss_after_import": rss_after_import, "openvino": ov.__version__,
            "inference_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}


def export_onnx(spec: dict) -> dict:
    """Exports one model at one batch size (fixed shapes, so ONNX Runtime can specialise for them)."""
    torch = torch_setup(os.cpu_count() or 1)
    model = build_torch_model(torch, spec["model"], flash_attention=spec["flash_attention"])
    x = torch.zeros(spec["batch"], *MODELS[spec["model"]].image_shape)
    out_dir = Path(spec["out_dir"])
    start = time.perf_counter()
    # torch 2.14's default exporter (torch.export + onnxscript); the weights go to model.onnx.data.
    torch.onnx.export(model, (x,), str(out_dir / "model.onnx"), dynamo=True, opset_version=ONNX_OPSET,
                      input_names=["x"], output_names=["logits"], verbose=False)
    return {"seconds": time.perf_counter() - start}


def openvino_version() -> str:
    try:
        import openvino
    except ImportError:
        return "not installed"
    return openvino.__version__


def environment_info() -> dict:
    """Versions and build settings of what the peers really loaded."""
    import numpy
    import onnxruntime
    import torch

    config = torch.__config__.show()
    keep = re.compile(r"Math Kernel Library|MKL-DNN|oneDNN|OpenMP|CPU capability|LAPACK is")
    lines = [line.strip(" -") for line in config.splitlines() if keep.search(line)]
    settings = re.search(r"Build settings: (.*)", config)
    if settings:
        wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION")
        pairs = [p.strip() for p in settings.group(1).split(",")]
        lines.append(", ".join(p for p in pairs if p.split("=")[0] in wanted))
    # MKL_VERBOSE (set by the parent for this child) makes MKL name itself on its first call: proof that
    # torch's sgemm really goes to MKL, and with which threading layer.
    a = torch.randn(64, 64)
    with torch.inference_mode():
        a @ a
    import monai
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_config": lines,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torchvision": torchvision.__version__,
        "monai": monai.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "openvino": openvino_version(),
        "numpy": numpy.__version__,
    }


def child_main(spec: dict) -> None:
    kind = spec["peer"]
    if kind == "info":
        result = environment_info()
    elif kind == "export":
        result = export_onnx(spec)
    elif kind == "quantize":
        result = quantize_onnx(spec)
    elif kind in ("ort_model", "ort_int8"):
        result = measure_ort(spec)
    elif kind in ("openvino", "openvino_bf16"):
        result = measure_openvino(spec)
    elif kind in LOAD_WEIGHTS_CHILDREN:
        result = LOAD_WEIGHTS_CHILDREN[kind](spec)
    else:
        result = measure_torch(spec)
    result.setdefault("peak_rss", peak_rss_bytes())
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------------------
# Running children.


# --isa: the switches that cap each library's instruction set: vit3d's kernels, ATen's (SDPA's flash kernel
# and the elementwise ops), MKL's sgemm (the linear layers) and oneDNN's (the patch embedding's convolution).
# ONNX Runtime's MLAS picks its kernels from CPUID and has no such switch, so a capped run leaves it out.
ISA_CAPS = {"avx2": {"VIT3D_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                     "ONEDNN_MAX_CPU_ISA": "AVX2"}}
isa_cap_env: dict[str, str] = {}  # ISA_CAPS[--isa], set once by run()


def thread_env(threads: int) -> dict[str, str]:
    """The environment of every measured process, peers and vit3d alike."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
            **isa_cap_env}


def describe_failure(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"failed: killed by {name}{hint}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return "failed: " + (lines[-1][:160] if lines else f"exit code {proc.returncode}")


def run_child(spec: dict, threads: int, extra_env: dict[str, str] | None = None) -> dict:
    """Runs `compare_peers.py --child SPEC` in a fresh process; its RESULT line, or {'error': ...}."""
    env = {**os.environ, **thread_env(threads), **(extra_env or {})}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return {"error": f"failed: timed out after {CHILD_TIMEOUT_SECONDS} s"}
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        if proc.stderr.strip():
            print(proc.stderr.strip()[-3000:], file=sys.stderr)
        return {"error": describe_failure(proc)}
    result = json.loads(results[-1][len("RESULT "):])
    result["stdout"] = [line for line in proc.stdout.splitlines() if not line.startswith("RESULT ")]
    return result


@dataclasses.dataclass
class Measurement:
    """One implementation on one (case, threads): seconds per call (median, min), peak RSS, or why not."""

    seconds: float | None = None
    seconds_min: float | None = None
    reps: int = 0
    peak_rss: float | None = None
    note: str = ""  # "skipped (...)", "failed: ...", "not measured"
    details: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_times(cls, times: list[float], peak_rss: float | None, details: dict) -> "Measurement":
        return cls(statistics.median(times), min(times), len(times), peak_rss, "", details)


def timing_settings(quick: bool, min_time: float) -> dict:
    # Slow calls (the 3D ViT: 10-50 s each) still get 3 timed calls; fast ones repeat for min_time.
    if quick:
        return {"warmup": 0.0, "min_time": min(min_time, 0.3), "min_reps": 1, "max_reps": 20}
    return {"warmup": 0.5, "min_time": min_time, "min_reps": 3, "max_reps": 1000}


def measure_peer(peer: Peer, case: Case, threads: int, args, onnx_paths: dict) -> Measurement:
    reason = skip_reason(peer, case)
    if reason:
        return Measurement(note=reason)
    timing = timing_settings(args.quick, args.min_time)
    if case.section == "ct_encoder" and case.model == "full":
        timing = {"warmup": 0.0, "min_time": 0.0, "min_reps": 1, "max_reps": 1}  # minutes per call: once
    spec = {"peer": peer.key, "batch": case.batch, "tokens": case.tokens, "model": case.model,
            "threads": threads, "timing": timing}
    if peer.key in ("ort_model", "ort_int8", "openvino", "openvino_bf16"):
        path = onnx_paths.get((case.model, case.batch, "int8" if peer.key == "ort_int8" else "f32"))
        if not isinstance(path, Path):
            return Measurement(note=path or "failed: no ONNX export")
        spec["onnx"] = str(path)
    result = run_child(spec, threads)
    if "error" in result:
        return Measurement(note=result["error"])
    details = {k: v for k, v in result.items() if k not in ("times", "peak_rss", "stdout")}
    details["times"] = result["times"]
    return Measurement.from_times(result["times"], result["peak_rss"], details)


def onnx_dir(work_dir: Path, model: str, batch: int) -> Path:
    return work_dir / "onnx" / f"{model}_b{batch}_opset{ONNX_OPSET}"


def export_models(cases: list[Case], args) -> dict:
    """(model, batch) -> path of its .onnx file, exported once into the cache (or the failure's note).

    Each export runs in its own process so that its memory (several GB for the 3D ViT) never counts in a
    timing child. The directory is written under a temporary name and renamed, so an interrupted export is
    never mistaken for a cached one.
    """
    paths: dict = {}
    onnx_peers = ("ort_model", "ort_int8", "openvino", "openvino_bf16")
    for case in cases:
        if case.section not in ("models", "models_lowp") or not any(
                p.key in onnx_peers and not skip_reason(p, case) for p in peers_of(case)):
            continue
        if (case.model, case.batch, "f32") in paths:
            continue
        final = onnx_dir(args.work_dir, case.model, case.batch)
        if not (final / "model.onnx").exists():
            partial = final.with_name(final.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            log(f"exporting {case.model} B={case.batch} to ONNX (opset {ONNX_OPSET}) ...")
            spec = {"peer": "export", "model": case.model, "batch": case.batch, "out_dir": str(partial),
                    "flash_attention": ONNX_EXPORT_FLASH_ATTENTION}
            result = run_child(spec, os.cpu_count() or 1)
            if "error" in result:
                paths[(case.model, case.batch, "f32")] = "export " + result["error"]
                continue
            log(f"  exported in {result['seconds']:.1f} s")
            partial.rename(final)
        paths[(case.model, case.batch, "f32")] = final / "model.onnx"
        if case.section == "models_lowp":
            quantized = final / "model_int8.onnx"
            if not quantized.exists():
                log(f"quantising {case.model} B={case.batch} with quantize_dynamic ...")
                partial = final / "model_int8.onnx.partial"
                result = run_child({"peer": "quantize", "onnx": str(final / "model.onnx"), "out": str(partial)},
                                   os.cpu_count() or 1)
                if "error" in result:
                    paths[(case.model, case.batch, "int8")] = "quantize_dynamic " + result["error"]
                    continue
                partial.rename(quantized)
            paths[(case.model, case.batch, "int8")] = quantized
    return paths



# --------------------------------------------------------------------------------------------------------
# Loading weights: vit3d's bench_load next to safetensors.torch.load_file, the same file, each in a fresh
# process with its peak RSS. The file is a random-weight torchvision vit_b_16 exported once with
# tools/export_weights.py (as a user would have it) into WORK_DIR/load/; both sides find it through the
# environment variable VIT3D_BENCH_LOAD_FILE, which bench_load reads too. Loading is single-threaded on
# both sides, so the section runs at the first thread count only.

LOAD_WEIGHTS_MODEL = "vit_b_16"
LOAD_WEIGHTS_ENV = "VIT3D_BENCH_LOAD_FILE"
LOAD_WEIGHTS_TITLE = ("**Loading weights**, torchvision vit_b_16 (random weights, float32, exported by "
                      "tools/export_weights.py), ms per load (lower is better) and file GB/s. vit3d = "
                      "io::load_model (mapped, decoded into the parameters), vit3d alt = Safetensors::read of "
                      "the whole file + load_state_dict; torch = safetensors.torch.load_file, which maps the "
                      "file and reads no tensor byte until the tensor is used (so its time and RSS leave the "
                      "data out), torch alt = load_file(backend='pread'), which reads every byte")


def load_weights_cases() -> list[Case]:
    return [Case("load", 1, 0, LOAD_WEIGHTS_MODEL)]


def load_weights_peers(case: Case) -> list[Peer]:
    # safetensors >= 0.8 maps the file and hands out tensors backed by the mapping: load_file returns
    # before any tensor byte is read (they are read on first use). backend="pread" reads them all.
    return [Peer("safetensors_load_file", "torch", "safetensors.torch.load_file (mmap backend: lazy)"),
            Peer("safetensors_load_file_pread", "torch_alt", "safetensors.torch.load_file(backend='pread')")]


def load_weights_vit3d_names(case: Case, threads: int) -> dict[str, str]:
    return {"vit3d": "load_model/mmap", "vit3d_alt": "read_file_then_load_state_dict"}


def load_weights_path(args) -> Path:
    return args.work_dir / "load" / f"{LOAD_WEIGHTS_MODEL}.safetensors"


def load_weights_prepare(cases: list[Case], args) -> None:
    """Exports the file once (cached; written under a temporary name, so never half there) and points both
    sides at it."""
    if not any(case.section == "load" for case in cases):
        return
    path = load_weights_path(args)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"exporting a random-weight {LOAD_WEIGHTS_MODEL} with tools/export_weights.py to {path} ...")
        result = run_child({"peer": "load_weights_export", "path": str(path)}, os.cpu_count() or 1)
        if "error" in result:
            sys.exit(f"could not write the load benchmark's file: {result['error']}")
    os.environ[LOAD_WEIGHTS_ENV] = str(path)


def load_weights_export(spec: dict) -> dict:
    torch = torch_setup(os.cpu_count() or 1)
    import torchvision

    sys.path.insert(0, str(REPO_ROOT / "tools"))
    from export_weights import export

    torch.manual_seed(0)
    export(torchvision.models.vit_b_16().eval(), "torchvision", spec["path"])
    return {}


def load_weights_measure(spec: dict) -> dict:
    torch_setup(spec["threads"])
    from safetensors.torch import load_file

    path = os.environ[LOAD_WEIGHTS_ENV]
    backend = "pread" if spec["peer"] == "safetensors_load_file_pread" else "mmap"
    rss_after_import = current_rss_bytes()
    # Each call's tensors are freed before the next.
    times = time_calls(lambda: load_file(path, backend=backend), spec["timing"])
    return {"times": times, "rss_after_import": rss_after_import, "file_bytes": os.path.getsize(path)}


LOAD_WEIGHTS_CHILDREN = {"load_weights_export": load_weights_export, "safetensors_load_file": load_weights_measure,
                         "safetensors_load_file_pread": load_weights_measure}


def load_weights_format(m: Measurement) -> str:
    path = os.environ.get(LOAD_WEIGHTS_ENV)
    size = os.path.getsize(path) if path and os.path.exists(path) else 0
    return f"{m.seconds * 1e3:.0f} ms ({size / m.seconds / 1e9:.2f} GB/s)"


# --------------------------------------------------------------------------------------------------------
# vit3d's side: Google Benchmark executables, one benchmark per process.

BENCH_NAME = re.compile(r"^(?P<name>.+?)(/real_time)?(_(?P<aggregate>mean|median|stddev|cv))?$")


def vit3d_names(case: Case, threads: int) -> dict[str, str]:
    """Column -> benchmark name (bench_attention.cpp / bench_models.cpp / bench_load.cpp)."""
    if case.section == "load":
        return load_weights_vit3d_names(case, threads)
    if case.section == "attention":
        shape = f"B:{case.batch}/N:{case.tokens}/threads:{threads}"
        return {"vit3d": f"attention/fused/{shape}", "vit3d_alt": f"attention/naive/{shape}"}
    if case.section == "mha":
        return {"vit3d": f"mha/fused/B:{case.batch}/N:{case.tokens}/threads:{threads}"}
    if case.section == "models_lowp":
        return {"vit3d": f"{case.model}_int8/B:{case.batch}/threads:{threads}",
                "vit3d_alt": f"{case.model}_bf16/B:{case.batch}/threads:{threads}"}
    if case.section == "ct_encoder":  # the full size runs once per repetition (Iterations(1))
        once = "/iterations:1" if case.model == "full" else ""
        return {"vit3d": f"ct_encoder/{case.model}/mask/threads:{threads}{once}"}
    return {"vit3d": f"{case.model}/B:{case.batch}/threads:{threads}"}


def vit3d_executable(build_dir: Path, case: Case) -> Path:
    if case.section == "load":
        return build_dir / "bench" / "bench_load"
    models = ("models", "models_lowp", "ct_encoder")
    return build_dir / "bench" / ("bench_models" if case.section in models else "bench_attention")


def parse_benchmark_json(text: str) -> dict[str, dict]:
    """Benchmark name (without '/real_time') -> its entry; with repetitions, the median aggregate."""
    entries: dict[str, dict] = {}
    try:
        benchmarks = json.loads(text).get("benchmarks", [])
    except json.JSONDecodeError:
        return entries
    for entry in benchmarks:
        match = BENCH_NAME.match(entry["name"])
        name, aggregate = match["name"], match["aggregate"]
        if entry.get("run_type") == "aggregate" and aggregate != "median":
            continue
        if name in entries and entries[name].get("run_type") == "aggregate":
            continue  # a median already beats single repetitions
        if "error_occurred" in entry and entry["error_occurred"]:
            entry = {**entry, "error": entry.get("error_message", "error")}
        entries[name] = entry
    return entries


TIME_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def measurement_from_benchmark(entry: dict | None) -> Measurement:
    if entry is None:
        return Measurement(note="not measured")
    if "error" in entry:
        return Measurement(note="failed: " + entry["error"])
    seconds = entry["real_time"] * TIME_UNIT_SECONDS[entry.get("time_unit", "ns")]
    counters = {k: v for k, v in entry.items()
                if k in ("GFLOPs", "tokens_per_s", "workspace_bytes", "peak_rss_bytes", "ms_per_image",
                         "s_per_volume", "s_per_block", "embed_s", "finish_s")}
    details = {"benchmark": entry["name"], "iterations": entry.get("iterations"), "counters": counters}
    return Measurement(seconds, None, int(entry.get("iterations", 0)), entry.get("peak_rss_bytes"), "", details)


def min_time_flag(executable: Path, seconds: float) -> str:
    """--benchmark_min_time in the executable's own dialect.

    Google Benchmark >= 1.8 reads '2s' (and 'Nx' for iterations); 1.7 (Debian 12's libbenchmark-dev 1.7.1)
    reads a plain number of seconds and rejects the suffix. The executable's --help tells them apart.
    """
    help_text = subprocess.run([str(executable), "--help"], capture_output=True, text=True, timeout=60)
    modern = "<float>s" in help_text.stdout + help_text.stderr
    return f"--benchmark_min_time={seconds:g}s" if modern else f"--benchmark_min_time={seconds:g}"


class Vit3dRunner:
    """vit3d's results, from its executables (one process per benchmark) or from earlier JSON files."""

    def __init__(self, args):
        self.args = args
        self.from_files: dict[str, dict] = {}
        for path in args.vit3d_json or []:
            self.from_files.update(parse_benchmark_json(Path(path).read_text()))
        self.flags: dict[Path, str] = {}

    def available(self, case: Case) -> bool:
        return bool(self.args.vit3d_json) or vit3d_executable(self.args.vit3d_build, case).exists()

    def source(self) -> str:
        if self.args.vit3d_json:
            return "JSON files " + ", ".join(self.args.vit3d_json)
        return f"executables in {self.args.vit3d_build}/bench"

    def measure(self, name: str, case: Case, threads: int) -> Measurement:
        if self.args.vit3d_json:
            return measurement_from_benchmark(self.from_files.get(name))
        exe = vit3d_executable(self.args.vit3d_build, case)
        if exe not in self.flags:
            self.flags[exe] = min_time_flag(exe, self.args.vit3d_min_time)
        cmd = [str(exe), f"--benchmark_filter=^{name}(/real_time)?$", "--benchmark_format=json",
               self.flags[exe]]
        if self.args.vit3d_repetitions > 1:
            cmd += [f"--benchmark_repetitions={self.args.vit3d_repetitions}",
                    "--benchmark_report_aggregates_only=true"]
        env = {**os.environ, **thread_env(threads)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
        if proc.returncode != 0:
            return Measurement(note=describe_failure(proc))
        if "Failed to match any benchmarks" in proc.stderr:  # exit code 0, no JSON
            return Measurement(note=f"not in {exe.name}")
        m = measurement_from_benchmark(parse_benchmark_json(proc.stdout).get(name))
        m.details["isa"] = records.benchmark_isa(benchmark_context(proc.stdout))[0]
        return m


def benchmark_context(text: str) -> dict:
    try:
        return json.loads(text).get("context", {})
    except json.JSONDecodeError:
        return {}


def measure_fma_peak(build_dir: Path) -> tuple[dict[str, float], str]:
    """One core's FMA peak per level (bench_gemm's fma_peak and fma_peak_avx2), and the CPU's best level as
    vit3d sees it. Measured before every row, so that each row is read against the peak of its minutes."""
    exe = build_dir / "bench" / "bench_gemm"
    cmd = [str(exe), "--benchmark_filter=^fma_peak(_avx2)?/", "--benchmark_format=json", min_time_flag(exe, 0.3)]
    proc = subprocess.run(cmd, env={**os.environ, **thread_env(1)}, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        sys.exit(f"{exe.name} failed: {describe_failure(proc)}")
    peaks = records.fma_peaks(parse_benchmark_json(proc.stdout))
    return peaks, records.benchmark_isa(benchmark_context(proc.stdout))[1] or "unknown"


# --------------------------------------------------------------------------------------------------------
# The report.

COLUMNS = ("vit3d", "vit3d_alt", "torch", "torch_alt", "ort")
PEER_COLUMNS = ("torch", "torch_alt", "ort")

SECTION_TITLES = {
    "attention": "**Attention alone**, 12 heads × 64, GFLOP/s (higher is better). vit3d = fused kernel, "
                 "vit3d alt = naive kernel; torch = F.scaled_dot_product_attention default dispatch, "
                 "torch alt = its math backend",
    "mha": "**MHA module**, width 768, ms per call (lower is better). vit3d = nn::MultiHeadAttention "
           "(fused); torch = nn.MultiheadAttention(need_weights=False)",
    "models": "**Models**, float32, random weights, ms per image (lower is better). torch = eager, "
              "as shipped; torch alt = monai's SABlocks with use_flash_attention=True; ort = ONNX Runtime "
              "on the torch.onnx export (monai's with use_flash_attention)",
    "models_lowp": "**Models in int8 and bf16**, random weights, ms per image (lower is better). vit3d = int8 "
                   "(dynamic: int8 weights per channel, u8 activations per row), vit3d alt = bf16; torch = "
                   "OpenVINO f32, torch alt = OpenVINO bf16; ort = ONNX Runtime's quantize_dynamic int8 model",
    "ct_encoder": "**CT encoder** with a 20-region mask, float32, random weights, seconds per volume (lower is "
                  "better). vit3d = models::CTEncoder (slice bias in the fused kernel); torch = the Python "
                  "reference, attention written out; torch alt = the reference with F.scaled_dot_product_"
                  "attention and the bias as a float mask",
    "load": LOAD_WEIGHTS_TITLE,
}


@dataclasses.dataclass
class Row:
    case: Case
    threads: int
    cells: dict[str, Measurement]

    def best_peer(self) -> tuple[str, Measurement] | None:
        timed = [(c, self.cells[c]) for c in PEER_COLUMNS if c in self.cells and self.cells[c].seconds]
        return min(timed, key=lambda cm: cm[1].seconds) if timed else None


def format_count(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_value(case: Case, m: Measurement | None) -> str:
    if m is None:
        return "—"
    if m.seconds is None:
        return m.note
    if case.section == "load":
        return load_weights_format(m)
    tokens_per_s = case.batch * case.tokens / m.seconds
    if case.section == "attention":
        main = f"{case.flops() / m.seconds / 1e9:.1f}"
    elif case.section == "ct_encoder":
        main = f"{m.seconds:.1f} s"
    elif case.section == "mha":
        main = f"{m.seconds * 1e3:.2f}"
    else:
        main = f"{m.seconds * 1e3 / case.batch:.1f}"
    return f"{main} ({format_count(tokens_per_s)} tok/s)"


def format_rss(m: Measurement | None) -> str:
    """Peak RSS; for the Python peers also how much of it came after the imports (torch alone is ~0.5 GB)."""
    if m is None or m.peak_rss is None:
        return "—"
    text = f"{m.peak_rss / MIB:,.0f} MiB"
    if "rss_after_import" in m.details:
        text += f" (+{(m.peak_rss - m.details['rss_after_import']) / MIB:,.0f})"
    return text


def format_speedup(row: Row) -> str:
    """Best peer's median / vit3d's median; with rounds, also the range of the ratio within a round."""
    best = row.best_peer()
    vit3d = row.cells.get("vit3d")
    if best is None or vit3d is None or vit3d.seconds is None:
        return "—"
    column, peer = best
    text = f"{peer.seconds / vit3d.seconds:.2f}× vs {column}"
    ours, theirs = vit3d.details.get("rounds"), peer.details.get("rounds")
    if ours and theirs and len(ours) == len(theirs):
        ratios = [t / o for o, t in zip(ours, theirs)]
        text += f" ({min(ratios):.2f}–{max(ratios):.2f} by round)"
    return text


def markdown_table(rows: list[Row]) -> str:
    header = ["case", "threads", "vit3d", "vit3d alt", "torch", "torch alt", "ort",
              "vit3d speedup vs best peer", "peak RSS vit3d", "vit3d alt", "torch", "torch alt", "ort"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    section = None
    for row in rows:
        if row.case.section != section:
            section = row.case.section
            lines.append("| " + SECTION_TITLES[section] + " |" + " |" * (len(header) - 1))
        cells = [row.case.id, str(row.threads)]
        cells += [format_value(row.case, row.cells.get(c)) for c in COLUMNS]
        cells.append(format_speedup(row))
        cells += [format_rss(row.cells.get(c)) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def lscpu_summary() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    keep = ("Model name", "Vendor ID", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Socket(s)",
            "L2 cache", "L3 cache")
    summary = {k: fields[k] for k in keep if k in fields}
    flags = fields.get("Flags", "").split()
    summary["AVX-512"] = "yes" if "avx512f" in flags else "no"
    return summary


def benchmark_library_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libbenchmark-dev"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    return f"libbenchmark-dev {out.stdout}" if out.returncode == 0 else "not from Debian (FetchContent?)"


def print_header(info: dict, cpu: dict, args, vit3d_note: str) -> None:
    print(f"# vit3d vs peers, {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
    print(f"- CPU: {cpu.get('Model name', '?')} ({cpu.get('Vendor ID', '?')}), {cpu.get('CPU(s)', '?')} "
          f"logical CPUs = {cpu.get('Socket(s)', '?')} socket(s) × {cpu.get('Core(s) per socket', '?')} "
          f"core(s) × {cpu.get('Thread(s) per core', '?')} thread(s); L2 {cpu.get('L2 cache', '?')}, "
          f"L3 {cpu.get('L3 cache', '?')}; AVX-512: {cpu.get('AVX-512')}")
    print(f"- Python {info.get('python', platform.python_version())}, numpy {info.get('numpy', '?')}, "
          f"torch {info.get('torch', '?')}, torchvision {info.get('torchvision', '?')}, "
          f"monai {info.get('monai', '?')}, onnxruntime {info.get('onnxruntime', '?')} "
          f"(providers {', '.join(info.get('onnxruntime_providers', []))}), openvino {info.get('openvino', '?')}")
    print(f"- torch.backends.cpu.get_cpu_capability(): {info.get('torch_cpu_capability', '?')}")
    for line in info.get("torch_config", []):
        print(f"- torch config: {line}")
    for line in info.get("mkl_verbose", []):
        print(f"- MKL_VERBOSE: {line}")
    print("- every measurement is a fresh process with OMP_NUM_THREADS = MKL_NUM_THREADS = threads, "
          "OMP_WAIT_POLICY=PASSIVE; torch: set_num_threads(threads), set_num_interop_threads(1), "
          "inference_mode, eval(), float32; ONNX Runtime: intra_op_num_threads = threads, "
          f"inter_op_num_threads = 1, ORT_SEQUENTIAL, ORT_ENABLE_ALL, opset {ONNX_OPSET} export of the "
          "same seed-0 weights, one file per batch size")
    timing = timing_settings(args.quick, args.min_time)
    warmup = "≥ 1 call" + (f" and ≥ {timing['warmup']:g} s" if timing["warmup"] else "")
    print(f"- peers: median (and min, in --json) of ≥ {timing['min_reps']} calls and ≥ {timing['min_time']:g} s "
          f"after a warm-up of {warmup}; peak RSS = ru_maxrss of that process, imports included, "
          "(+x) = the part above its RSS after the imports")
    print(f"- vit3d: {vit3d_note}")
    if isa_cap_env:
        print(f"- **instruction sets capped at {args.isa}** (--isa): "
              + ", ".join(f"{k}={v}" for k, v in isa_cap_env.items())
              + "; ONNX Runtime not measured (its MLAS has no such switch)")
    if args.rounds > 1:
        print(f"- {args.rounds} rounds: each implementation of a row measured once per round, in reverse order "
              "every other round; a cell is the median of its rounds, and the speedup's range is the ratio "
              "within each round")
    print("- speedup = best peer's time / vit3d's time (> 1: vit3d faster); tok/s = B·N per second"
          + ("\n- **--quick: short timing, noisy numbers**" if args.quick else ""))
    print()


def print_dispatch_notes(rows: list[Row]) -> None:
    """Which torch kernels each torch column ran (from the profiler, one call per process)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        for column in ("torch", "torch_alt"):
            m = row.cells.get(column)
            if m and m.details.get("torch_ops"):
                seen.setdefault((row.case.section, column), set()).update(m.details["torch_ops"])
    if seen:
        print("\ntorch ops seen (attention-related, profiler):")
        for (section, column), ops in seen.items():
            print(f"- {section} / {column}: {', '.join(sorted(ops))}")


def write_json(path: Path, info: dict, cpu: dict, rows: list[Row], args) -> None:
    data = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu, "environment": info, "threads": args.threads, "quick": args.quick,
        "rows": [{"case": row.case.id, "section": row.case.section, "batch": row.case.batch,
                  "tokens": row.case.tokens, "threads": row.threads,
                  "cells": {c: dataclasses.asdict(m) for c, m in row.cells.items()}} for row in rows],
    }
    path.write_text(json.dumps(data, indent=1))


# --------------------------------------------------------------------------------------------------------
# The run's record (bench/records.py).

# The implementation behind each column of each section: the record's "impl".
IMPLS = {
    "attention": {"vit3d": "vit3d", "vit3d_alt": "vit3d-naive", "torch": "torch-sdpa", "torch_alt": "torch-sdpa-math"},
    "mha": {"vit3d": "vit3d", "torch": "torch-mha"},
    "models": {"vit3d": "vit3d", "torch": "torch", "torch_alt": "torch-sdpa", "ort": "onnxruntime"},
    "models_lowp": {"vit3d": "vit3d-int8", "vit3d_alt": "vit3d-bf16", "torch": "openvino", "torch_alt": "openvino-bf16",
                    "ort": "onnxruntime-int8"},
    "ct_encoder": {"vit3d": "vit3d", "torch": "torch-math", "torch_alt": "torch-sdpa-mask"},
    "load": {"vit3d": "vit3d", "vit3d_alt": "vit3d-read-whole", "torch": "safetensors-mmap",
             "torch_alt": "safetensors-pread"},
}

# Each section's figure as the table shows it: (unit, better, value from seconds per call).
RECORD_UNITS: dict[str, tuple[str, str, Callable[[Case, float], float]]] = {
    "attention": ("GFLOP/s", "higher", lambda case, s: case.flops() / s / 1e9),
    "mha": ("ms", "lower", lambda case, s: s * 1e3),
    "models": ("ms per image", "lower", lambda case, s: s * 1e3 / case.batch),
    "models_lowp": ("ms per image", "lower", lambda case, s: s * 1e3 / case.batch),
    "ct_encoder": ("s per volume", "lower", lambda case, s: s),
    "load": ("ms", "lower", lambda case, s: s * 1e3),
}


def check_recordable(cases: list[Case], args) -> None:
    """Fails before any timing when the run could not be recorded: a record needs vit3d measured from a
    build it can describe, and bench_gemm for the FMA peak."""
    hint = " (or pass --no-record)"
    if args.vit3d_json:
        sys.exit("--vit3d-json: results read from files name no build or commit, so no record" + hint)
    needed = {vit3d_executable(args.vit3d_build, c) for c in cases} | {args.vit3d_build / "bench" / "bench_gemm"}
    missing = sorted(str(path) for path in needed if not path.exists())
    if missing:
        sys.exit(f"a record needs {', '.join(missing)}: build them" + hint)
    try:
        records.build_facts(args.vit3d_build)
    except records.RecordError as error:
        sys.exit(f"{error}{hint}")


def record_cases(rows: list[Row], row_peaks: list[dict[str, float]], isa_supported: str, args) -> list[dict]:
    entries = []
    for row, peaks in zip(rows, row_peaks):
        case = row.case
        unit, better, convert = RECORD_UNITS[case.section]
        labels = {peer.column: peer.label for peer in peers_of(case)}
        for column, m in row.cells.items():
            vit3d = column.startswith("vit3d")
            entry = {"id": case.id, "group": case.section, "impl": IMPLS[case.section][column],
                     "label": m.details.get("benchmark", "").removesuffix("/real_time") if vit3d
                     else labels.get(column, ""),
                     "threads": row.threads, "isa": m.details.get("isa") if vit3d else args.isa,
                     "unit": unit, "better": better}
            if m.seconds is None:
                entries.append({**entry, "note": m.note or "not measured"})
                continue
            values = [convert(case, s) for s in m.details.get("rounds", [m.seconds])]
            entry.update(records.stats(values))
            entry["calls"] = m.reps
            if m.peak_rss:
                entry["peak_rss_bytes"] = m.peak_rss
            peak = peaks.get(entry["isa"] or isa_supported)
            if unit == "GFLOP/s" and peak:
                entry["share_of_peak"] = records.spread([v / (row.threads * peak) for v in values])
            best = row.best_peer()
            if column == "vit3d" and best:
                peer_column, peer = best
                ours, theirs = m.details.get("rounds"), peer.details.get("rounds")
                ratio = peer.seconds / m.seconds
                by_round = [t / o for o, t in zip(ours, theirs)] if ours and theirs and len(ours) == len(theirs) \
                    else [ratio]
                entry["vs_best_peer"] = {"peer": IMPLS[case.section][peer_column], **records.spread(by_round, ratio)}
            entries.append(entry)
    return entries


def make_record(rows: list[Row], row_peaks: list[dict[str, float]], isa_supported: str, info: dict, args,
                load_average: list[float]) -> dict:
    build = records.build_facts(args.vit3d_build)
    peak_samples: dict[str, list[float]] = {}
    for peaks in row_peaks:
        for level, gflops in peaks.items():
            peak_samples.setdefault(level, []).append(gflops)
    keep = ("python", "numpy", "torch", "torch_cpu_capability", "torchvision", "monai", "onnxruntime", "openvino",
            "mkl_verbose")
    return {
        "schema": records.SCHEMA, "tool": "compare_peers.py", "command": ["bench/compare_peers.py", *args.argv],
        "created_utc": records.utc_now(), "quick": args.quick,
        "vit3d": {"commit": build["commit"], "dirty": build["dirty"]},
        "machine": records.machine_facts(isa_supported, {k: records.stats(v) for k, v in peak_samples.items()},
                                         load_average),
        "build": build,
        "settings": {"threads": args.threads, "rounds": args.rounds, "isa_cap": args.isa, "cases": args.cases,
                     "filter": args.filter, "min_time": args.min_time, "vit3d_min_time": args.vit3d_min_time,
                     "vit3d_repetitions": args.vit3d_repetitions, "isa_cap_env": dict(isa_cap_env)},
        "environment": {k: info[k] for k in keep if k in info},
        "cases": record_cases(rows, row_peaks, isa_supported, args),
    }


# --------------------------------------------------------------------------------------------------------
# Driver.


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def selected_cases(args) -> list[Case]:
    sections = [s.strip() for s in args.cases.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        sys.exit(f"unknown --cases {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    pattern = re.compile(args.filter) if args.filter else None
    return [c for c in all_cases() if c.section in sections and (pattern is None or pattern.search(c.id))]


def combine_rounds(rounds: list[Measurement]) -> Measurement:
    """One cell from its rounds: the median of the rounds' times, the fastest call, the highest peak RSS.

    The rounds' own times are kept in details["rounds"] (seconds, in the order measured)."""
    timed = [m for m in rounds if m.seconds is not None]
    if not timed:
        return rounds[0]
    if len(rounds) == 1:
        return timed[0]
    peaks = [m.peak_rss for m in timed if m.peak_rss is not None]
    details = dict(timed[0].details)
    details["rounds"] = [m.seconds for m in timed]
    failed = [m.note for m in rounds if m.seconds is None]
    if failed:
        details["failed_rounds"] = failed
    return Measurement(statistics.median(details["rounds"]),
                       min(m.seconds_min if m.seconds_min is not None else m.seconds for m in timed),
                       sum(m.reps for m in timed), max(peaks) if peaks else None, "", details)


def measure_row(case: Case, threads: int, vit3d: Vit3dRunner | None, args, onnx_paths: dict) -> Row:
    """Every implementation of one (case, threads), args.rounds times. Within a round each runs once; odd
    rounds run them in reverse order, so that a slow minute of a shared machine does not fall on the same
    implementation every time."""
    jobs: list[tuple[str, str, Callable[[], Measurement]]] = []
    if vit3d is not None:
        for column, name in vit3d_names(case, threads).items():
            jobs.append((column, f"vit3d {name}", lambda name=name: vit3d.measure(name, case, threads)))
    for peer in peers_of(case):
        jobs.append((peer.column, peer.label,
                     lambda peer=peer: measure_peer(peer, case, threads, args, onnx_paths)))
    measured: dict[str, list[Measurement]] = {column: [] for column, _, _ in jobs}
    for round_index in range(args.rounds):
        for column, label, measure in (jobs if round_index % 2 == 0 else jobs[::-1]):
            if measured[column] and measured[column][0].seconds is None:
                continue  # skipped or failed in round 1: the same again
            suffix = f" (round {round_index + 1}/{args.rounds})" if args.rounds > 1 else ""
            log(f"[{case.id} threads={threads}] {label}{suffix} ...")
            m = measure()
            measured[column].append(m)
            log(f"  {format_value(case, m)}, peak {format_rss(m)}")
    return Row(case, threads, {column: combine_rounds(ms) for column, ms in measured.items()})


def gather_info() -> dict:
    result = run_child({"peer": "info"}, 1, {"MKL_VERBOSE": "1"})
    mkl = [line for line in result.get("stdout", []) if line.startswith("MKL_VERBOSE oneMKL")]
    result["mkl_verbose"] = [line.removeprefix("MKL_VERBOSE ") for line in mkl[:1]]
    return result


def run(args) -> None:
    cases = selected_cases(args)
    if not cases:
        sys.exit("no case selected")
    isa_cap_env.update(ISA_CAPS.get(args.isa, {}))
    if not args.no_record:
        check_recordable(cases, args)
    load_average = list(os.getloadavg())
    cpu = lscpu_summary()
    info = gather_info()
    if "error" in info:
        sys.exit(f"the peers' environment does not import: {info['error']}")

    vit3d: Vit3dRunner | None = Vit3dRunner(args)
    missing = [c for c in cases if not vit3d.available(c)]
    if missing:
        exes = sorted({str(vit3d_executable(args.vit3d_build, c)) for c in missing})
        vit3d_note = f"**not measured**: {', '.join(exes)} not found (build them, or pass --vit3d-json)"
        vit3d = None
    elif args.vit3d_json:
        vit3d_note = f"read from {vit3d.source()}"
    else:
        exe = vit3d_executable(args.vit3d_build, cases[0])
        vit3d_note = (f"{vit3d.source()}, one benchmark per process, {min_time_flag(exe, args.vit3d_min_time)}, "
                      f"Google Benchmark {benchmark_library_version()}; time = its real_time (mean over its "
                      f"iterations{'' if args.vit3d_repetitions == 1 else ', median of repetitions'}); "
                      "peak RSS = its peak_rss_bytes counter")

    onnx_paths = export_models(cases, args)
    load_weights_prepare(cases, args)
    rows, row_peaks, isa_supported = [], [], "unknown"
    for case in cases:
        for t in (args.threads[:1] if case.section == "load" else args.threads):
            if not args.no_record:
                peaks, isa_supported = measure_fma_peak(args.vit3d_build)
                row_peaks.append(peaks)
            rows.append(measure_row(case, t, vit3d, args, onnx_paths))

    print_header(info, cpu, args, vit3d_note)
    print(markdown_table(rows))
    print_dispatch_notes(rows)
    if args.json:
        write_json(args.json, info, cpu, rows, args)
        log(f"wrote {args.json}")
    if not args.no_record:
        record = make_record(rows, row_peaks, isa_supported, info, args, load_average)
        path = records.write(record, "peers" + (f"-{args.isa}" if args.isa else ""), args.results_dir)
        log(f"wrote {path}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit3d-build", type=Path, default=REPO_ROOT / "build-bench",
                        help="build directory holding bench/bench_attention and bench/bench_models")
    parser.add_argument("--vit3d-json", nargs="+", metavar="FILE",
                        help="read vit3d's results from these Google Benchmark JSON files instead of running")
    parser.add_argument("--vit3d-min-time", type=float, default=2.0,
                        help="--benchmark_min_time of vit3d's runs, in seconds (default 2)")
    parser.add_argument("--vit3d-repetitions", type=int, default=1,
                        help="--benchmark_repetitions; above 1 the median aggregate is taken")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every implementation of a row this many times, interleaved, and report "
                             "the median (for shared machines whose speed moves from minute to minute)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", default=",".join(SECTIONS), help="comma-separated: attention,mha,models")
    parser.add_argument("--filter", help="regular expression on case ids (e.g. 'N:197|vit_b_16/B:1')")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of timed calls per peer")
    parser.add_argument("--quick", action="store_true", help="short timing, for smoke tests")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    parser.add_argument("--results-dir", type=Path, default=records.RESULTS_DIR,
                        help="where the run's record goes (default bench/results)")
    parser.add_argument("--no-record", action="store_true",
                        help="write no record (the table and --json only)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_WORK_DIR / "venv")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="where the ONNX exports are cached (WORK_DIR/onnx)")
    parser.add_argument("--build-vit3d", choices=sorted(VIT3D_BUILDS),
                        help="configure and build vit3d's benches first, as a user would (default-O3: CMake "
                             "Release, no -march; default-O2: RelWithDebInfo, no -march; native-O3: Release "
                             "with -march=native), into WORK_DIR/vit3d-<choice>, and measure that build")
    parser.add_argument("--isa", choices=sorted(ISA_CAPS),
                        help="cap vit3d, ATen, MKL and oneDNN at this instruction set (ONNX Runtime, which "
                             "cannot be capped, is left out)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(argv)
    if args.rounds < 1:
        parser.error(f"--rounds: expected an integer >= 1, got {args.rounds}")
    if args.quick:
        args.vit3d_min_time = min(args.vit3d_min_time, 0.1)
    return args


# --------------------------------------------------------------------------------------------------------
# The peers' virtual environment.


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv(venv: Path) -> Path:
    """Creates the venv if missing and (re)installs the pins when bench/peer_requirements.txt changed."""
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    stamp = venv / ".peer_requirements.sha256"
    if not stamp.exists() or stamp.read_text().strip() != requirements_digest():
        log(f"installing {REQUIREMENTS.relative_to(REPO_ROOT)} into {venv} (--no-deps) ...")
        # --no-deps: torch's wheel declares ~3 GB of CUDA packages a CPU run never loads (see the pins).
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(REQUIREMENTS)],
                       check=True)
        stamp.write_text(requirements_digest() + "\n")
    return python


# --build-vit3d: the builds a user gets. The kernels pick their instruction set at run time, so the
# default-flags builds are the ones that matter; native-O3 is the yardstick they are held to.
VIT3D_BUILDS = {
    "default-O3": ["-DCMAKE_BUILD_TYPE=Release", "-DVIT3D_BENCH_NATIVE=OFF"],
    "default-O2": ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DVIT3D_BENCH_NATIVE=OFF"],
    "native-O3": ["-DCMAKE_BUILD_TYPE=Release", "-DVIT3D_BENCH_NATIVE=ON"],
}


def build_vit3d(choice: str, work_dir: Path) -> Path:
    build_dir = work_dir / f"vit3d-{choice}"
    configure = ["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir), "-DVIT3D_BUILD_TESTS=OFF",
                 "-DVIT3D_BUILD_EXAMPLES=OFF", *VIT3D_BUILDS[choice]]
    log(f"building vit3d's benches ({choice}) in {build_dir} ...")
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build_dir), "-j2", "--target", "bench_attention", "bench_models",
                    "bench_gemm", "bench_load"], check=True, stdout=subprocess.DEVNULL)
    return build_dir


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return
    if args.build_vit3d and not os.environ.get("VIT3D_PEERS_REEXEC"):
        args.vit3d_build = build_vit3d(args.build_vit3d, args.work_dir.resolve())
        argv = [*argv, "--vit3d-build", str(args.vit3d_build)]
    venv = args.venv.resolve()
    if Path(sys.prefix).resolve() != venv:
        if os.environ.get("VIT3D_PEERS_REEXEC"):  # the venv's python did not report the venv as its prefix
            sys.exit(f"{venv}/bin/python does not run inside {venv}; remove it and run again")
        python = ensure_venv(venv)
        os.environ["VIT3D_PEERS_REEXEC"] = "1"
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])
    run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
