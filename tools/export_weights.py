#!/usr/bin/env python3
"""Export a PyTorch ViT checkpoint to a self-describing safetensors file that vit3d loads in one call.

    python3 tools/export_weights.py --torchvision-model vit_b_16 --state-dict vit_b_16.pth --output vit_b_16.safetensors
    python3 tools/export_weights.py --timm-model vit_small_patch16_224 --state-dict vit_s16.pth \\
        --output vit_s16.safetensors
    python3 tools/export_weights.py --family monai --state-dict vit.pth --output vit.safetensors \\
        --config '{"in_channels": 1, "img_size": [96, 96, 96], "patch_size": [16, 16, 16]}'
    python3 tools/export_weights.py --python mypackage.models:build_model --output model.safetensors

and in C++:   auto model = vit3d::io::load_model<float>("model.safetensors");

The reference model is built by the family's own code: by name (--timm-model: timm.create_model;
--torchvision-model: torchvision.models.get_model), or from the keyword arguments of the family's
constructor (--config, a JSON object). The state_dict is loaded into it strictly, and what vit3d needs is
read from the built model itself: its configuration (every field of vit3d's VisionTransformerConfig), the
key map that renames the state_dict onto vit3d's parameters, and the preprocessing the model expects
(per-family defaults, or a timm model's pretrained_cfg; overridable with --preprocess JSON). --python
module:function calls a function returning the nn.Module instead (the family given with --family or
inferred from its class), and --model-file reads a whole pickled model (torch.save(model)), which runs code
the file names, so only on that explicit option. --random-weights exports the random initialisation.

--state-dict is read with torch.load(weights_only=True), which runs no code from the file: a whole pickled
model or other pickled objects are refused, saying what the file holds (--trust-pickle reads a checkpoint
you trust in full). A training checkpoint that keeps the state_dict under an entry ("state_dict", "model",
"model_state_dict", or its only entry holding tensors) is unwrapped, with a note on stderr naming the entry;
--checkpoint-key names another. When the keys carry a prefix (module. of DataParallel/DDP, _orig_mod. of
torch.compile, model. of Lightning) under which they are the model's, the error names the prefix, and
--strip-prefix reads the keys under it, leaving the others out (a note names them). From Python code:

    from export_weights import export          # with tools/ on sys.path
    export(model, "timm", "model.safetensors", preprocess={"mean": [0.5] * 3, "std": [0.5] * 3})

Families (--family): torchvision (torchvision.models.VisionTransformer), timm
(timm.models.vision_transformer.VisionTransformer), vit_pytorch (vit_pytorch.ViT), vit_pytorch_simple
(vit_pytorch.SimpleViT), vit_pytorch_3d (vit_pytorch.vit_3d.ViT), vit_pytorch_simple_3d
(vit_pytorch.simple_vit_3d.SimpleViT), monai (monai.networks.nets.ViT), reg2rg (the Reg2RG / RadFM 3D ViT,
re-implemented in tools/reg2rg_vit.py), ct_encoder (the anatomy-aware CT encoder, tools/ct_encoder_reference.py;
C++ models::CTEncoder).

The tensors keep the family's own state_dict names: the file is still a valid checkpoint of the reference
model (safetensors.torch.load_file + load_state_dict(strict=True)), and the renaming onto vit3d's names
lives in one place, the C++ key maps (include/vit3d/io/key_maps/), which the parity tests check. The
description is the JSON string under the "vit3d.model" key of the file's __metadata__ (schema in docs/weights.md,
"Weights from PyTorch"); "format": "pt" is set as well, as Hugging Face's loaders expect.

Needs torch and safetensors only, plus the family's own package (for its class). Works with torch 1.13
(Debian 12's python3-torch) and newer. Errors are one line on stderr and exit code 1 (2 for usage errors);
--debug adds the traceback.
The output is written to a temporary file in the same directory and renamed into place.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import inspect
import json
import math
import os
import pickle
import re
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

METADATA_KEY = "vit3d.model"
SCHEMA = "vit3d.model"
SCHEMA_VERSION = 1
TOOL = "vit3d tools/export_weights.py"


class ExportError(Exception):
    """A problem with the user's input, reported as one line."""


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _type_name(obj) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# ---- the vit3d configuration (VisionTransformerConfig<N>, include/vit3d/models/vision_transformer.hpp) ----

# Every field, with the C++ defaults; each family's describe function sets what its model has.
CONFIG_DEFAULTS = {
    "input_size": None, "patch_size": None, "channels": 3, "dim": 768, "depth": 12, "heads": 12,
    "head_dim": 0, "mlp_dim": 3072, "num_classes": 1000, "class_token": True, "pool": "cls",
    "mean_includes_class_token": False, "pos_embed": "learned", "sincos": "mae_monai",
    "pos_embed_covers_class_token": True, "projection": "conv", "patch_norms": False, "norm_placement": "pre",
    "activation": "gelu", "eps": 1e-6, "qkv_bias": True, "proj_bias": True, "final_norm": True,
    "head_norm": False, "head_activation": "identity", "reg_tokens": 0, "distillation_token": False,
    "pre_norm": False, "patch_bias": True, "patch_norm": False, "norm": "layer_norm", "norm_bias": True,
    "layer_scale": False, "qk_norm": False, "attn_norm": False, "mlp": "mlp", "mlp_bias": True, "mlp_norm": False,
    "pool_mlp_dim": 0, "pool_heads": 0, "drop_remainder": False, "qkv_split": False, "k_bias": True, "rope": False,
    "rope_variant": "cat", "rope_temperature": 10000.0, "rope_grid_indexing": "ij", "rope_grid_offset": 0.0,
    "rope_ref_feat_shape": [0, 0], "rope_rotate_half": False, "dynamic_size": False,
    "pos_embed_interpolation": "bicubic_antialias", "mlp_layer_scale": True, "block_kv_heads": [],
    "pos_embed_covers_registers": True, "pre_logits_dim": 0, "pre_logits_activation": "tanh", "head_bias": True,
}


def vit_config(**fields) -> dict:
    unknown = set(fields) - set(CONFIG_DEFAULTS)
    if unknown:
        raise AssertionError(f"not VisionTransformerConfig fields: {sorted(unknown)}")
    config = dict(CONFIG_DEFAULTS, **fields)
    config["input_size"] = [int(v) for v in config["input_size"]]
    config["patch_size"] = [int(v) for v in config["patch_size"]]
    for key in ("channels", "dim", "depth", "heads", "head_dim", "mlp_dim", "num_classes", "reg_tokens",
                "pool_mlp_dim", "pool_heads"):
        config[key] = int(config[key])
    config["eps"] = float(config["eps"])
    return config


# ---- checks on the reference model's structure -------------------------------------------------------------

class Unsupported(ExportError):
    def __init__(self, family, what, supported):
        super().__init__(f"{family}: {what} is not something vit3d can reproduce; supported: {supported}")


def _exact_type(family, module, cls, what):
    if type(module) is not cls:
        raise Unsupported(family, f"{what} of type {type(module).__module__}.{type(module).__qualname__}",
                          f"{cls.__module__}.{cls.__qualname__} itself (a subclass may compute differently)")


def _layer_norms(family, modules):
    """The common eps of these LayerNorms (vit3d has one eps per model); each must be a plain affine one."""
    eps = set()
    for name, m in modules:
        if not isinstance(m, nn.LayerNorm) or not m.elementwise_affine or getattr(m, "bias", 0) is None:
            raise Unsupported(family, f"normalisation layer {name} ({type(m).__name__})",
                              "nn.LayerNorm with weight and bias over the last axis")
        if len(m.normalized_shape) != 1:
            raise Unsupported(family, f"LayerNorm {name} over {tuple(m.normalized_shape)}",
                              "LayerNorm over the last axis")
        eps.add(float(m.eps))
    if len(eps) > 1:
        raise Unsupported(family, f"LayerNorms with different eps {sorted(eps)}", "one eps for every LayerNorm")
    return eps.pop() if eps else 1e-5


def _activation(family, module, where):
    if type(module) is nn.GELU:
        return "gelu_tanh" if getattr(module, "approximate", "none") == "tanh" else "gelu"
    simple = {nn.ReLU: "relu", nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
    if type(module) in simple:
        return simple[type(module)]
    timm_names = {"GELUTanh": "gelu_tanh", "GELU": "gelu", "QuickGELU": "quick_gelu", "SiLU": "silu",
                  "Swish": "silu", "Sigmoid": "sigmoid"}
    if type(module).__module__.startswith("timm.") and type(module).__name__ in timm_names:
        return timm_names[type(module).__name__]
    raise Unsupported(family, f"activation {type(module).__name__} in {where}",
                      "nn.GELU (erf or tanh), nn.ReLU, nn.SiLU, nn.Sigmoid, timm's GELU / GELUTanh / QuickGELU")


def _norms(family, modules):
    """The kind, bias and eps shared by these norm layers (vit3d has one of each per model): nn.LayerNorm (with
    or without bias, timm's LayerNorm included) or timm's RmsNorm / nn.RMSNorm, each with a weight over the last
    axis."""
    kinds, biases, eps = set(), set(), set()
    for name, m in modules:
        cls = type(m).__name__
        if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            kinds.add("layer_norm")
            biases.add(getattr(m, "bias", None) is not None)
        elif cls in ("RmsNorm", "RMSNorm") and getattr(m, "weight", None) is not None:
            kinds.add("rms_norm")
        else:
            raise Unsupported(family, f"normalisation layer {name} ({cls})",
                              "nn.LayerNorm or RmsNorm with a weight, over the last axis")
        if len(tuple(m.normalized_shape)) != 1:
            raise Unsupported(family, f"norm {name} over {tuple(m.normalized_shape)}", "norms over the last axis")
        eps.add(float(m.eps) if m.eps is not None else float(torch.finfo(torch.float32).eps))
    for what, values in (("kinds", kinds), ("biases", biases), ("eps", eps)):
        if len(values) > 1:
            raise Unsupported(family, f"norms with different {what} {sorted(values)}", f"one {what[:-1]} for every norm")
    return (kinds.pop() if kinds else "layer_norm", biases.pop() if biases else True, eps.pop() if eps else 1e-6)


def _linear(family, m, where):
    if type(m) is not nn.Linear:
        raise Unsupported(family, f"{type(m).__name__} as {where}", "nn.Linear")
    return m


def _needs_hint(family, hints, key, what):
    if hints.get(key) is None:
        raise ExportError(f"{family}: the model does not record its {what}; give it in the constructor arguments "
                          f"(--config) or as --preprocess '{{\"{key}\": [...]}}'")
    return [int(v) for v in hints[key]]


def _pair(v):
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v), int(v)]


def _check_grid(family, input_size, patch_size, patches=None):
    for s, p in zip(input_size, patch_size):
        if p <= 0 or s % p:
            raise Unsupported(family, f"input size {input_size} with patch size {patch_size}",
                              "input sizes that are multiples of the patch size")
    if patches is not None and math.prod(s // p for s, p in zip(input_size, patch_size)) != patches:
        raise ExportError(f"{family}: input size {input_size} with patch size {patch_size} gives "
                          f"{math.prod(s // p for s, p in zip(input_size, patch_size))} patches, but the model has "
                          f"{patches}")


# ---- families: how to build the reference model, read its configuration, and preprocess for it ---------------

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
INCEPTION_MEAN, INCEPTION_STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def preprocess_none(layout, input_size):
    """No preprocessing recorded: the family defines none (set it with --preprocess)."""
    return {"layout": layout, "input_size": list(input_size), "channel_order": None, "rescale": None,
            "mean": None, "std": None, "intensity_window": None, "resize_size": None, "interpolation": None}


def describe_torchvision(model, hints):
    from torchvision.models.vision_transformer import EncoderBlock, VisionTransformer
    f = "torchvision"
    _exact_type(f, model, VisionTransformer, "the model")
    if type(model.conv_proj) is not nn.Conv2d:
        raise Unsupported(f, "a convolutional stem (conv_stem_configs)", "the patchify Conv2d (conv_stem_configs=None)")
    if [name for name, _ in model.heads.named_children()] != ["head"]:
        raise Unsupported(f, "representation_size (a pre-logits Linear + Tanh before the head)",
                          "a single Linear head (representation_size=None)")
    layers = list(model.encoder.layers)
    norms = [("encoder.ln", model.encoder.ln)]
    activation = "gelu"
    for i, layer in enumerate(layers):
        _exact_type(f, layer, EncoderBlock, f"encoder layer {i}")
        norms += [(f"encoder_layer_{i}.ln_1", layer.ln_1), (f"encoder_layer_{i}.ln_2", layer.ln_2)]
        activation = _activation(f, layer.mlp[1], f"encoder_layer_{i}.mlp")
    head = _linear(f, model.heads.head, "the head")
    if head.out_features < 1:
        raise Unsupported(f, "num_classes=0 (an empty head)", "num_classes >= 1")
    size = [model.image_size, model.image_size]
    config = vit_config(
        input_size=size, patch_size=[model.patch_size] * 2, channels=model.conv_proj.in_channels,
        dim=model.hidden_dim, depth=len(layers), heads=layers[0].self_attention.num_heads if layers else 1,
        mlp_dim=model.mlp_dim, num_classes=head.out_features, eps=_layer_norms(f, norms), activation=activation)
    # torchvision's ImageNet recipe (ImageClassification): resize to 256 for a 224 crop, bilinear.
    pre = dict(preprocess_none("BCHW", size), channel_order="RGB", rescale=1 / 255, mean=IMAGENET_MEAN,
               std=IMAGENET_STD, resize_size=int(round(model.image_size * 256 / 224)), interpolation="bilinear")
    return "vit2d", "torchvision", config, pre


def _timm_mlp(f, m, where):
    """(kind, hidden width fc2 reads, activation, bias, norm module or None) of a timm MLP."""
    from timm.layers import GluMlp, Mlp, SwiGLU
    kinds = {Mlp: "mlp", GluMlp: "glu", SwiGLU: "swiglu"}
    if type(m) not in kinds:
        raise Unsupported(f, f"{where} of type {type(m).__name__}", "timm's Mlp, GluMlp, SwiGLUPacked or SwiGLU")
    kind = kinds[type(m)]
    if kind == "glu" and not m.gate_last:
        kind = "swiglu_packed"  # act(first half) * second half
    if getattr(m, "chunk_dim", -1) not in (-1,) or any(isinstance(l, nn.Conv2d) for l in m.children()):
        raise Unsupported(f, f"{where} with convolutions", "Linear layers")
    linears = [m.fc1, m.fc2] if kind != "swiglu" else [m.fc1_g, m.fc1_x, m.fc2]
    for layer in linears:
        _linear(f, layer, where)
    biases = {layer.bias is not None for layer in linears}
    if len(biases) > 1:
        raise Unsupported(f, f"{where} with biases on some Linear layers only", "all or none")
    norm = None if isinstance(m.norm, nn.Identity) else m.norm
    return kind, m.fc2.in_features, _activation(f, m.act, where), biases.pop(), norm


def _timm_attention_pool(f, pool, activation):
    """The MLP width and heads of timm's AttentionPoolLatent as VisionTransformer and Eva build it
    (global_pool='map')."""
    from timm.layers.attention_pool import AttentionPoolLatent
    _exact_type(f, pool, AttentionPoolLatent, "the attention pool")
    if (pool.latent_len != 1 or pool.pos_embed is not None or pool.pool != "token" or pool.mlp is None
            or not isinstance(pool.q_norm, nn.Identity) or type(pool.q) is not nn.Linear
            or pool.q.bias is None or pool.kv.bias is None or pool.proj.bias is None):
        raise Unsupported(f, "this AttentionPoolLatent (latent_len, pos_embed, qk_norm, no MLP or biases)",
                          "one latent query, q and kv with biases, a residual MLP")
    kind, hidden, act, bias, norm = _timm_mlp(f, pool.mlp, "the attention pool's MLP")
    if kind != "mlp" or act != activation or not bias or norm is not None:
        raise Unsupported(f, "the attention pool's MLP", "timm's Mlp with the blocks' activation")
    return hidden, pool.num_heads


def _timm_block_norms_and_mlp(f, i, block, norms):
    """Block i's norms (its attention's q/k/merged-head norms, norm1, norm2, the MLP's) appended to norms, and
    its MLP as ((kind, bias, norm), hidden width, activation), for timm's Block and Eva's blocks alike."""
    a = block.attn
    norms += [(f"blocks.{i}.attn.{n}", getattr(a, n)) for n in ("q_norm", "k_norm", "norm")
              if not isinstance(getattr(a, n), nn.Identity)]
    kind, mlp_dim, activation, mlp_bias, mlp_norm = _timm_mlp(f, block.mlp, f"block {i}'s MLP")
    if mlp_norm is not None:
        norms.append((f"blocks.{i}.mlp.norm", mlp_norm))
    norms += [(f"blocks.{i}.norm1", block.norm1), (f"blocks.{i}.norm2", block.norm2)]
    return (kind, mlp_bias, mlp_norm is not None), mlp_dim, activation


def _same_as_block_0(f, i, settings, first):
    """Refuses block i when its settings differ from block 0's: vit3d builds every block alike (but for its
    key/value heads), and a difference the state_dict's keys do not show (an activation) would be silent."""
    if not first:
        first.update(settings)
        return
    for key, value in settings.items():
        if value != first[key]:
            raise Unsupported(f, f"block {i}'s {key} {value!r}, where block 0 has {first[key]!r}",
                              "blocks alike but for their key/value heads")


def _timm_pool_and_norms(f, model, norms, heads, activation):
    """The attention pool's MLP width and heads (0 and the blocks' heads without one), and the one norm kind,
    bias and eps of every norm: the blocks' (in norms) and the model's own."""
    extra = (("norm_pre", model.norm_pre), ("norm", model.norm), ("fc_norm", model.fc_norm))
    norms += [(n, mod) for n, mod in extra if not isinstance(mod, nn.Identity)]
    pool_mlp_dim, pool_heads = 0, heads
    if model.attn_pool is not None:
        pool_mlp_dim, pool_heads = _timm_attention_pool(f, model.attn_pool, activation)
        norms.append(("attn_pool.norm", model.attn_pool.norm))
    return (pool_mlp_dim, pool_heads) + tuple(_norms(f, norms))


def _timm_preprocess(model, size):
    """The model's pretrained_cfg when it came from timm.create_model, else timm's ViT defaults (_cfg)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    crop_pct = float(cfg.get("crop_pct", 0.9))
    pre = dict(preprocess_none("BCHW", size), channel_order="RGB", rescale=1 / 255,
               mean=[float(v) for v in cfg.get("mean", INCEPTION_MEAN)], std=[float(v) for v in cfg.get("std", INCEPTION_STD)],
               resize_size=int(math.floor(size[0] / crop_pct)), interpolation=str(cfg.get("interpolation", "bicubic")))
    crop_mode = cfg.get("crop_mode") or "center"
    if crop_mode == "squash" and crop_pct == 1.0:
        pre["resize_size"] = None  # timm resizes both sides to the input size: vit3d's resize without resize_size
    elif crop_mode != "center":
        note(f"timm: the model's pretrained_cfg has crop_mode={crop_mode!r} with crop_pct={crop_pct}, which vit3d's "
             f"preprocessing cannot express; the file records a resize of the shorter side to {pre['resize_size']} "
             "and a center crop, the same as timm's for square images only")
    return pre


def describe_eva(model, hints):
    """timm's Eva: EVA / EVA-02, the RoPE ViTs, Perception Encoder, DINOv3 (timm.models.eva)."""
    from timm.layers import PatchEmbed
    from timm.layers.attention import AttentionRope
    from timm.layers.pos_embed_sincos import RotaryEmbeddingCat, RotaryEmbeddingDinoV3, RotaryEmbeddingMixed
    from timm.models.eva import EvaAttention, EvaBlock, EvaBlockPostNorm
    f = "timm"
    pools = {"token": "cls", "avg": "mean", "max": "max", "avgmax": "mean_max", "map": "attention", "": "none"}
    if model.global_pool not in pools:
        raise Unsupported(f, f"global_pool={model.global_pool!r}", f"global_pool in {sorted(pools)}")
    has_head = not isinstance(model.head, nn.Identity)
    pe = model.patch_embed
    _exact_type(f, pe, PatchEmbed, "the patch embedding")
    if getattr(pe, "dynamic_img_pad", False):
        raise Unsupported(f, "dynamic_img_pad=True", "dynamic_img_pad=False")
    if (type(pe.proj) is not nn.Conv2d or tuple(pe.proj.stride) != tuple(pe.proj.kernel_size)
            or tuple(pe.proj.padding) != (0, 0)):
        raise Unsupported(f, "this patch embedding (a conv with padding or overlap)",
                          "timm's PatchEmbed: a Conv2d with stride = kernel and no padding")
    norms = [] if isinstance(pe.norm, nn.Identity) else [("patch_embed.norm", pe.norm)]
    rope = {"rope": False}
    if model.rope is not None:
        r = model.rope
        variants = {RotaryEmbeddingCat: "cat", RotaryEmbeddingMixed: "mixed", RotaryEmbeddingDinoV3: "dinov3"}
        if type(r) not in variants:
            raise Unsupported(f, f"rotary embedding {type(r).__name__}", "RotaryEmbeddingCat, Mixed or DinoV3")
        variant = variants[type(r)]
        if variant == "cat" and (getattr(r, "in_pixels", False) or getattr(r, "linear_bands", False)):
            raise Unsupported(f, "RotaryEmbeddingCat with in_pixels or linear_bands", "Eva's: in_pixels=False")
        ref = getattr(r, "ref_feat_shape", None)
        rope = {"rope": True, "rope_variant": variant, "rope_temperature": float(getattr(r, "temperature", 10000.0)),
                "rope_grid_indexing": getattr(r, "grid_indexing", "ij"),
                "rope_grid_offset": float(getattr(r, "grid_offset", 0.0) or 0.0),
                "rope_ref_feat_shape": [int(v) for v in ref] if ref is not None and variant == "cat" else [0, 0],
                "rope_rotate_half": bool(getattr(r, "rotate_half", False))}
    blocks = list(model.blocks)
    activation, mlp_dim, heads, head_dim, mlp = "gelu", 0, 1, 0, ("mlp", True, False)
    qkv_bias, qkv_split, k_bias, placement, layer_scale, qk_norm, attn_norm = True, False, True, "pre", False, False, False
    mlp_layer_scale, kv_heads, first = True, [], {}
    for i, block in enumerate(blocks):
        if type(block) not in (EvaBlock, EvaBlockPostNorm):
            raise Unsupported(f, f"block {i} of type {type(block).__name__}", "timm's EvaBlock or EvaBlockPostNorm")
        a = block.attn
        if type(a) not in (EvaAttention, AttentionRope):
            raise Unsupported(f, f"block {i}'s attention of type {type(a).__name__}", "EvaAttention or AttentionRope")
        if getattr(a, "gate", None) is not None:
            raise Unsupported(f, "a gated attention", "gated=False")
        kv_heads.append(int(getattr(a, "num_kv_heads", a.num_heads)))
        placement = "res_post" if type(block) is EvaBlockPostNorm else "pre"
        gammas = [getattr(block, n, None) for n in ("gamma_1", "gamma_2")]
        if gammas[0] is None and gammas[1] is not None:
            raise Unsupported(f, "LayerScale on the MLP only", "both branches, the attention's only, or neither")
        layer_scale, mlp_layer_scale = gammas[0] is not None, gammas[1] is not None
        qkv_split = a.qkv is None
        if qkv_split:
            qkv_bias = a.q_proj.bias is not None
            k_bias = a.k_proj.bias is not None
        elif type(a) is EvaAttention:
            qkv_bias, k_bias = a.q_bias is not None, False
        else:
            qkv_bias = k_bias = a.qkv.bias is not None
        if qkv_bias is False:
            k_bias = True  # without biases the two layouts agree
        if a.proj.bias is None:
            raise Unsupported(f, "an attention projection without bias", "proj with bias")
        qk_norm = not isinstance(a.q_norm, nn.Identity)
        attn_norm = not isinstance(a.norm, nn.Identity)
        mlp, mlp_dim, activation = _timm_block_norms_and_mlp(f, i, block, norms)
        heads, head_dim = a.num_heads, a.head_dim
        _same_as_block_0(f, i, dict(placement=placement, layer_scale=layer_scale, mlp_layer_scale=mlp_layer_scale,
                                    qkv_split=qkv_split, qkv_bias=qkv_bias, k_bias=k_bias, qk_norm=qk_norm,
                                    attn_norm=attn_norm, mlp=mlp, mlp_dim=mlp_dim, activation=activation,
                                    heads=heads, head_dim=head_dim), first)
    pool_mlp_dim, pool_heads, norm, norm_bias, eps = _timm_pool_and_norms(f, model, norms, heads, activation)
    class_token = model.cls_token is not None
    size, patch = list(pe.img_size), list(pe.patch_size)
    dim = model.embed_dim
    reg_tokens = model.reg_token.shape[1] if model.reg_token is not None else 0
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe.proj.in_channels, dim=dim, depth=len(blocks), heads=heads,
        head_dim=0 if heads * head_dim == dim else head_dim, mlp_dim=mlp_dim,
        num_classes=model.head.out_features if has_head else 0, class_token=class_token,
        pool=pools[model.global_pool],  # Eva's attention pool reads every token, the prefix ones too
        mean_includes_class_token=model.attn_pool is not None and model.num_prefix_tokens > 0,
        pos_embed="learned" if model.pos_embed is not None else "none",
        pos_embed_covers_class_token=not model.no_embed_class, norm_placement=placement, eps=eps,
        activation=activation, qkv_bias=qkv_bias, proj_bias=True,
        final_norm=not isinstance(model.norm, nn.Identity), head_norm=not isinstance(model.fc_norm, nn.Identity),
        reg_tokens=reg_tokens, pre_norm=not isinstance(model.norm_pre, nn.Identity),
        patch_bias=pe.proj.bias is not None, patch_norm=not isinstance(pe.norm, nn.Identity), norm=norm,
        norm_bias=norm_bias, layer_scale=layer_scale, qk_norm=qk_norm, attn_norm=attn_norm, mlp=mlp[0],
        mlp_bias=mlp[1], mlp_norm=mlp[2], pool_mlp_dim=0 if pool_mlp_dim == mlp_dim else pool_mlp_dim,
        pool_heads=0 if pool_heads == heads else pool_heads,
        # any input size the patches divide, as timm's dynamic_img_size runs it (resample_abs_pos_embed)
        dynamic_size=True, pos_embed_interpolation="bicubic_antialias",
        mlp_layer_scale=mlp_layer_scale or not layer_scale,
        block_kv_heads=kv_heads if any(k != heads for k in kv_heads) else [],
        drop_remainder=any(s % p for s, p in zip(size, patch)), qkv_split=qkv_split, k_bias=k_bias, **rope)
    return "vit2d", "timm", config, _timm_preprocess(model, size)


def describe_timm(model, hints):
    from timm.layers import LayerScale, PatchEmbed
    from timm.layers.attention import Attention
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import Block, ResPostBlock, VisionTransformer
    f = "timm"
    if type(model).__name__ == "Eva" and type(model).__module__ == "timm.models.eva":
        return describe_eva(model, hints)
    distilled = type(model) is VisionTransformerDistilled
    if not distilled:
        _exact_type(f, model, VisionTransformer, "the model")
    pools = {"token": "cls", "avg": "mean", "max": "max", "avgmax": "mean_max", "map": "attention", "": "none"}
    if model.global_pool not in pools:
        raise Unsupported(f, f"global_pool={model.global_pool!r}", f"global_pool in {sorted(pools)}")
    has_head = not isinstance(model.head, nn.Identity)
    if model.global_pool == "" and has_head:
        raise Unsupported(f, "global_pool='' with a head (a classifier on every token)", "a pooled head")
    pe = model.patch_embed
    _exact_type(f, pe, PatchEmbed, "the patch embedding")
    # dynamic_img_size keeps the patch grid unflattened (NHWC) until the positions are added: the same numbers.
    flattened = getattr(pe, "flatten", True) or getattr(model, "dynamic_img_size", False)
    if getattr(pe, "dynamic_img_pad", False):
        raise Unsupported(f, "dynamic_img_pad=True (inputs padded up to a multiple of the patch)",
                          "dynamic_img_pad=False")
    if (type(pe.proj) is not nn.Conv2d or not flattened or tuple(pe.proj.stride) != tuple(pe.proj.kernel_size)
            or tuple(pe.proj.padding) != (0, 0)):
        raise Unsupported(f, "this patch embedding (a conv with padding or overlap, or unflattened output)",
                          "timm's PatchEmbed: a Conv2d with stride = kernel and no padding")
    norms = [] if isinstance(pe.norm, nn.Identity) else [("patch_embed.norm", pe.norm)]
    blocks = list(model.blocks)
    activation, mlp_dim, heads, head_dim, mlp = "gelu", 0, 1, 0, ("mlp", True, False)
    qkv_bias = proj_bias = True
    placement, layer_scale, qk_norm, attn_norm = "pre", False, False, False
    first = {}
    for i, block in enumerate(blocks):
        if type(block) not in (Block, ResPostBlock):
            raise Unsupported(f, f"block {i} of type {type(block).__name__}", "timm's Block or ResPostBlock")
        _exact_type(f, block.attn, Attention, f"block {i}'s attention")
        a = block.attn
        if getattr(a, "gate", None) is not None:
            raise Unsupported(f, "a gated attention (gated=True)", "gated=False")
        placement = "res_post" if type(block) is ResPostBlock else "pre"
        ls = [getattr(block, n, nn.Identity()) for n in ("ls1", "ls2")]
        if not all(isinstance(l, (nn.Identity, LayerScale)) for l in ls):
            raise Unsupported(f, f"block {i}'s layer scale ({type(ls[0]).__name__})", "timm's LayerScale")
        layer_scale = isinstance(ls[0], LayerScale)
        if layer_scale != isinstance(ls[1], LayerScale):
            raise Unsupported(f, "LayerScale on one branch only", "both or neither")
        qk_norm = not isinstance(a.q_norm, nn.Identity)
        attn_norm = not isinstance(a.norm, nn.Identity)
        mlp, mlp_dim, activation = _timm_block_norms_and_mlp(f, i, block, norms)
        qkv_bias, proj_bias = a.qkv.bias is not None, a.proj.bias is not None
        heads, head_dim = a.num_heads, a.head_dim
        _same_as_block_0(f, i, dict(placement=placement, layer_scale=layer_scale, qk_norm=qk_norm,
                                    attn_norm=attn_norm, mlp=mlp, mlp_dim=mlp_dim, activation=activation,
                                    qkv_bias=qkv_bias, proj_bias=proj_bias, heads=heads, head_dim=head_dim), first)
    pool_mlp_dim, pool_heads, norm, norm_bias, eps = _timm_pool_and_norms(f, model, norms, heads, activation)
    class_token = model.cls_token is not None
    size, patch = list(pe.img_size), list(pe.patch_size)
    dim = model.embed_dim
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe.proj.in_channels, dim=dim, depth=len(blocks), heads=heads,
        head_dim=0 if heads * head_dim == dim else head_dim, mlp_dim=mlp_dim,
        num_classes=model.head.out_features if has_head else 0, class_token=class_token,
        pool=pools[model.global_pool],
        mean_includes_class_token=bool(model.pool_include_prefix) and model.num_prefix_tokens > 0,
        pos_embed="learned" if model.pos_embed is not None else "none",
        pos_embed_covers_class_token=not model.no_embed_class, norm_placement=placement, eps=eps,
        activation=activation, qkv_bias=qkv_bias, proj_bias=proj_bias,
        final_norm=not isinstance(model.norm, nn.Identity), head_norm=not isinstance(model.fc_norm, nn.Identity),
        reg_tokens=model.num_reg_tokens, distillation_token=distilled,
        pre_norm=not isinstance(model.norm_pre, nn.Identity), patch_bias=pe.proj.bias is not None,
        patch_norm=not isinstance(pe.norm, nn.Identity), norm=norm, norm_bias=norm_bias, layer_scale=layer_scale,
        qk_norm=qk_norm, attn_norm=attn_norm, mlp=mlp[0], mlp_bias=mlp[1], mlp_norm=mlp[2],
        pool_mlp_dim=0 if pool_mlp_dim == mlp_dim else pool_mlp_dim,
        pool_heads=0 if pool_heads == heads else pool_heads,
        # any input size the patches divide, as timm's dynamic_img_size runs it (resample_abs_pos_embed)
        dynamic_size=True, pos_embed_interpolation="bicubic_antialias",
        drop_remainder=any(s % p for s, p in zip(size, patch)))  # the strided conv leaves the last pixels out
    return "vit2d", "timm", config, _timm_preprocess(model, size)


def _vit_pytorch_common(f, model, attention_cls, feedforward_cls):
    """Blocks of vit-pytorch's Transformer: Attention (own LayerNorm, to_qkv, to_out) + FeedForward."""
    layers = list(model.transformer.layers)
    norms, heads, inner, mlp_dim, proj_bias, activation = [], 1, 0, 0, True, "gelu"
    for i, (attn, ff) in enumerate(layers):
        _exact_type(f, attn, attention_cls, f"layer {i}'s attention")
        _exact_type(f, ff, feedforward_cls, f"layer {i}'s feed-forward")
        out = attn.to_out[0] if isinstance(attn.to_out, nn.Sequential) else attn.to_out
        if isinstance(out, nn.Identity):
            raise Unsupported(f, "heads=1 with dim_head == dim (to_out is an Identity)",
                              "an output projection (heads > 1 or dim_head != dim)")
        _linear(f, out, f"layer {i}'s to_out")
        proj_bias = out.bias is not None
        heads, inner = attn.heads, attn.to_qkv.out_features // 3
        linears = [m for m in ff.net if isinstance(m, nn.Linear)]
        acts = [m for m in ff.net if not isinstance(m, (nn.Linear, nn.LayerNorm, nn.Dropout))]
        mlp_dim = linears[0].out_features
        activation = _activation(f, acts[0], f"layer {i}'s feed-forward")
        norms += [(f"transformer.layers.{i}.0.norm", attn.norm), (f"transformer.layers.{i}.1.net.0", ff.net[0])]
    pe = model.to_patch_embedding
    norms += [("to_patch_embedding.1", pe[1]), ("to_patch_embedding.3", pe[3])]
    return layers, norms, heads, inner, mlp_dim, proj_bias, activation


def _rearrange_pattern(f, layer, expected):
    pattern = " ".join(getattr(layer, "pattern", "").split())
    if pattern != expected:
        raise Unsupported(f, f"patch rearrangement {pattern!r} (an older vit-pytorch?)", repr(expected))
    return dict(getattr(layer, "axes_lengths", {}))


def describe_vit_pytorch(model, hints):
    from vit_pytorch.vit import Attention, FeedForward, ViT
    f = "vit_pytorch"
    _exact_type(f, model, ViT, "the model")
    pe = model.to_patch_embedding
    _rearrange_pattern(f, pe[0], "b c (h p1) (w p2) -> b (h w) (p1 p2 c)")
    layers, norms, heads, inner, mlp_dim, proj_bias, activation = _vit_pytorch_common(f, model, Attention, FeedForward)
    norms.append(("transformer.norm", model.transformer.norm))
    dim, patch = pe[2].out_features, list(model.patch_size)
    class_token = model.cls_token.shape[0] == 1
    size = _needs_hint(f, hints, "input_size", "image size (image_size)")
    _check_grid(f, size, patch, model.pos_embedding.shape[0] - int(class_token))
    head = model.mlp_head
    pool = "none" if head is None else ("mean" if model.pool == "mean" else "cls")
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe[1].normalized_shape[0] // (patch[0] * patch[1]), dim=dim,
        depth=len(layers), heads=heads, head_dim=inner // heads, mlp_dim=mlp_dim,
        num_classes=head.out_features if head is not None else 0, class_token=class_token, pool=pool,
        projection="unfold", patch_norms=True, eps=_layer_norms(f, norms), activation=activation, qkv_bias=False,
        proj_bias=proj_bias)
    return "vit2d", "vit_pytorch", config, preprocess_none("BCHW", size)


def describe_vit_pytorch_simple(model, hints):
    from vit_pytorch.simple_vit import Attention, FeedForward, SimpleViT
    f = "vit_pytorch_simple"
    _exact_type(f, model, SimpleViT, "the model")
    pe = model.to_patch_embedding
    _rearrange_pattern(f, pe[0], "b c (h p1) (w p2) -> b (h w) (p1 p2 c)")
    layers, norms, heads, inner, mlp_dim, proj_bias, activation = _vit_pytorch_common(f, model, Attention, FeedForward)
    norms.append(("transformer.norm", model.transformer.norm))
    dim, patch = pe[2].out_features, list(model.patch_size)
    size = _needs_hint(f, hints, "input_size", "image size (image_size)")
    _check_grid(f, size, patch, model.pos_embedding.shape[0])
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe[1].normalized_shape[0] // (patch[0] * patch[1]), dim=dim,
        depth=len(layers), heads=heads, head_dim=inner // heads, mlp_dim=mlp_dim,
        num_classes=model.linear_head.out_features, class_token=False, pool="mean", pos_embed="sincos",
        sincos="vit_pytorch", projection="unfold", patch_norms=True, eps=_layer_norms(f, norms),
        activation=activation, qkv_bias=False, proj_bias=proj_bias)
    return "vit2d", "vit_pytorch", config, preprocess_none("BCHW", size)


def _frames_hint(f, hints):
    """The [frames, height, width] input of a vit-pytorch 3D model, from the arguments or --preprocess."""
    size = _needs_hint(f, hints, "input_size", "input size (frames and image_size)")
    if len(size) != 3:
        raise ExportError(f"{f}: expected input_size [frames, height, width], got {size}")
    return size


def describe_vit_pytorch_3d(model, hints):
    from vit_pytorch.vit_3d import Attention, FeedForward, ViT
    f = "vit_pytorch_3d"
    _exact_type(f, model, ViT, "the model")
    pe = model.to_patch_embedding
    lengths = _rearrange_pattern(f, pe[0], "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)")
    layers, norms, heads, inner, mlp_dim, proj_bias, activation = _vit_pytorch_common(f, model, Attention, FeedForward)
    head_ln, head = model.mlp_head[0], _linear(f, model.mlp_head[1], "mlp_head.1")
    norms.append(("mlp_head.0", head_ln))
    patch = [int(lengths["pf"]), int(lengths["p1"]), int(lengths["p2"])]
    size = _frames_hint(f, hints)
    _check_grid(f, size, patch, model.pos_embedding.shape[1] - 1)
    dim = pe[2].out_features
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe[1].normalized_shape[0] // math.prod(patch), dim=dim,
        depth=len(layers), heads=heads, head_dim=inner // heads, mlp_dim=mlp_dim, num_classes=head.out_features,
        class_token=True, pool="mean" if model.pool == "mean" else "cls", mean_includes_class_token=model.pool == "mean",
        projection="unfold", patch_norms=True, eps=_layer_norms(f, norms), activation=activation, qkv_bias=False,
        proj_bias=proj_bias, final_norm=False, head_norm=True)
    return "vit3d", "vit_pytorch", config, preprocess_none("BCDHW", size)


def describe_vit_pytorch_simple_3d(model, hints):
    from vit_pytorch.simple_vit_3d import Attention, FeedForward, SimpleViT
    f = "vit_pytorch_simple_3d"
    _exact_type(f, model, SimpleViT, "the model")
    pe = model.to_patch_embedding
    lengths = _rearrange_pattern(f, pe[0], "b c (f pf) (h p1) (w p2) -> b f h w (pf p1 p2 c)")
    layers, norms, heads, inner, mlp_dim, proj_bias, activation = _vit_pytorch_common(f, model, Attention, FeedForward)
    norms.append(("transformer.norm", model.transformer.norm))
    patch = [int(lengths["pf"]), int(lengths["p1"]), int(lengths["p2"])]
    size = _frames_hint(f, hints)
    _check_grid(f, size, patch)
    dim = pe[2].out_features
    config = vit_config(
        input_size=size, patch_size=patch, channels=pe[1].normalized_shape[0] // math.prod(patch), dim=dim,
        depth=len(layers), heads=heads, head_dim=inner // heads, mlp_dim=mlp_dim,
        num_classes=model.linear_head.out_features, class_token=False, pool="mean", pos_embed="sincos",
        sincos="vit_pytorch", projection="unfold", patch_norms=True, eps=_layer_norms(f, norms),
        activation=activation, qkv_bias=False, proj_bias=proj_bias)
    return "vit3d", "vit_pytorch", config, preprocess_none("BCDHW", size)


def describe_monai(model, hints):
    from monai.networks.blocks.patchembedding import PatchEmbeddingBlock
    from monai.networks.blocks.selfattention import SABlock
    from monai.networks.blocks.transformerblock import TransformerBlock
    from monai.networks.nets.vit import ViT
    f = "monai"
    _exact_type(f, model, ViT, "the model")
    pe = model.patch_embedding
    _exact_type(f, pe, PatchEmbeddingBlock, "the patch embedding")
    if pe.proj_type == "conv":
        conv = pe.patch_embeddings
        patch, channels, projection = list(conv.kernel_size), conv.in_channels, "conv"
        if tuple(conv.stride) != tuple(conv.kernel_size):
            raise Unsupported(f, "a patch conv whose stride is not its kernel", "stride = kernel = patch_size")
    elif pe.proj_type == "perceptron":
        lengths = dict(pe.patch_embeddings[0].axes_lengths)
        patch = [int(lengths[f"p{i + 1}"]) for i in range(len(lengths))]
        channels, projection = pe.patch_embeddings[1].in_features // math.prod(patch), "unfold"
    else:
        raise Unsupported(f, f"proj_type={pe.proj_type!r}", "proj_type 'conv' or 'perceptron'")
    spatial = len(patch)
    size = _needs_hint(f, hints, "input_size", "image size (img_size)")
    if len(size) != spatial:
        raise ExportError(f"{f}: expected an input size of {spatial} axes, got {size}")
    _check_grid(f, size, patch, int(pe.n_patches))
    blocks = list(model.blocks)
    norms = [("norm", model.norm)]
    heads, head_dim, mlp_dim, qkv_bias, activation = 1, 0, 0, False, "gelu"
    for i, block in enumerate(blocks):
        _exact_type(f, block, TransformerBlock, f"block {i}")
        a = block.attn
        _exact_type(f, a, SABlock, f"block {i}'s attention")
        if block.with_cross_attention:
            raise Unsupported(f, "with_cross_attention", "self-attention blocks only")
        if (not a.use_combined_linear or not a.include_fc or a.causal or a.rel_positional_embedding is not None
                or a.attention_dtype is not None):
            raise Unsupported(f, f"block {i}'s attention options (separate q/k/v, no output Linear, causal, "
                                 "relative positions or an attention dtype)",
                              "SABlock with use_combined_linear=True, include_fc=True and nothing else")
        heads, head_dim, qkv_bias = a.num_heads, a.dim_head, a.qkv.bias is not None
        mlp_dim = block.mlp.linear1.out_features
        activation = _activation(f, block.mlp.fn, f"block {i}'s MLP")
    dim = model.norm.normalized_shape[0]
    classification = hasattr(model, "cls_token")
    head = getattr(model, "classification_head", None)
    head_activation = "identity"
    if isinstance(head, nn.Sequential):
        if len(head) != 2 or type(head[1]) is not nn.Tanh:
            raise Unsupported(f, "this classification head", "Linear, or Linear + Tanh (post_activation='Tanh')")
        head_activation, head = "tanh", head[0]
    config = vit_config(
        input_size=size, patch_size=patch, channels=channels, dim=dim, depth=len(blocks), heads=heads,
        head_dim=0 if heads * head_dim == dim else head_dim, mlp_dim=mlp_dim,
        num_classes=_linear(f, head, "the classification head").out_features if classification else 0,
        class_token=classification, pool="cls" if classification else "none",
        # every pos_embed_type is a table in the state_dict (learnable, or a fixed sincos / fourier one)
        pos_embed="learned", pos_embed_covers_class_token=False, projection=projection,
        eps=_layer_norms(f, norms), activation=activation, qkv_bias=qkv_bias, head_activation=head_activation)
    return ("vit3d" if spatial == 3 else "vit2d"), "monai", config, preprocess_none(
        "BCHWD" if spatial == 3 else "BCHW", size)


def describe_reg2rg(model, hints):
    f = "reg2rg"
    rg = _reg2rg_module()
    _exact_type(f, model, rg.Reg2rgViT, "the model")
    layers = list(model.transformer.layers)
    norms = [("to_patch_embedding.1", model.to_patch_embedding[1]), ("to_patch_embedding.3", model.to_patch_embedding[3])]
    heads, inner, mlp_dim, activation = 1, 0, 0, "gelu"
    for i, (attn, ff) in enumerate(layers):
        norms += [(f"transformer.layers.{i}.0.norm", attn.norm), (f"transformer.layers.{i}.1.norm", ff.norm)]
        heads, inner = attn.fn.heads, attn.fn.to_qkv.out_features // 3
        mlp_dim = ff.fn.net[0].out_features
        activation = _activation(f, ff.fn.net[1], f"layer {i}'s feed-forward")
    dim = model.to_patch_embedding[2].out_features
    if dim % 3:
        raise Unsupported(f, f"dim={dim}", "dim divisible by 3 (three position tables of dim / 3)")
    size = [*model.image_size, model.frames]
    patch = [*model.patch_size, model.pf]
    config = vit_config(
        input_size=size, patch_size=patch, channels=model.channels, dim=dim, depth=len(layers), heads=heads,
        head_dim=inner // heads, mlp_dim=mlp_dim, num_classes=0, class_token=False, pool="none",
        pos_embed="factorized3d", projection="unfold", patch_norms=True, eps=_layer_norms(f, norms),
        activation=activation, qkv_bias=False, final_norm=False)
    return "vit3d", "reg2rg", config, preprocess_none("BCHWD", size)


def describe_ct_encoder(model, hints):
    """tools/ct_encoder_reference.py's CTEncoder -> kind "ct_encoder", config = models::CTEncoderConfig."""
    f = "ct_encoder"
    ct = _tools_module("ct_encoder_reference")
    _exact_type(f, model, ct.CTEncoder, "the model")
    blocks = list(model.blocks)
    if not blocks:
        raise Unsupported(f, "depth=0", "at least one hybrid block")
    first = blocks[0]
    dim, heads = model.cls_token.shape[-1], first.attn.heads
    qkv_bias = first.attn.qkv.bias is not None
    norms = [("norm", model.norm)]
    for i, b in enumerate(blocks):
        norms += [(f"blocks.{i}.norm1", b.norm1), (f"blocks.{i}.norm2", b.norm2), (f"blocks.{i}.norm3", b.norm3)]
        if (b.attn.heads, b.attn.qkv.bias is not None, b.region_attn.heads) != (heads, qkv_bias, heads):
            raise Unsupported(f, f"block {i} differing from block 0", "blocks of one shape")
    conv = model.patch_embed.proj
    size = [g * p for g, p in zip(model.grid, model.patch)]
    config = {
        "input_size": size, "patch_size": list(model.patch), "channels": conv.in_channels, "dim": dim,
        "depth": len(blocks), "heads": heads, "mlp_dim": first.mlp.fc1.out_features,
        "slice_levels": first.attn.slice_bias.table.shape[1], "regions": model.regions,
        "pos_embed": "factorized3d" if model.positions == "factorized" else "sincos", "sincos": "mae_monai",
        "pool": model.pool, "eps": _layer_norms(f, norms), "qkv_bias": qkv_bias,
        "projection_dim": model.projection_dim,
    }
    return "ct_encoder", "ct_encoder", config, preprocess_none("BCDHW", size)


def _tools_module(name):
    """A module of tools/ (reference re-implementations no package ships), loaded once."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _reg2rg_module():
    return _tools_module("reg2rg_vit")


# family -> (module, class name, package for the version record, describe function, input-size hint from args)
FAMILIES = {
    "torchvision": ("torchvision.models.vision_transformer", "VisionTransformer", "torchvision", describe_torchvision,
                    lambda a: None),
    "timm": ("timm.models.vision_transformer", "VisionTransformer", "timm", describe_timm, lambda a: None),
    "vit_pytorch": ("vit_pytorch.vit", "ViT", "vit-pytorch", describe_vit_pytorch,
                    lambda a: _pair(a["image_size"])),
    "vit_pytorch_simple": ("vit_pytorch.simple_vit", "SimpleViT", "vit-pytorch", describe_vit_pytorch_simple,
                           lambda a: _pair(a["image_size"])),
    "vit_pytorch_3d": ("vit_pytorch.vit_3d", "ViT", "vit-pytorch", describe_vit_pytorch_3d,
                       lambda a: [int(a["frames"]), *_pair(a["image_size"])]),
    "vit_pytorch_simple_3d": ("vit_pytorch.simple_vit_3d", "SimpleViT", "vit-pytorch", describe_vit_pytorch_simple_3d,
                              lambda a: [int(a["frames"]), *_pair(a["image_size"])]),
    "monai": ("monai.networks.nets.vit", "ViT", "monai", describe_monai,
              lambda a: _monai_size(a)),
    "reg2rg": ("reg2rg_vit", "Reg2rgViT", None, describe_reg2rg, lambda a: None),
    "ct_encoder": ("ct_encoder_reference", "CTEncoder", None, describe_ct_encoder,
                   lambda a: [int(v) for v in a.get("input_size", (64, 512, 512))]),
}


# One --config per family, shown in --help and built and exported by tests/tools/test_export_weights.py:
# (what it builds, the constructor's keyword arguments).
CONFIG_EXAMPLES = {
    "torchvision": ("torchvision.models.VisionTransformer: ViT-B/16, as --torchvision-model vit_b_16",
                    {"image_size": 224, "patch_size": 16, "num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                     "mlp_dim": 3072}),
    "timm": ("timm's VisionTransformer: ViT-S/16, as --timm-model vit_small_patch16_224",
             {"img_size": 224, "patch_size": 16, "embed_dim": 384, "depth": 12, "num_heads": 6}),
    "vit_pytorch": ("vit_pytorch.ViT, as in vit-pytorch's README",
                    {"image_size": 256, "patch_size": 32, "num_classes": 1000, "dim": 1024, "depth": 6, "heads": 16,
                     "mlp_dim": 2048}),
    "vit_pytorch_simple": ("vit_pytorch.SimpleViT, as in vit-pytorch's README",
                           {"image_size": 256, "patch_size": 32, "num_classes": 1000, "dim": 1024, "depth": 6,
                            "heads": 16, "mlp_dim": 2048}),
    "vit_pytorch_3d": ("vit_pytorch.vit_3d.ViT on 16 frames of 128 x 128, input [B, 3, 16, 128, 128]",
                       {"image_size": 128, "frames": 16, "image_patch_size": 16, "frame_patch_size": 2,
                        "num_classes": 1000, "dim": 1024, "depth": 6, "heads": 8, "mlp_dim": 2048}),
    "vit_pytorch_simple_3d": ("vit_pytorch.simple_vit_3d.SimpleViT on 16 frames of 128 x 128",
                              {"image_size": 128, "frames": 16, "image_patch_size": 16, "frame_patch_size": 2,
                               "num_classes": 1000, "dim": 1024, "depth": 6, "heads": 16, "mlp_dim": 2048}),
    "monai": ("monai.networks.nets.ViT, UNETR's encoder on a 96^3 volume (a head: add \"classification\": true, "
              "\"num_classes\": N)",
              {"in_channels": 1, "img_size": [96, 96, 96], "patch_size": [16, 16, 16]}),
    "reg2rg": ("the RadFM / Reg2RG image encoder, as those models configure it",
               {"image_size": 512, "frames": 512, "image_patch_size": 32, "frame_patch_size": 4, "dim": 768,
                "depth": 12, "heads": 8, "mlp_dim": 2048}),
    "ct_encoder": ("the anatomy-aware CT encoder on 64 slices of 512 x 512",
                   {"input_size": [64, 512, 512], "patch": [4, 16, 16], "dim": 768, "depth": 12, "heads": 12}),
}


def _monai_size(args):
    spatial = int(args.get("spatial_dims", 3))
    size = args["img_size"]
    return [int(v) for v in size] if isinstance(size, (list, tuple)) else [int(size)] * spatial


def _known_families():
    return ", ".join(FAMILIES)


def reference_class(family):
    if family not in FAMILIES:
        raise ExportError(f"unknown family {family!r}; known families: {_known_families()}")
    module_name, class_name = FAMILIES[family][:2]
    if family in ("reg2rg", "ct_encoder"):  # re-implementations in tools/
        return getattr(_tools_module(module_name), class_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ExportError(f"family {family} needs the {FAMILIES[family][2]} package: {_one_line(e)}") from None
    return getattr(module, class_name)


def infer_family(model):
    """The family of a model object, from its class (only packages already imported are looked at)."""
    cls = type(model)
    for family, (module_name, class_name, *_rest) in FAMILIES.items():
        if family in ("reg2rg", "ct_encoder"):
            if cls.__name__ == class_name and cls.__module__.split(".")[-1] == module_name:
                return family
            continue
        if module_name in sys.modules and cls is getattr(sys.modules[module_name], class_name, None):
            return family
    if "timm.models.deit" in sys.modules and cls is sys.modules["timm.models.deit"].VisionTransformerDistilled:
        return "timm"
    if "timm.models.eva" in sys.modules and cls is sys.modules["timm.models.eva"].Eva:
        return "timm"
    raise ExportError(f"cannot tell the family of a {cls.__module__}.{cls.__qualname__}; pass it (--family / "
                      f"export(model, family, ...)): {_known_families()}")


# ---- constructor arguments ---------------------------------------------------------------------------------

def check_arguments(family, cls, arguments):
    """Missing and unknown keyword arguments against the real constructor's signature."""
    if not isinstance(arguments, dict):
        raise ExportError(f"{family}: expected the constructor arguments as a JSON object, got {type(arguments).__name__}")
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in arguments:
        if name not in named and not takes_kwargs:
            raise ExportError(f"{family}: {cls.__qualname__}() has no argument {name!r}; its arguments: "
                              f"{', '.join(named)}")
    for name, p in named.items():
        if p.default is p.empty and name not in arguments:
            raise ExportError(f"{family}: {cls.__qualname__}() needs the argument {name!r} (missing from the "
                              f"constructor arguments)")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def build_reference(family, arguments):
    cls = reference_class(family)
    check_arguments(family, cls, arguments)
    try:
        # JSON has no tuples; the constructors take sizes as tuples (vit-pytorch's pair() accepts nothing else).
        model = cls(**{k: _tuples(v) for k, v in arguments.items()})
    except Exception as e:  # the constructor's own validation (asserts, ValueErrors)
        raise ExportError(f"{family}: {cls.__qualname__}(**arguments) failed: {type(e).__name__}: "
                          f"{_one_line(e) or '(no message)'}") from None
    return model.eval()


# ---- models by name ---------------------------------------------------------------------------------------

def _close_names(name, names):
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    return f"close matches: {', '.join(close)}" if close else "no close match"


def _keyword_arguments(arguments, option, taken):
    """JSON keyword arguments for a model factory; `taken` is the one the exporter sets itself."""
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise ExportError(f"{option}: expected a JSON object of keyword arguments, got {type(arguments).__name__}")
    if taken in arguments:
        raise ExportError(f"{option}: {taken!r} is set by the exporter: the weights come from --state-dict (or "
                          "--random-weights), never from a download")
    return {k: _tuples(v) for k, v in arguments.items()}


def timm_model(name, arguments=None):
    """timm.create_model(name, pretrained=False, **arguments). A pretrained tag (name.tag) selects the model's
    pretrained_cfg, whose mean, std, crop and interpolation describe_timm records as the preprocessing."""
    try:
        import timm
    except ImportError as e:
        raise ExportError(f"--timm-model needs the timm package: {_one_line(e)}") from None
    kwargs = _keyword_arguments(arguments, "--timm-args", "pretrained")
    architecture, _, tag = name.partition(".")
    if not timm.is_model(architecture):
        raise ExportError(f"--timm-model {name!r}: timm {timm.__version__} has no such model; "
                          f"{_close_names(architecture, timm.list_models())} "
                          "(timm.list_models('*vit*') lists its ViTs)")
    if tag:
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{architecture}.*")]
        if tag not in tags:
            raise ExportError(f"--timm-model {name!r}: timm {timm.__version__} has no pretrained tag {tag!r} for "
                              f"{architecture}; its tags: {', '.join(tags) or 'none'}")
    try:
        model = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:
        raise ExportError(f"--timm-model {name}: timm.create_model(pretrained=False"
                          f"{', **--timm-args' if kwargs else ''}) failed: {_type_name(e)}: {_one_line(e)}") from None
    return model.eval()


def torchvision_model(name, arguments=None):
    """torchvision.models.get_model(name, weights=None, **arguments)."""
    try:
        import torchvision
        import torchvision.models
    except ImportError as e:
        raise ExportError(f"--torchvision-model needs the torchvision package: {_one_line(e)}") from None
    kwargs = _keyword_arguments(arguments, "--torchvision-args", "weights")
    names = torchvision.models.list_models()
    if name not in names:
        raise ExportError(f"--torchvision-model {name!r}: torchvision {torchvision.__version__} has no such model; "
                          f"{_close_names(name, names)} (torchvision.models.list_models() lists them)")
    try:
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    except Exception as e:
        raise ExportError(f"--torchvision-model {name}: torchvision.models.get_model(weights=None"
                          f"{', **--torchvision-args' if kwargs else ''}) failed: {_type_name(e)}: "
                          f"{_one_line(e)}") from None
    return model.eval()


# ---- the checkpoint -----------------------------------------------------------------------------------------

def note(text):
    """A remark on what was read (which entry, what was left out) for the user; stdout carries the result."""
    print(f"export_weights.py: note: {_one_line(text)}", file=sys.stderr)


# Where training scripts keep the state_dict: timm's train.py, Lightning and most others "state_dict"; DeiT,
# MAE and BEiT "model"; the PyTorch tutorials "model_state_dict".
CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict")


def _is_state_dict(obj):
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()))


def _what_it_is(obj):
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not (isinstance(k, str) and torch.is_tensor(v)):
                return f"a {type(obj).__name__} whose entry {k!r} is a {type(v).__qualname__}"
        return f"an empty {type(obj).__name__}"
    return f"a {_type_name(obj)}"


def _is_torchscript(path):
    """torch.jit.save writes a zip archive with a constants.pkl; torch.save's archives have none."""
    try:
        with zipfile.ZipFile(str(path)) as archive:
            return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _pickled_names(path, refusal):
    """The classes and functions a torch.save file names beyond tensors and plain containers, the one
    torch.load(weights_only=True) refused first (the outermost object's class) first. Read from the pickle's
    opcodes: nothing in the file runs."""
    first = re.search(r"GLOBAL ([\w.]+)", str(refusal))
    names = [first.group(1)] if first else []
    try:  # torch >= 2.5
        names += sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) - set(names))
    except Exception:
        pass
    return names


def _refusal(path, refusal):
    """One line for a file torch.load(weights_only=True) will not read: what it holds, and what to do."""
    where, names = f"state_dict {str(path)!r}", _pickled_names(path, refusal)
    if any(name.startswith("torch.nn.modules.") for name in names):
        return (f"{where} holds a whole pickled model (torch.save(model), class {names[0]}), not a state_dict: "
                f"save model.state_dict() and give that, or, if you trust the file (unpickling it runs code), "
                f"give it as --model-file {path}")
    held = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "") if names else "objects"
    return (f"{where} holds {held} besides tensors, which torch.load(weights_only=True) does not unpickle: "
            f"if you trust the file (unpickling it runs code), add --trust-pickle; else save its state_dict alone")


def _unwrap(obj, where, key, holds, what):
    """(obj, where) when obj holds what is wanted; else its entry `key`, or the one training scripts use
    (CHECKPOINT_KEYS first, else the only entry that holds it), named in a note."""
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            entries = ", ".join(map(repr, list(obj)[:8])) if isinstance(obj, Mapping) else _what_it_is(obj)
            raise ExportError(f"--checkpoint-key {key!r}: {where} has no such entry; it holds: {entries}")
        return obj[key], f"{where}[{key!r}]"
    if holds(obj) or not isinstance(obj, Mapping) or _is_state_dict(obj):
        return obj, where
    holding = [k for k, v in obj.items() if holds(v)]
    chosen = next((k for k in CHECKPOINT_KEYS if k in holding), holding[0] if len(holding) == 1 else None)
    if chosen is None:
        if holding:
            raise ExportError(f"{where}: a checkpoint whose entries {', '.join(map(repr, holding))} each hold a "
                              f"{what}: choose one with --checkpoint-key")
        entries = ", ".join(map(repr, list(obj)[:8])) + (" ..." if len(obj) > 8 else "")
        raise ExportError(f"{where}: expected a {what}, got a {type(obj).__name__} of entries {entries}, none of them "
                          f"a {what}")
    others = [k for k in holding if k != chosen]
    note(f"{where}: a training checkpoint; using the {what} under its {chosen!r} entry"
         + (f" ({', '.join(map(repr, others))} {'holds' if len(others) == 1 else 'hold'} one too: --checkpoint-key "
            f"to use {'it' if len(others) == 1 else 'one of them'})" if others else ""))
    return obj[chosen], f"{where}[{chosen!r}]"


def _torch_load(path, trust_pickle):
    has_weights_only = "weights_only" in inspect.signature(torch.load).parameters  # torch >= 1.13
    if not has_weights_only and not trust_pickle:
        raise ExportError(f"torch {torch.__version__} cannot read {str(path)!r} without unpickling it (no "
                          "weights_only): give a .safetensors file, or add --trust-pickle for a file you trust")
    kwargs = {"weights_only": not trust_pickle} if has_weights_only else {}
    if trust_pickle:
        sys.path.insert(0, os.getcwd())  # the classes a pickle names may be the user's own, as with --python
    return torch.load(str(path), map_location="cpu", **kwargs)


def read_checkpoint(path, trust_pickle=False):
    """What a checkpoint file holds. Without trust_pickle only tensors and plain containers are unpickled
    (weights_only=True, which runs no code from the file); anything else is refused, saying what it is."""
    path, where = Path(path), f"state_dict {str(path)!r}"
    if not path.is_file():
        raise ExportError(f"{where}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as e:
            raise ExportError(f"{where}: cannot read it as safetensors: {_one_line(e)}") from None
    if _is_torchscript(path):
        raise ExportError(f"{where} is a TorchScript archive (torch.jit.save), not a state_dict: save "
                          "torch.jit.load(file).state_dict() with torch.save and give that")
    try:
        return _torch_load(path, trust_pickle)
    except pickle.UnpicklingError as e:
        if trust_pickle:
            raise ExportError(f"{where}: cannot unpickle it: {_one_line(e)}") from None
        raise ExportError(_refusal(path, e)) from None
    except (ImportError, AttributeError) as e:  # trusted pickles only: a class the file names is not importable
        raise ExportError(f"{where}: cannot unpickle it: {_type_name(e)}: {_one_line(e)} (the classes it "
                          "names must be importable: run from the folder holding their module)") from None
    except Exception as e:
        raise ExportError(f"{where}: cannot read it: {_one_line(e)}") from None


def read_state_dict(path, strip_prefix="", *, trust_pickle=False, checkpoint_key=None):
    """The state_dict of a checkpoint file: the file's own mapping of names to tensors, the entry
    checkpoint_key of a training checkpoint, or the entry such checkpoints keep it in (a note names it)."""
    holds = lambda v: _is_state_dict(v) or isinstance(v, nn.Module)  # noqa: E731
    state, where = _unwrap(read_checkpoint(path, trust_pickle), f"state_dict {str(path)!r}", checkpoint_key, holds,
                           "state_dict")
    if isinstance(state, nn.Module):  # a whole model, from a file the user trusts
        note(f"{where}: a whole {type(state).__qualname__} model; using its state_dict()")
        state = state.state_dict()
    if not _is_state_dict(state):
        raise ExportError(f"{where}: expected a state_dict (a mapping of names to tensors), got {_what_it_is(state)}")
    return select_prefix(dict(state), strip_prefix)


def select_prefix(state, prefix):
    """The keys under `prefix`, without it: the sub-module's state_dict (module. of DataParallel, model. of a
    Lightning module). Keys without it are left out, named in a note; the strict fit still checks that every
    key the model needs is there."""
    if not prefix:
        return state
    selected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not selected:
        raise ExportError(f"--strip-prefix {prefix!r}: no key of the state_dict starts with it; its keys: "
                          f"{', '.join(map(repr, list(state)[:3]))}{', ...' if len(state) > 3 else ''}")
    left_out = [k for k in state if not k.startswith(prefix)]
    if left_out:
        note(f"--strip-prefix {prefix!r}: left out the {len(left_out)} key{'s' if len(left_out) > 1 else ''} "
             f"without it ({', '.join(map(repr, left_out[:3]))}{', ...' if len(left_out) > 3 else ''})")
    return selected


# What leaves a prefix on every key.
PREFIX_ORIGINS = {"module.": "a DataParallel/DDP checkpoint", "_orig_mod.": "a torch.compile'd model",
                  "model.": "e.g. a PyTorch Lightning module's"}


def prefix_hint(keys, expected, given=""):
    """When the keys under one prefix are exactly the model's keys: one sentence naming the prefix and the
    --strip-prefix that reads them (given: the one the user gave, if any); else None."""
    expected, keys = set(expected), list(keys)
    under = {}
    for key in keys:
        for i, c in enumerate(key):
            if c == "." and key[i + 1:] in expected:
                under.setdefault(key[:i + 1], set()).add(key[i + 1:])
    fits = [p for p, rest in under.items() if rest == expected and sum(k.startswith(p) for k in keys) == len(rest)]
    if len(fits) > 1:
        return (f"the keys under {' and under '.join(map(repr, fits))} each match the model's: add --strip-prefix "
                "with the one to read")
    if not fits:
        return None
    prefix = fits[0]
    others = [k for k in keys if not k.startswith(prefix)]
    origin = f" ({PREFIX_ORIGINS[prefix]})" if prefix in PREFIX_ORIGINS else ""
    action = f"use --strip-prefix {prefix} instead of {given}" if given else f"add --strip-prefix {prefix}"
    if not others:
        return f'every key starts with "{prefix}"{origin}: {action}'
    left_out = f"the other one, {others[0]!r}," if len(others) == 1 else f"the other {len(others)}, e.g. {others[0]!r},"
    return (f'{len(keys) - len(others)} of the {len(keys)} keys start with "{prefix}"{origin} and, without it, are '
            f"the model's ({left_out} would be left out): {action}")


def model_from_file(path, checkpoint_key=None):
    """A whole pickled model (torch.save(model)). Unpickling runs code the file names, hence only on the
    explicit --model-file."""
    path, where = Path(path), f"model file {str(path)!r}"
    if not path.is_file():
        raise ExportError(f"{where}: no such file")
    try:
        obj = _torch_load(path, trust_pickle=True)
    except (ImportError, AttributeError) as e:
        raise ExportError(f"{where}: cannot unpickle it: {_type_name(e)}: {_one_line(e)} (the model's class "
                          "must be importable: run from the folder holding its module)") from None
    except Exception as e:
        raise ExportError(f"{where}: cannot read it: {_type_name(e)}: {_one_line(e)}") from None
    entries = obj.values() if isinstance(obj, Mapping) else ()
    if checkpoint_key is None and (_is_state_dict(obj) or (any(map(_is_state_dict, entries))
                                                             and not any(isinstance(v, nn.Module) for v in entries))):
        raise ExportError(f"{where} holds a state_dict, not a model: give it as --state-dict, with the model built "
                          "by --config or --python")
    model, where = _unwrap(obj, where, checkpoint_key, lambda v: isinstance(v, nn.Module), "model")
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        note(f"{where}: a {type(model).__name__} wrapper; exporting the model it wraps (.module)")
        model = model.module
    if not isinstance(model, nn.Module):
        raise ExportError(f"{where}: expected a pickled nn.Module, got {_what_it_is(model)}")
    return model.eval()


def common_dtype(state):
    """The floating-point dtype all of the state_dict's floating tensors share, else None."""
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def fit_state_dict(family, model, state, checkpoint_keys=None, stripped=""):
    """Loads `state` into the reference model strictly, naming the first keys that do not fit, or the prefix
    that keeps the checkpoint's keys (checkpoint_keys: as in the file, before the prefix `stripped` was
    taken off) from the model's."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    keys = state if checkpoint_keys is None else checkpoint_keys
    hint = prefix_hint(keys, expected, stripped) if missing else None
    if hint:
        raise ExportError(f"{family}: the state_dict's keys are not the model's: {hint}")
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:5]))}"
                        + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected key{'s' if len(unexpected) > 1 else ''} {', '.join(map(repr, unexpected[:5]))}"
                        + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else ""))
    for k in mis_shaped[:5]:
        problems.append(f"{k!r} has shape {list(state[k].shape)}, the model expects {list(expected[k].shape)}")
    if problems:
        raise ExportError(f"{family}: the state_dict does not fit the model built from these arguments: "
                          + "; ".join(problems))
    model.load_state_dict(state, strict=True)


# ---- preprocessing ------------------------------------------------------------------------------------------

PREPROCESS_FIELDS = ("layout", "input_size", "channel_order", "rescale", "mean", "std", "intensity_window",
                     "resize_size", "interpolation", "steps", "preset")

# MONAI transforms that only load or convert, which vit3d's readers do themselves: left out of the steps.
MONAI_LOADING = ("LoadImage", "EnsureChannelFirst", "EnsureType", "ToTensor", "CastToType", "ToNumpy")


def _first(value):
    """A dictionary transform's per-key setting for its first key (the image)."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _plain(value):
    """A MONAI setting as JSON: enums by value, tuples and arrays as lists."""
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _monai_step(t):
    """The step (a dict of MONAI's parameter names, as preprocess.steps holds them) of one MONAI transform, or
    None for a loading transform."""
    name = type(t).__name__
    base = name[:-1] if name.endswith("d") and hasattr(t, "keys") else name
    if base in MONAI_LOADING:
        return None
    inner = {"Orientation": "ornt_transform", "Spacing": "spacing_transform", "ScaleIntensityRange": "scaler",
             "NormalizeIntensity": "normalizer", "CropForeground": "cropper", "SpatialPad": "padder",
             "CenterSpatialCrop": "cropper", "ResizeWithPadOrCrop": "padder"}
    if base not in inner:
        raise ExportError(f"preprocess: MONAI's {name} has no vit3d step; vit3d applies {', '.join(inner)} "
                          f"(and leaves out {', '.join(MONAI_LOADING)})")
    if base != name:
        if len(t.keys) != 1:
            note(f"{name} applies to keys {list(t.keys)}: the step records its setting for {t.keys[0]!r}")
        t_dict, t = t, getattr(t, inner[base])
    else:
        t_dict = None
    if base == "Orientation":
        return {"name": base, "axcodes": t.axcodes, "as_closest_canonical": bool(t.as_closest_canonical)}
    if base == "Spacing":
        r = t.sp_resample
        mode = _first(t_dict.mode) if t_dict is not None else r.mode
        padding = _first(t_dict.padding_mode) if t_dict is not None else r.padding_mode
        align = _first(t_dict.align_corners) if t_dict is not None else r.align_corners
        scale_extent = _first(t_dict.scale_extent) if t_dict is not None else t.scale_extent
        dtype = _first(t_dict.dtype) if t_dict is not None else r.dtype
        unsupported = {"align_corners": align, "scale_extent": scale_extent, "recompute_affine": t.recompute_affine}
        for key, value in unsupported.items():
            if value:
                raise ExportError(f"preprocess: {name}({key}=True) is not among what vit3d's Spacing reproduces")
        if str(dtype) not in ("<class 'numpy.float64'>", "float64", "torch.float64"):
            raise ExportError(f"preprocess: {name}(dtype={dtype}) resamples in another type than MONAI's default "
                              "float64, which vit3d's Spacing step uses")

        def bound(v):
            if v is None:
                return []
            values = [float(x) for x in (v if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else [v])]
            if all(math.isnan(x) for x in values):  # MONAI's None for every axis
                return []
            if any(math.isnan(x) for x in values):
                raise ExportError(f"preprocess: {name} has a min_pixdim / max_pixdim with None entries, "
                                  "which the step cannot record")
            return values
        return {"name": base, "pixdim": [float(x) for x in _plain(t.pixdim)], "mode": _plain(mode),
                "padding_mode": _plain(padding), "diagonal": bool(t.diagonal), "min_pixdim": bound(_plain(t.min_pixdim)), "max_pixdim": bound(_plain(t.max_pixdim))}
    if base == "ScaleIntensityRange":
        return {"name": base, "a_min": float(t.a_min), "a_max": float(t.a_max),
                "b_min": None if t.b_min is None else float(t.b_min),
                "b_max": None if t.b_max is None else float(t.b_max), "clip": bool(t.clip)}
    if base == "NormalizeIntensity":
        def values(v):
            return None if v is None else [float(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
        return {"name": base, "subtrahend": values(t.subtrahend), "divisor": values(t.divisor),
                "nonzero": bool(t.nonzero), "channel_wise": bool(t.channel_wise)}

    def pad_value(padder):
        if _plain(padder.mode) != "constant" or set(padder.kwargs) - {"value"}:
            raise ExportError(f"preprocess: {name} pads with mode {_plain(padder.mode)!r} {padder.kwargs}; vit3d "
                              "pads with a constant value only")
        return float(padder.kwargs.get("value", 0.0))

    if base == "CropForeground":
        from monai.transforms.utils import is_positive
        if t.select_fn is not is_positive:
            raise ExportError(f"preprocess: {name} selects the foreground with {t.select_fn!r}; vit3d records a "
                              "threshold (voxels > threshold): give the step as JSON, "
                              "{\"name\": \"CropForeground\", \"threshold\": ...}")
        return {"name": base, "threshold": 0.0, "channel_indices": list(t.channel_indices or []),
                "margin": [int(x) for x in _plain(t.margin if isinstance(t.margin, (list, tuple)) else [t.margin])],
                "allow_smaller": bool(t.allow_smaller),
                "k_divisible": [int(x) for x in _plain(t.k_divisible if isinstance(t.k_divisible, (list, tuple))
                                                       else [t.k_divisible])],
                "value": pad_value(t.padder)}
    if base == "CenterSpatialCrop":
        size = t.roi_size if isinstance(t.roi_size, (list, tuple)) else [t.roi_size]
        return {"name": base, "roi_size": [int(x) for x in size]}
    padder = t.padder if base == "ResizeWithPadOrCrop" else t
    size = padder.spatial_size if isinstance(padder.spatial_size, (list, tuple)) else [padder.spatial_size]
    return {"name": base, "spatial_size": [int(x) for x in size], "method": _plain(padder.method),
            "value": pad_value(padder)}


def monai_steps(transforms):
    """preprocess.steps from a MONAI Compose (or a list of MONAI transforms, array or dictionary ones): each
    transform as vit3d's step of the same name with its parameters, the loading ones left out."""
    items = getattr(transforms, "transforms", transforms)
    steps = [_monai_step(t) for t in items]
    return [s for s in steps if s is not None]


def merge_preprocess(family, defaults, overrides, channels, kind):
    pre = {"steps": None, "preset": None, **defaults}
    for key, value in (overrides or {}).items():
        if key not in PREPROCESS_FIELDS:
            raise ExportError(f"preprocess: unknown field {key!r}; fields: {', '.join(PREPROCESS_FIELDS)}")
        pre[key] = value
    if pre["steps"] is not None and not isinstance(pre["steps"], list):
        pre["steps"] = monai_steps(pre["steps"])
    if pre["steps"] is not None and not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                            for s in pre["steps"]):
        raise ExportError("preprocess.steps: expected a list of steps {\"name\": ..., parameters} or a MONAI "
                          f"Compose, got {pre['steps']!r}")
    if pre["preset"] is not None and not isinstance(pre["preset"], str):
        raise ExportError(f"preprocess.preset: expected a preset's name or null, got {pre['preset']!r}")
    if (pre["steps"] is not None or pre["preset"] is not None) and kind == "vit2d":
        raise ExportError("preprocess.steps and preprocess.preset describe volumes; this is a 2D model")
    if pre["steps"] is not None and pre["preset"] is not None:
        raise ExportError("preprocess: give steps or a preset, not both")
    layouts = {"vit2d": ("BCHW",), "vit3d": ("BCDHW", "BCHWD"), "ct_encoder": ("BCDHW",)}[kind]
    if pre["layout"] not in layouts:
        raise ExportError(f"preprocess.layout: expected one of {', '.join(layouts)} for a {kind} model, got {pre['layout']!r}")
    if list(pre["input_size"]) != list(defaults["input_size"]):
        raise ExportError(f"preprocess.input_size: the model takes {defaults['input_size']}, got {pre['input_size']}")
    if pre["channel_order"] not in (None, "RGB", "BGR", "L"):
        raise ExportError(f"preprocess.channel_order: expected 'RGB', 'BGR', 'L' or null, got {pre['channel_order']!r}")
    if pre["channel_order"] in ("RGB", "BGR") and channels != 3 or pre["channel_order"] == "L" and channels != 1:
        raise ExportError(f"preprocess.channel_order {pre['channel_order']!r} does not fit {channels} input channels")
    for key in ("mean", "std"):
        v = pre[key]
        if v is not None and (not isinstance(v, (list, tuple)) or len(v) != channels
                              or not all(isinstance(x, (int, float)) for x in v)):
            raise ExportError(f"preprocess.{key}: expected {channels} numbers (one per channel) or null, got {v!r}")
        if v is not None:
            pre[key] = [float(x) for x in v]
    if pre["std"] is not None and not all(x > 0 for x in pre["std"]):
        raise ExportError(f"preprocess.std: expected positive numbers, got {pre['std']}")
    if pre["rescale"] is not None and not isinstance(pre["rescale"], (int, float)):
        raise ExportError(f"preprocess.rescale: expected a number or null, got {pre['rescale']!r}")
    w = pre["intensity_window"]
    if w is not None:
        if (not isinstance(w, dict) or set(w) - {"low", "high", "to", "clip"} or "low" not in w or "high" not in w
                or not w["low"] < w["high"]):
            raise ExportError("preprocess.intensity_window: expected {\"low\": L, \"high\": H (> L), \"to\": [a, b], "
                              f"\"clip\": true|false}} or null, got {w!r}")
        pre["intensity_window"] = {"low": float(w["low"]), "high": float(w["high"]),
                                   "to": [float(x) for x in w.get("to", [0.0, 1.0])], "clip": bool(w.get("clip", True))}
    if pre["resize_size"] is not None and not isinstance(pre["resize_size"], int):
        raise ExportError(f"preprocess.resize_size: expected an integer or null, got {pre['resize_size']!r}")
    if pre["interpolation"] is not None and not isinstance(pre["interpolation"], str):
        raise ExportError(f"preprocess.interpolation: expected a string or null, got {pre['interpolation']!r}")
    if pre["steps"] is not None or pre["preset"] is not None:
        taken = [k for k in ("rescale", "mean", "std", "intensity_window") if pre[k] is not None]
        if taken:
            raise ExportError(f"preprocess: steps (or a preset) replace {', '.join(taken)}: leave those null")
    out = {k: pre[k] for k in PREPROCESS_FIELDS}
    for key in ("steps", "preset"):  # absent rather than null, as in files written before they existed
        if out[key] is None:
            del out[key]
    return out


# ---- the description and the file ---------------------------------------------------------------------------

def _package_version(name):
    if name is None:
        return None
    try:
        import importlib.metadata as md
        return md.version(name)
    except Exception:
        return None


def _packages(family):
    packages = {"torch": torch.__version__}
    if FAMILIES[family][2]:
        packages[FAMILIES[family][2]] = _package_version(FAMILIES[family][2])
    return packages


def describe(model, family=None, preprocess=None, arguments=None, source=None):
    """The vit3d model description (a dict, the JSON of the file's "vit3d.model" metadata) of a model.
    source: provenance to record besides the class, its arguments and the package versions."""
    family = family or infer_family(model)
    if family not in FAMILIES:
        raise ExportError(f"unknown family {family!r}; known families: {_known_families()}")
    hints = {}
    if arguments is not None:  # the constructor's own arguments say the input size best
        try:
            hints["input_size"] = FAMILIES[family][4](arguments)
        except (KeyError, TypeError, ValueError):
            pass
    if hints.get("input_size") is None and preprocess and preprocess.get("input_size") is not None:
        hints["input_size"] = preprocess["input_size"]
    kind, key_map, config, pre = FAMILIES[family][3](model, hints)
    pre = merge_preprocess(family, pre, preprocess, config["channels"], kind)
    cls = type(model)
    return {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "family": family, "kind": kind, "key_map": key_map,
        "config": config, "preprocess": pre,
        "source": {"class": f"{cls.__module__}.{cls.__qualname__}", "arguments": arguments, **(source or {}),
                   "packages": _packages(family),
                   "tool": TOOL},
    }


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def tensors_of(model, dtype=None):
    tensors, seen = {}, set()
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            raise ExportError(f"state_dict tensor {name!r} has dtype {t.dtype}; vit3d reads floating-point tensors only")
        t = t.detach().to("cpu")
        if dtype is not None:
            t = t.to(dtype)
        t = t.contiguous()
        if t.data_ptr() in seen:  # safetensors refuses shared storage (tied weights)
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[name] = t
    return tensors


def write_atomically(tensors, metadata, path):
    from safetensors.torch import save_file
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"output {str(path)!r} is a directory")
    directory = path.resolve().parent
    if not directory.is_dir():
        raise ExportError(f"output {str(path)!r}: directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=str(directory), prefix="." + path.name + ".", suffix=".partial")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the output gets the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def export(model, family, path, preprocess=None, *, arguments=None, dtype=None, source=None):
    """Writes `model` (an nn.Module of `family`, or None to infer it from the class) to `path` as a vit3d
    safetensors file; returns the description written. preprocess: overrides of the family's defaults;
    dtype: None (keep) or one of float32, float16, bfloat16, float64 (a name or a torch dtype); source:
    provenance recorded under "source" besides the class, the arguments and the package versions."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ExportError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        dtype = DTYPES[dtype]
    description = describe(model, family, preprocess, arguments, source)
    metadata = {"format": "pt", METADATA_KEY: json.dumps(description, sort_keys=False)}
    write_atomically(tensors_of(model, dtype), metadata, path)
    return description


# ---- command line -------------------------------------------------------------------------------------------

def _load_json(text_or_path, what):
    if text_or_path is None:
        return None
    source = text_or_path
    if not text_or_path.lstrip().startswith(("{", "[")) and Path(text_or_path).is_file():
        source = Path(text_or_path).read_text()
    try:
        return json.loads(source)
    except json.JSONDecodeError as e:
        raise ExportError(f"{what}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def model_from_python(spec):
    if ":" not in spec:
        raise ExportError(f"--python expects module:function, got {spec!r}")
    module_name, function_name = spec.split(":", 1)
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ExportError(f"--python {spec}: cannot import {module_name!r}: {_one_line(e)}") from None
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise ExportError(f"--python {spec}: {module_name} has no function {function_name!r}")
    model = fn()
    if not isinstance(model, nn.Module):
        raise ExportError(f"--python {spec}: expected an nn.Module, got {type(model).__name__}")
    return model.eval()


def _epilog():
    configs = "\n".join(f"  --family {family}: {what}\n    --config '{json.dumps(arguments)}'"
                        for family, (what, arguments) in CONFIG_EXAMPLES.items())
    return f"""\
examples:
  # torchvision by name; the checkpoint from torch.save(model.state_dict(), "vit_b_16.pth")
  export_weights.py --torchvision-model vit_b_16 --state-dict vit_b_16.pth --output vit_b_16.safetensors
  # timm by its registry name; mean, std, crop and interpolation from the model's pretrained_cfg
  export_weights.py --timm-model vit_small_patch16_224 --state-dict vit_s16.pth --output vit_s16.safetensors
  # a timm ViT-B/16 fine-tuned to 10 classes under DataParallel (every key starts with "module.")
  export_weights.py --timm-model vit_base_patch16_224 --timm-args '{{"num_classes": 10}}' \\
      --state-dict ckpt.pth --strip-prefix module. --output vit_b16_ft.safetensors
  # MONAI's 3D ViT from its constructor's arguments
  export_weights.py --family monai --state-dict vit.pth --output vit.safetensors \\
      --config '{json.dumps(CONFIG_EXAMPLES["monai"][1])}'
  # the pipeline tried without a checkpoint
  export_weights.py --timm-model vit_small_patch16_224 --random-weights --output random.safetensors

--config, per family: the keyword arguments of its constructor as a JSON object (or a file holding one).
Each of these builds the model named; change what yours differs in:
{configs}

checkpoints (--state-dict):
  torch.load(weights_only=True) reads them, which runs no code from the file; .safetensors files too.
  A training checkpoint keeping the state_dict under "state_dict", "model" or "model_state_dict" (or
  under its only entry holding tensors) is unwrapped, with a note naming the entry; --checkpoint-key
  names another (state_dict_ema, teacher, ...).
  Keys with a prefix ("module." of DataParallel/DDP, "_orig_mod." of torch.compile, "model." of
  Lightning): when the keys under it are the model's, the error names it; --strip-prefix reads them.
  A whole pickled model (torch.save(model)), or a checkpoint holding other Python objects, is refused,
  saying what it holds: unpickling it would run code the file names. For a file you trust,
  --model-file exports a whole model as it is (no --config needed) and --trust-pickle reads such a
  checkpoint; otherwise save model.state_dict() and give that.

Errors are one line on stderr, exit code 1 (2 for a bad command line); --debug adds the traceback.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line like every other error (the usage is behind --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (--help for the usage)\n")


def parse_args(argv):
    p = _Parser(prog="export_weights.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_epilog())
    model = p.add_argument_group("the model: one of --timm-model, --torchvision-model, --config, --python, "
                                 "--model-file")
    source = model.add_mutually_exclusive_group(required=True)
    source.add_argument("--timm-model", metavar="NAME", help="a timm model by its registry name: "
                        "timm.create_model(NAME, pretrained=False, **TIMM_ARGS); NAME.tag "
                        "(vit_base_patch16_224.augreg2_in21k_ft_in1k) "
                        "takes the preprocessing timm records for those weights")
    source.add_argument("--torchvision-model", metavar="NAME", help="a torchvision model by name: "
                        "torchvision.models.get_model(NAME, weights=None, **TORCHVISION_ARGS)")
    source.add_argument("--config", metavar="JSON", help="the keyword arguments of the --family's constructor: a JSON "
                        "object, or a file holding one (examples below)")
    source.add_argument("--python", metavar="MODULE:FUNCTION", help="a function returning the nn.Module to export")
    source.add_argument("--model-file", metavar="FILE", help="a whole pickled model (torch.save(model)). Unpickling "
                        "runs code the file names: only for files you trust")
    model.add_argument("--family", help=f"one of: {_known_families()} (with --python or --model-file, inferred from "
                       "the model's class)")
    model.add_argument("--timm-args", metavar="JSON", help="keyword arguments for timm.create_model, e.g. "
                       "'{\"num_classes\": 10}' for a fine-tuned checkpoint")
    model.add_argument("--torchvision-args", metavar="JSON", help="keyword arguments for get_model, e.g. "
                       "'{\"image_size\": 384}'")
    weights = p.add_argument_group("the weights")
    weights.add_argument("--state-dict", metavar="FILE", help="the checkpoint: .pth/.pt (torch.save, read with "
                         "weights_only=True) or .safetensors")
    weights.add_argument("--random-weights", action="store_true", help="no checkpoint: export the model's random "
                         "initialisation (seeded, so the same command writes the same file), to try the pipeline")
    weights.add_argument("--checkpoint-key", metavar="KEY", help="the entry of a training checkpoint holding the "
                         "state_dict (default: 'state_dict', 'model' or 'model_state_dict', else the only one); "
                         "without --state-dict, the entry of --model-file holding the model")
    weights.add_argument("--strip-prefix", default="", metavar="PREFIX",
                         help="read the keys that start with PREFIX, without it (module. of DataParallel/DDP, "
                         "_orig_mod. of torch.compile, model. of Lightning); the others are left out, with a note")
    weights.add_argument("--trust-pickle", action="store_true", help="read --state-dict with a full unpickler, for "
                         "checkpoints holding objects besides tensors; it runs code the file names: only for files "
                         "you trust")
    out = p.add_argument_group("the output")
    out.add_argument("--output", required=True, metavar="FILE", help="the .safetensors file to write")
    out.add_argument("--preprocess", metavar="JSON", help="JSON object (or file) overriding the family's preprocessing "
                     "defaults")
    out.add_argument("--dtype", choices=sorted(DTYPES), help="convert the tensors (default: keep their dtype)")
    p.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    args = p.parse_args(argv)
    by_name = {"--timm-model": (args.timm_model, "timm"),
               "--torchvision-model": (args.torchvision_model, "torchvision")}
    for option, (name, family) in by_name.items():
        if name and args.family not in (None, family):
            p.error(f"{option} builds a {family} model; --family {args.family} contradicts it")
        if getattr(args, f"{family}_args") and not name:
            p.error(f"--{family}-args applies to {option}, which is not given")
    if args.config and not args.family:
        p.error("--config needs --family (the family whose constructor takes these arguments)")
    built = next((option for option in ("--config", "--timm-model", "--torchvision-model")
                  if getattr(args, option[2:].replace("-", "_"))), None)
    if args.random_weights and not built:
        p.error("--random-weights applies to --config, --timm-model and --torchvision-model")
    if args.random_weights and args.state_dict:
        p.error("--random-weights and --state-dict exclude each other")
    if built and not (args.state_dict or args.random_weights):
        p.error(f"{built} needs the checkpoint: --state-dict FILE (or --random-weights to export the random "
                "initialisation)")
    if (args.strip_prefix or args.trust_pickle) and not args.state_dict:
        p.error("--strip-prefix and --trust-pickle apply to --state-dict, which is not given")
    if args.checkpoint_key and not (args.state_dict or args.model_file):
        p.error("--checkpoint-key applies to --state-dict (or else --model-file), neither of which is given")
    return args


def build_model(args):
    """(model, family, its arguments or None, provenance) from the command line's model options."""
    if args.python:
        model = model_from_python(args.python)
        return model, args.family or infer_family(model), None, {}
    if args.model_file:
        model = model_from_file(args.model_file, None if args.state_dict else args.checkpoint_key)
        return model, args.family or infer_family(model), None, {}
    if args.timm_model:
        arguments = _load_json(args.timm_args, "--timm-args") or {}
        return timm_model(args.timm_model, arguments), "timm", arguments, {
            "built_by": f"timm.create_model({args.timm_model!r}, pretrained=False, **arguments)"}
    if args.torchvision_model:
        arguments = _load_json(args.torchvision_args, "--torchvision-args") or {}
        return torchvision_model(args.torchvision_model, arguments), "torchvision", arguments, {
            "built_by": f"torchvision.models.get_model({args.torchvision_model!r}, weights=None, **arguments)"}
    arguments = _load_json(args.config, "--config")
    return build_reference(args.family, arguments), args.family, arguments, {}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        preprocess = _load_json(args.preprocess, "--preprocess")
        if preprocess is not None and not isinstance(preprocess, dict):
            raise ExportError("--preprocess: expected a JSON object")
        if args.random_weights:
            torch.manual_seed(0)  # the initialisation draws from torch's generator: the same file every time
        model, family, arguments, source = build_model(args)
        if args.random_weights:
            source["weights"] = "random initialisation (--random-weights, torch.manual_seed(0))"
        if args.state_dict:
            checkpoint = read_state_dict(args.state_dict, trust_pickle=args.trust_pickle,
                                         checkpoint_key=args.checkpoint_key)
            state = select_prefix(checkpoint, args.strip_prefix)
            # The model takes the checkpoint's precision (a float64 state_dict must not pass through float32).
            model = model.to(DTYPES[args.dtype] if args.dtype else common_dtype(state) or torch.float32)
            fit_state_dict(family, model, state, checkpoint_keys=checkpoint, stripped=args.strip_prefix)
        description = export(model, family, args.output, preprocess, arguments=arguments, dtype=args.dtype,
                             source=source)
    except ExportError as e:
        if args.debug:
            raise
        print(f"export_weights.py: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a failure in the user's or a package's code: still one line, unless --debug
        if args.debug:
            raise
        print(f"export_weights.py: error: {_type_name(e)}: {_one_line(e) or '(no message)'} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 1
    if args.random_weights:
        note("--random-weights: the file holds the model's random initialisation, not trained weights")
    c = description["config"]
    print(f"wrote {args.output}: {description['family']} {description['kind']}, input "
          f"[{c['channels']}, {', '.join(map(str, c['input_size']))}], {len(model.state_dict())} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
