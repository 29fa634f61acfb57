#!/usr/bin/env python3
"""The zoo check: every timm Vision Transformer, exported and run by vit3d, compared with timm's own output.

    python3 tools/timm_zoo.py --jobs 2 --json zoo.json
    python3 tools/timm_zoo.py --filter 'deit*' --keep /tmp/zoo

Each name of timm.list_models(module=M), M in vision_transformer, eva and deit, is built with random weights
at depth 2 by export_weights.timm_model (timm.create_model(name, pretrained=False, depth=2), its
pretrained_cfg giving the preprocessing as with --timm-model). An argument with one entry per block
(Sapiens2's num_kv_heads) keeps two, the first and the middle one, when the model does not build otherwise;
a constructor without depth builds the full model, skipped above 1.5 billion parameters. Every floating-point
tensor of the state_dict gets normal noise of scale 0.02 added, so that biases, norm weights, LayerScale
gammas, tokens and position tables are not the 0 or 1 timm initialises them to and a feature vit3d ignores
shows as a mismatch. Torch is seeded per name (CRC-32 of the name); the model is float32, in eval mode.

The model is exported with export_weights.export(model, "timm", ...); a random input [1, C, H, W] of its
input size, saved as .npy, reaches the model through vit3d-infer as stored (no resize, no normalisation).
vit3d-infer's logits (a model with a head), else its pooled feature (timm's forward_head(pre_logits=True);
none for a model that does not pool), and its tokens (forward_features) pass when
max|diff| / max(1, max|timm's|) <= 1e-5 (the float32 tolerance of the parity tests).

It prints PASS name, FAIL name: stage: reason (stage build, export, torch, load, run, compare, timeout, crash,
or zoo for a bug of this script) or SKIP name: reason as each name finishes; then the matches per module and
overall, and the reasons grouped (numbers and the name normalised), most common first. --json FILE writes
the results per name. Each name runs in a forked child in a process group of its own, --jobs at a time with
cores / jobs threads for torch and vit3d-infer; --timeout kills the child and its vit3d-infer.
tools/export_weights.py is imported from this directory at each start. The exit code is 0 whatever the
models gave (a report, not a test); 2 for a bad command line, 1 when the check itself broke.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import fnmatch
import importlib
import inspect
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import timm
import torch

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("vision_transformer", "eva", "deit")
TOLERANCE = 1e-5
NOISE = 0.02
MAX_FULL_DEPTH_PARAMETERS = 1.5e9


class Failure(Exception):
    def __init__(self, stage, reason):
        super().__init__(reason)
        self.stage, self.reason = stage, reason


class Skip(Exception):
    pass


def one_line(text):
    return " ".join(str(text).split()) or "(no message)"


def error_line(e):
    return f"{type(e).__name__}: {one_line(e)}"


def constructor_call(name):
    """(class, keyword arguments) that timm's entrypoint for `name` gives build_model_with_cfg, found without
    building the model; None when the entrypoint builds it some other way."""
    entrypoint = timm.models.model_entrypoint(name)
    module, calls = sys.modules[entrypoint.__module__], []
    builder = getattr(module, "build_model_with_cfg", None)
    if builder is None:
        return None
    module.build_model_with_cfg = lambda *a, **k: calls.append(inspect.signature(builder).bind(*a, **k).arguments)
    try:
        entrypoint(pretrained=False)  # fails once the builder gives None
    except Exception:
        pass
    finally:
        module.build_model_with_cfg = builder
    return (calls[0]["model_cls"], calls[0].get("kwargs", {})) if calls else None


def depth_default(cls):
    """The default of the constructor's depth argument, following **kwargs to the bases; None without one."""
    for c in getattr(cls, "__mro__", ()):
        if "__init__" in vars(c):
            parameters = inspect.signature(c.__init__).parameters
            if "depth" in parameters:
                return parameters["depth"].default
            if all(p.kind is not p.VAR_KEYWORD for p in parameters.values()):
                return None
    return None


def build(name, ew):
    """The model with random weights, the arguments it was built with, and notes on how."""
    cls, kwargs = constructor_call(name) or (None, {})
    depth = kwargs.get("depth", depth_default(cls)) if cls else -1
    if depth is None:
        with torch.device("meta"):
            size = sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
        if size > MAX_FULL_DEPTH_PARAMETERS:
            raise Skip(f"{cls.__name__} takes no depth and has {size / 1e9:.1f} B parameters at full depth")
        return ew.timm_model(name, {}), {}, [f"{cls.__name__} takes no depth: built at full depth"]
    arguments, notes = {"depth": 2}, []
    for attempt in range(2):
        try:
            return ew.timm_model(name, arguments), arguments, notes
        except ew.ExportError as e:  # timm's own error, after the helper's prefix
            error = str(e).partition(" failed: ")[2] or one_line(e)
        per_block = {k: (v[0], v[len(v) // 2]) for k, v in kwargs.items()
                     if k != "depth" and isinstance(v, (list, tuple)) and len(v) == depth != 2}
        if attempt or not per_block:
            raise Failure("build", error)
        arguments.update(per_block)
        notes.append(f"per-block {', '.join(per_block)} cut to entries 0 and {depth // 2} of {depth}")


def vit3d_infer(exe, weights, x_path, kind, threads):
    out = x_path.with_name(f"y_{kind}.npy")
    p = subprocess.run([exe, "-w", str(weights), "-i", str(x_path), "-o", str(out), "-k", kind, "-t", str(threads),
                        "--overwrite", "--json", "-q"], capture_output=True, text=True)
    if p.returncode == 0:
        return np.load(out)
    report = json.loads(p.stdout) if p.stdout.startswith("{") else {}  # exit code 2: "error", 1: the file's
    error = report.get("error") or (report.get("files") or [{}])[0].get("error")
    error = error or (p.stderr.strip().splitlines() or [""])[-1]
    if p.returncode < 0:
        error = f"killed by signal {signal.Signals(-p.returncode).name}"
    error = one_line(error or f"exit code {p.returncode}").replace(str(weights), "model.safetensors")
    raise Failure("load" if p.returncode == 2 else "run", error.replace(str(x_path), "x.npy"))


def check(name, ew, options, directory):
    """The errors of one name's outputs, and how it was built; raises Failure or Skip."""
    torch.manual_seed(zlib.crc32(name.encode()))
    model, arguments, notes = build(name, ew)
    model = model.float().eval()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * NOISE)
    weights, stderr = directory / f"{name}.safetensors", io.StringIO()
    source = {"built_by": f"timm.create_model({name!r}, pretrained=False, **arguments) by tools/timm_zoo.py"}
    try:
        with contextlib.redirect_stderr(stderr):  # the exporter's notes
            config = ew.export(model, "timm", weights, arguments=arguments, source=source)["config"]
    except Exception as e:  # an ExportError's first line, else the exception
        raise Failure("export", one_line(str(e).splitlines()[0]) if isinstance(e, ew.ExportError) else error_line(e))
    x = torch.randn([1, config["channels"], *config["input_size"]])
    np.save(directory / "x.npy", x.numpy())
    has_head = getattr(model, "num_classes", 0) > 0
    try:
        with torch.no_grad():
            tokens = model.forward_features(x)
            head = model.forward_head(tokens, pre_logits=not has_head)
    except Exception as e:
        raise Failure("torch", error_line(e)) from None
    references = {"logits" if has_head else "pooled": head} if head.dim() == 2 else {}  # none if it does not pool
    errors = {}
    for kind, reference in dict(references, tokens=tokens).items():
        ours = vit3d_infer(options.vit3d_infer, weights, directory / "x.npy", kind, options.threads)
        reference = reference.numpy()
        if ours.shape != reference.shape:
            raise Failure("compare", f"{kind} shape {list(ours.shape)}, timm's {list(reference.shape)}")
        errors[kind] = float(np.abs(ours - reference).max() / max(1.0, float(np.abs(reference).max())))
    bad = [f"{kind} by {e:.1e}" for kind, e in errors.items() if not e <= TOLERANCE]
    if bad:
        good = [kind for kind, e in errors.items() if e <= TOLERANCE]
        raise Failure("compare", "differ: " + ", ".join(bad) + (f" ({', '.join(good)} match)" if good else ""))
    return {"errors": errors, "notes": notes + stderr.getvalue().splitlines(), "arguments": arguments}


def child(name, connection, options):
    os.setpgrp()  # its own process group, killed with its vit3d-infer on a timeout
    torch.set_num_threads(options.threads)
    start = time.monotonic()
    directory = Path(options.keep or options.scratch) / name
    directory.mkdir(parents=True, exist_ok=True)
    try:
        result = dict(status="PASS", **check(name, options.export_weights, options, directory))
    except Failure as f:
        result = {"status": "FAIL", "stage": f.stage, "reason": f.reason}
    except Skip as s:
        result = {"status": "SKIP", "stage": "skip", "reason": one_line(s)}
    except Exception as e:
        result = {"status": "FAIL", "stage": "zoo", "reason": error_line(e)}
    finally:
        if not options.keep:
            shutil.rmtree(directory, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - start, 2)
    connection.send(result)


def run_all(names, options):
    """Yields (name, result) as the children finish, --jobs at a time."""
    context = multiprocessing.get_context("fork")
    pending, running = list(names), {}
    try:
        while pending or running:
            while pending and len(running) < options.jobs:
                name = pending.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=child, args=(name, send, options), daemon=True)
                process.start()
                send.close()
                running[receive] = (name, process, time.monotonic())
            ready = multiprocessing.connection.wait(list(running), timeout=1)
            for connection, (name, process, start) in list(running.items()):
                if connection in ready:
                    try:
                        result = connection.recv()
                    except EOFError:
                        process.join()
                        code = process.exitcode
                        why = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
                        result = {"status": "FAIL", "stage": "crash", "reason": f"the check died: {why}"}
                elif time.monotonic() - start > options.timeout:
                    result = {"status": "FAIL", "stage": "timeout", "reason": f"over {options.timeout:g} s"}
                else:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.join()
                del running[connection]
                yield name, result
    finally:
        for _, process, _ in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def outcome(name, r):
    """The line printed for a result."""
    return f"{r['status']} {name}" + {"PASS": "", "SKIP": f": {r.get('reason')}"}.get(
        r["status"], f": {r.get('stage')}: {r.get('reason')}")


def reason_group(name, r):
    text = outcome(name, r).partition(": ")[2].replace(name, "<name>")
    number = r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?!\w)"  # 0 kept: usually a setting (reg_tokens=0)
    return re.sub(number, lambda m: m[0] if m[0] == "0" else "N", text)


def summary(results, modules):
    for module in modules + ["all"]:
        rows = [r for r in results.values() if module in ("all", r["module"])]
        passed = sum(r["status"] == "PASS" for r in rows)
        print(f"{module}: match {passed} of {len(rows)} ({100 * passed / max(1, len(rows)):.1f}%)")
    groups = collections.defaultdict(list)
    for name, r in sorted(results.items()):
        if r["status"] != "PASS":
            groups[reason_group(name, r)].append(name)
    print("reasons, most common first:")
    for reason, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        print(f"  {len(names):4d}  {reason}  (e.g. {', '.join(names[:3])})")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--vit3d-infer", default=str(ROOT / "build" / "bin" / "vit3d-infer"), metavar="PATH")
    p.add_argument("--filter", default="*", metavar="GLOB", help="only the names that match (fnmatch)")
    p.add_argument("--modules", nargs="+", choices=MODULES, default=list(MODULES))
    p.add_argument("--jobs", type=int, default=1, help="names checked at a time (default 1)")
    p.add_argument("--keep", metavar="DIR", help="keep each name's files in DIR/NAME/")
    p.add_argument("--json", metavar="FILE", help="write the per-name results as JSON")
    p.add_argument("--timeout", type=float, default=900, help="seconds per name (default 900)")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.timeout <= 0:
        p.error("--jobs and --timeout must be positive")
    if not os.access(args.vit3d_infer, os.X_OK):
        p.error(f"--vit3d-infer {args.vit3d_infer!r} is not an executable (cmake --build build --target vit3d-infer)")
    args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    return args


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT / "tools"))  # this tree's export_weights, imported afresh by each run
    options.export_weights = importlib.import_module("export_weights")
    os.environ["OMP_NUM_THREADS"] = str(options.threads)
    module_of = {n: m for m in options.modules for n in timm.list_models(module=m)}
    names = sorted(n for n in module_of if fnmatch.fnmatchcase(n, options.filter))
    start, results = time.monotonic(), {}
    with tempfile.TemporaryDirectory(prefix="timm_zoo.") as options.scratch:
        for name, result in run_all(names, options):
            results[name] = dict(name=name, module=module_of[name], **result)
            print(outcome(name, result), flush=True)
    summary(results, options.modules)
    print(f"timm {timm.__version__}, torch {torch.__version__}, {len(names)} names in "
          f"{time.monotonic() - start:.0f} s with --jobs {options.jobs}")
    if options.json:
        Path(options.json).write_text(json.dumps([results[n] for n in sorted(results)], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
