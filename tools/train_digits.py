#!/usr/bin/env python3
"""Train the README demo's digit classifier: a small timm ViT on scikit-learn's handwritten digits.

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv      # Debian's Python, to see python3-sklearn
    /tmp/venv/bin/pip install --no-deps -r tests/fixtures/requirements.txt
    /tmp/venv/bin/python tools/train_digits.py [--out examples/data/digits] [--epochs 150] [--threads 1]

The data are sklearn.datasets.load_digits() as Debian's python3-sklearn ships them (1,797 grey 8x8 images,
pixel values 0..16, the UCI "Optical Recognition of Handwritten Digits" test set; licence in
examples/data/README.md). They are split once, stratified, with a fixed seed (360 test images), and the
model is trained with a fixed seed on the rest (150 epochs of AdamW with a one-cycle schedule; dropout, stochastic
depth and label smoothing against overfitting 1,437 images; rotating and shifting them did worse).

Writes to --out:
  digits_vit.safetensors   the model, exported with tools/export_weights.py (family timm), so that its
                           metadata carries the configuration and the preprocessing (rescale 1/16, then the
                           training set's mean and standard deviation): vit3d::io::load_model reads it
  test_images.npy          uint8 [360, 8, 8], the raw test images (values 0..16)
  test_labels.npy          uint8 [360], their digits
  torch_logits.npy         float32 [360, 10], the logits torch computes for them with the exported weights
  torch_predictions.npy    int64 [360], torch's predicted digits (the argmax of those logits)

The torch outputs are computed from the exported file loaded back into a fresh model, i.e. from exactly the
weights the C++ demo reads. Needs torch, timm (with torchvision, PyYAML and huggingface_hub, which it
imports), safetensors and numpy at the versions pinned in tests/fixtures/requirements.txt, plus Debian's
python3-sklearn; the versions used are printed. Training takes a few minutes on one CPU core; the result is reproducible run to run on one machine (torch's CPU kernels may
round differently elsewhere).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_weights import export  # noqa: E402  (tools/export_weights.py)

SEED = 0
TEST_SIZE = 360
RESCALE = 1.0 / 16.0  # the digits' pixels count on-pixels of a 4x4 block: 0..16
# The constructor arguments of timm's VisionTransformer: 16 patches of 2x2 pixels, 4 blocks of width 64. timm
# rather than vit-pytorch, whose ViT normalises each patch's pixels (a LayerNorm over 4 values), which throws
# away whether a 2x2 patch is ink or paper.
ARGUMENTS = {"img_size": 8, "patch_size": 2, "in_chans": 1, "num_classes": 10, "embed_dim": 64, "depth": 4,
             "num_heads": 4, "mlp_ratio": 2.0, "drop_rate": 0.1, "drop_path_rate": 0.1}
LEARNING_RATE, WEIGHT_DECAY, BATCH, LABEL_SMOOTHING = 3e-3, 0.05, 64, 0.1


def versions() -> dict:
    names = ["torch", "timm", "torchvision", "safetensors", "numpy", "scikit-learn"]
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # Debian's python3-sklearn has no dist-info
            found[name] = __import__("sklearn").__version__ if name == "scikit-learn" else "?"
    return found


def normalise(raw: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, 8, 8] -> float32 [N, 1, 8, 8]: the preprocessing recorded in the exported file."""
    x = raw.to(torch.float32).unsqueeze(1) * torch.tensor(RESCALE, dtype=torch.float32)
    return (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)


def train(model, x_train, y_train, epochs, generator):
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps = epochs * math.ceil(len(x_train) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total, correct = 0.0, 0
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=LABEL_SMOOTHING)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        if (epoch + 1) % 25 == 0 or epoch == 0:
            print(f"epoch {epoch + 1:4d}  loss {total / len(x_train):.4f}  train accuracy "
                  f"{correct / len(x_train):.4f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "examples" / "data" / "digits"))
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (the committed files were made with 1)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    print("versions:", json.dumps(versions()))

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # float64 0..16, integral: exact
    if not np.array_equal(images, digits.images):
        raise SystemExit("train_digits.py: load_digits() returned non-integer pixels")
    labels = digits.target.astype(np.uint8)
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels)

    raw_train = torch.from_numpy(train_images)
    scaled = raw_train.to(torch.float32) * RESCALE
    # Rounded to 4 digits so that the file's JSON and the C++ side hold the same float32 numbers.
    mean, std = round(float(scaled.mean()), 4), round(float(scaled.std()), 4)
    x_train = normalise(raw_train, mean, std)
    y_train = torch.from_numpy(train_labels.astype(np.int64))

    generator = torch.Generator().manual_seed(SEED)
    model = VisionTransformer(**ARGUMENTS)
    print(f"model: timm VisionTransformer({', '.join(f'{k}={v}' for k, v in ARGUMENTS.items())}), "
          f"{sum(t.numel() for t in model.parameters())} parameters; {len(x_train)} training images")
    train(model, x_train, y_train, args.epochs, generator)

    weights = out / "digits_vit.safetensors"
    preprocess = {"channel_order": "L", "rescale": RESCALE, "mean": [mean], "std": [std], "resize_size": None,
                  "interpolation": None}
    export(model.eval(), "timm", str(weights), preprocess=preprocess, arguments=ARGUMENTS)

    # torch's answers from the exported file itself, in a fresh model.
    reference = VisionTransformer(**ARGUMENTS)
    reference.load_state_dict(load_file(str(weights)), strict=True)
    reference.eval()
    with torch.no_grad():
        logits = reference(normalise(torch.from_numpy(test_images), mean, std))
    predictions = logits.argmax(1)
    accuracy = float((predictions.numpy() == test_labels).mean())

    np.save(out / "test_images.npy", test_images)
    np.save(out / "test_labels.npy", test_labels)
    np.save(out / "torch_logits.npy", logits.numpy().astype(np.float32))
    np.save(out / "torch_predictions.npy", predictions.numpy().astype(np.int64))
    print(f"test accuracy {accuracy:.4f} ({int((predictions.numpy() == test_labels).sum())}/{len(test_labels)}); "
          f"preprocess mean {mean}, std {std}; wrote {weights} ({weights.stat().st_size} bytes) and the test "
          f"split and torch's outputs to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
