#!/usr/bin/env python3
"""Tests of tools/export_weights.py: its errors (one line, non-zero exit) and what it writes. CI has no
Python, so these run by hand or from tests/fixtures/make_roundtrip_fixtures.py:

    VENV/bin/python tests/tools/test_export_weights.py        (VENV from tests/fixtures/make_venv.sh)

Needs the reference packages of tests/fixtures/requirements.txt (torch, safetensors, torchvision, timm,
vit-pytorch, monai): the --config example of every family is built with its own package.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPORTER = ROOT / "tools" / "export_weights.py"
sys.path.insert(0, str(ROOT / "tools"))
import export_weights  # noqa: E402

TV = dict(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)


class ConfigExamples(unittest.TestCase):
    """The --config example of every family, as --help shows it, builds that family's model and exports."""

    def test_every_family_has_an_example_in_the_help(self):
        self.assertEqual(set(export_weights.CONFIG_EXAMPLES), set(export_weights.FAMILIES))
        result = subprocess.run([sys.executable, str(EXPORTER), "--help"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        for family, (_what, arguments) in export_weights.CONFIG_EXAMPLES.items():
            self.assertIn(f"--family {family}: ", result.stdout)
            self.assertIn(f"--config '{json.dumps(arguments)}'", result.stdout)

    def test_every_example_builds_and_exports(self):
        import contextlib
        import io
        from safetensors.torch import load_file
        with tempfile.TemporaryDirectory() as tmp:
            for family, (_what, arguments) in export_weights.CONFIG_EXAMPLES.items():
                with self.subTest(family=family):
                    output = pathlib.Path(tmp) / f"{family}.safetensors"
                    stdout, stderr = io.StringIO(), io.StringIO()
                    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                        code = export_weights.main(["--family", family, "--config", json.dumps(arguments),
                                                    "--random-weights", "--output", str(output)])
                    self.assertEqual(code, 0, stderr.getvalue())
                    self.assertIn(f"wrote {output}: {family} ", stdout.getvalue())
                    model = export_weights.build_reference(family, json.loads(json.dumps(arguments)))
                    model.load_state_dict(load_file(str(output)), strict=True)
                    output.unlink()


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tmp = pathlib.Path(self.dir.name)
        from torchvision.models.vision_transformer import VisionTransformer
        self.model = VisionTransformer(**TV).eval()
        self.state = self.tmp / "tv.pth"
        torch.save(self.model.state_dict(), self.state)
        self.output = self.tmp / "out.safetensors"

    def tearDown(self):
        self.dir.cleanup()

    def run_exporter(self, *args, config=None, family="torchvision", state=None):
        command = [sys.executable, str(EXPORTER), "--output", str(self.output)]
        if family:
            command += ["--family", family]
        if config is not None:
            command += ["--config", json.dumps(config), "--state-dict", str(state or self.state)]
        return subprocess.run(command + list(args), capture_output=True, text=True, cwd=str(self.tmp))

    def assert_error(self, result, *fragments):
        self.assertNotEqual(result.returncode, 0, result.stdout)
        lines = [line for line in result.stderr.strip().splitlines()
                 if not line.startswith("export_weights.py: note: ")]
        self.assertEqual(len(lines), 1, result.stderr)  # one clear line (after any notes), no traceback
        self.assertTrue(lines[0].startswith("export_weights.py: error: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        self.assertFalse(self.output.exists())
        self.assertEqual([p.name for p in self.tmp.glob("*.partial")], [])

    def test_writes_a_file_that_is_still_the_reference_checkpoint(self):
        result = self.run_exporter(config=TV)
        self.assertEqual(result.returncode, 0, result.stderr)
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(str(self.output), "pt") as f:
            meta = f.metadata()
        description = json.loads(meta["vit3d.model"])
        self.assertEqual(meta["format"], "pt")
        self.assertEqual((description["schema"], description["version"]), ("vit3d.model", 1))
        self.assertEqual((description["family"], description["kind"], description["key_map"]),
                         ("torchvision", "vit2d", "torchvision"))
        self.assertEqual(set(description["config"]), set(export_weights.CONFIG_DEFAULTS))
        self.assertEqual(description["config"]["input_size"], [32, 32])
        self.assertEqual(description["preprocess"]["mean"], [0.485, 0.456, 0.406])
        self.assertEqual(description["source"]["arguments"], TV)
        from torchvision.models.vision_transformer import VisionTransformer
        VisionTransformer(**TV).load_state_dict(load_file(str(self.output)), strict=True)
        self.assertEqual([p.name for p in self.tmp.glob("*.partial")], [])
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(self.output.stat().st_mode & 0o777, 0o666 & ~umask)  # not the temporary file's 0600

    def test_unknown_family(self):
        self.assert_error(self.run_exporter(config=TV, family="torchvisoin"), "unknown family 'torchvisoin'",
                          "known families: torchvision, timm")

    def test_missing_argument_is_named(self):
        config = dict(TV)
        del config["mlp_dim"]
        self.assert_error(self.run_exporter(config=config), "needs the argument 'mlp_dim'")

    def test_extra_argument_is_named(self):
        self.assert_error(self.run_exporter(config=dict(TV, num_class=5)), "has no argument 'num_class'",
                          "num_classes")

    def test_constructor_rejection_is_one_line(self):
        self.assert_error(self.run_exporter(config=dict(TV, image_size=30)), "VisionTransformer(**arguments) failed")

    def test_state_dict_mismatch_names_the_key(self):
        self.assert_error(self.run_exporter(config=dict(TV, num_classes=4)), "'heads.head.weight' has shape [5, 16]",
                          "expects [4, 16]")
        state = self.model.state_dict()
        del state["encoder.ln.bias"]
        state["extra.weight"] = torch.zeros(1)
        torch.save(state, self.tmp / "broken.pth")
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "broken.pth"),
                          "missing key 'encoder.ln.bias'", "unexpected key 'extra.weight'")

    def test_unsupported_option_lists_what_is_supported(self):
        import timm.models.vision_transformer as tvit
        args = dict(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=3)
        for extra, fragment in ((dict(global_pool="prr"), "global_pool='prr'"),
                                (dict(dynamic_img_pad=True), "dynamic_img_pad=True"),
                                (dict(attn_layer="diff"), "DiffAttention")):
            model = tvit.VisionTransformer(**args, **extra)
            torch.save(model.state_dict(), self.tmp / "timm.pth")
            result = self.run_exporter(config=dict(args, **extra), family="timm", state=self.tmp / "timm.pth")
            self.assert_error(result, fragment, "supported:")

    def test_eva_grouped_query_attention_and_attention_only_layer_scale(self):
        from timm.models.eva import Eva
        import json as json_module
        from safetensors import safe_open
        args = dict(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=4, num_classes=3, attn_type="rope",
                    qkv_fused=False, num_kv_heads=(4, 2), init_values=0.1, attn_only_layer_scale=True)
        export_weights.export(Eva(**args).eval(), "timm", str(self.output))
        with safe_open(str(self.output), "np") as f:
            config = json_module.loads(f.metadata()["vit3d.model"])["config"]
        self.assertEqual((config["block_kv_heads"], config["layer_scale"], config["mlp_layer_scale"]),
                         ([4, 2], True, False))

    def test_unsupported_eva_block_lists_what_is_supported(self):
        from timm.models.eva import Eva
        model = Eva(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=3).eval()
        model.blocks[0].attn = torch.nn.Identity()
        with self.assertRaises(export_weights.Unsupported) as caught:
            export_weights.export(model, "timm", str(self.output))
        self.assertIn("block 0's attention of type Identity", str(caught.exception))
        self.assertIn("supported: EvaAttention or AttentionRope", str(caught.exception))
        self.assertFalse(self.output.exists())

    def test_blocks_that_differ_are_refused_naming_the_difference(self):
        import timm.models.vision_transformer as tvit
        model = tvit.VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2,
                                       num_classes=3).eval()
        model.blocks[1].mlp.act = torch.nn.SiLU()  # no key shows it: it would be silent
        with self.assertRaises(export_weights.Unsupported) as caught:
            export_weights.export(model, "timm", str(self.output))
        self.assertIn("block 1's activation 'silu', where block 0 has 'gelu'", str(caught.exception))
        self.assertFalse(self.output.exists())

    def test_bad_preprocess_is_named(self):
        self.assert_error(self.run_exporter("--preprocess", '{"mean": [0.5, 0.5]}', config=TV), "preprocess.mean",
                          "3 numbers")
        self.assert_error(self.run_exporter("--preprocess", '{"colour": "RGB"}', config=TV), "unknown field 'colour'")
        self.assert_error(self.run_exporter("--preprocess", '{"layout": "BCDHW"}', config=TV), "preprocess.layout")

    def test_monai_compose_becomes_the_steps(self):
        import monai.transforms as mt
        from monai.networks.nets import ViT
        model = ViT(in_channels=1, img_size=(16, 16, 16), patch_size=(8, 8, 8), hidden_size=32, mlp_dim=64,
                    num_layers=1, num_heads=2)
        compose = mt.Compose([
            mt.LoadImaged(keys="image"), mt.EnsureChannelFirstd(keys="image"),
            mt.Orientationd(keys="image", axcodes="RAS"),
            mt.Spacingd(keys=["image", "label"], pixdim=(1.5, 1.5, 3), mode=("bilinear", "nearest")),
            mt.ScaleIntensityRanged(keys="image", a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
            mt.NormalizeIntensityd(keys="image", nonzero=True),
            mt.CropForegroundd(keys="image", source_key="image", margin=2),
            mt.ResizeWithPadOrCropd(keys="image", spatial_size=[16, 16, 16], value=-1)])
        d = export_weights.export(model, "monai", str(self.output), preprocess={"input_size": [16, 16, 16], "steps": compose})
        self.assertEqual([s["name"] for s in d["preprocess"]["steps"]],
                         ["Orientation", "Spacing", "ScaleIntensityRange", "NormalizeIntensity", "CropForeground",
                          "ResizeWithPadOrCrop"])
        self.assertEqual(d["preprocess"]["steps"][1], {"name": "Spacing", "pixdim": [1.5, 1.5, 3.0], "mode": "bilinear",
                                                       "padding_mode": "border", "diagonal": False, "min_pixdim": [],
                                                       "max_pixdim": []})
        self.assertEqual(d["preprocess"]["steps"][0], {"name": "Orientation", "axcodes": "RAS",
                                                       "as_closest_canonical": False})
        self.assertEqual(d["preprocess"]["steps"][2], {"name": "ScaleIntensityRange", "a_min": -1000.0,
                                                       "a_max": 1000.0, "b_min": 0.0, "b_max": 1.0, "clip": True})
        self.assertEqual(d["preprocess"]["steps"][4]["margin"], [2])
        self.assertEqual(d["preprocess"]["steps"][5], {"name": "ResizeWithPadOrCrop", "spatial_size": [16, 16, 16],
                                                       "method": "symmetric", "value": -1.0})
        with self.assertRaises(export_weights.ExportError) as caught:
            export_weights.export(model, "monai", str(self.output),
                                  preprocess={"input_size": [16, 16, 16], "steps": mt.Compose([mt.RandFlip(prob=0.5)])})
        self.assertIn("MONAI's RandFlip has no vit3d step", str(caught.exception))
        with self.assertRaises(export_weights.ExportError) as caught:
            export_weights.export(model, "monai", str(self.output),
                                  preprocess={"input_size": [16, 16, 16], "steps": [{"name": "Orientation"}], "rescale": 0.5})
        self.assertIn("steps (or a preset) replace rescale", str(caught.exception))
        with self.assertRaises(export_weights.ExportError) as caught:
            export_weights.export(model, "monai", str(self.output),
                                  preprocess={"input_size": [16, 16, 16], "steps": [{"name": "Orientation"}], "preset": "merlin"})
        self.assertIn("steps or a preset, not both", str(caught.exception))

    def test_steps_are_refused_for_an_image_model(self):
        self.assert_error(self.run_exporter("--preprocess", '{"steps": [{"name": "Orientation"}]}', config=TV),
                          "describe volumes")

    def test_an_existing_output_is_untouched_on_error(self):
        self.output.write_bytes(b"keep me")
        result = self.run_exporter(config=dict(TV, num_classes=4))
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.output.read_bytes(), b"keep me")
        self.assertEqual([p.name for p in self.tmp.glob("*.partial")], [])

    def test_python_function_with_the_family_inferred(self):
        module = self.tmp / "my_models.py"
        module.write_text("import timm.models.vision_transformer as t\n"
                          "def build():\n"
                          "    return t.VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1,\n"
                          "                               num_heads=2, num_classes=3)\n")
        result = subprocess.run([sys.executable, str(EXPORTER), "--python", "my_models:build", "--output",
                                 str(self.output)], capture_output=True, text=True, cwd=str(self.tmp))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("timm vit2d", result.stdout)

    def test_python_model_without_a_recorded_size_asks_for_it(self):
        from vit_pytorch import ViT
        model = ViT(image_size=32, patch_size=8, num_classes=2, dim=16, depth=1, heads=2, mlp_dim=16)
        with self.assertRaises(export_weights.ExportError) as caught:
            export_weights.export(model, None, str(self.output))
        self.assertIn("does not record its image size", str(caught.exception))
        description = export_weights.export(model, None, str(self.output), preprocess={"input_size": [32, 32]})
        self.assertEqual(description["family"], "vit_pytorch")
        self.assertEqual(description["config"]["input_size"], [32, 32])

    def test_unknown_class_cannot_be_inferred(self):
        with self.assertRaises(export_weights.ExportError) as caught:
            export_weights.export(torch.nn.Linear(2, 2), None, str(self.output))
        self.assertIn("cannot tell the family of a torch.nn.modules.linear.Linear", str(caught.exception))

    def exported_tensors(self):
        from safetensors.torch import load_file
        return load_file(str(self.output))

    def assert_tensors_equal(self, actual, expected):
        self.assertEqual(sorted(actual), sorted(expected))
        for name in expected:
            self.assertTrue(torch.equal(actual[name], expected[name]), name)

    def test_whole_model_pickle_is_refused_saying_what_it_is(self):
        torch.save(self.model, self.tmp / "whole.pth")
        result = self.run_exporter(config=TV, state=self.tmp / "whole.pth")
        self.assert_error(result, "holds a whole pickled model (torch.save(model), class "
                          "torchvision.models.vision_transformer.VisionTransformer)", "model.state_dict()",
                          "--model-file")
        self.assertLess(len(result.stderr), 400)

    def test_model_file_exports_a_whole_pickled_model(self):
        torch.save(self.model, self.tmp / "whole.pth")
        result = self.run_exporter("--model-file", str(self.tmp / "whole.pth"), family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("torchvision vit2d", result.stdout)
        self.assert_tensors_equal(self.exported_tensors(), self.model.state_dict())
        torch.save({"model": self.model, "epoch": 7}, self.tmp / "wrapped.pth")
        result = self.run_exporter("--model-file", str(self.tmp / "wrapped.pth"), family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("using the model under its 'model' entry", result.stderr)

    def test_model_file_whose_class_cannot_be_imported(self):
        (self.tmp / "my_vits.py").write_text("import torch\nclass Tiny(torch.nn.Linear):\n    pass\n")
        subprocess.run([sys.executable, "-c", "import torch, my_vits; torch.save(my_vits.Tiny(2, 2), 'tiny.pth')"],
                       cwd=str(self.tmp), check=True)
        (self.tmp / "my_vits.py").unlink()
        self.assert_error(self.run_exporter("--model-file", str(self.tmp / "tiny.pth"), family=None),
                          "cannot unpickle it: ModuleNotFoundError", "my_vits", "must be importable")

    def test_model_file_holding_a_state_dict_points_to_state_dict(self):
        self.assert_error(self.run_exporter("--model-file", str(self.state), family=None),
                          "holds a state_dict, not a model: give it as --state-dict")

    def test_checkpoint_with_other_objects_needs_trust_pickle(self):
        import argparse
        torch.save({"state_dict": self.model.state_dict(), "args": argparse.Namespace(lr=0.1)}, self.tmp / "ckpt.pth")
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "ckpt.pth"), "holds argparse.Namespace",
                          "does not unpickle", "--trust-pickle")
        result = self.run_exporter("--trust-pickle", config=TV, state=self.tmp / "ckpt.pth")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_tensors_equal(self.exported_tensors(), self.model.state_dict())

    def test_torchscript_archive_is_refused_saying_what_it_is(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notices
            torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(self.tmp / "scripted.pt"))
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "scripted.pt"),
                          "is a TorchScript archive (torch.jit.save), not a state_dict")

    def test_training_checkpoint_is_unwrapped_with_a_note(self):
        ema = {k: v + 1 for k, v in self.model.state_dict().items()}
        torch.save({"state_dict": self.model.state_dict(), "state_dict_ema": ema, "epoch": 3}, self.tmp / "ckpt.pth")
        result = self.run_exporter(config=TV, state=self.tmp / "ckpt.pth")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("using the state_dict under its 'state_dict' entry ('state_dict_ema' holds one too: "
                      "--checkpoint-key", result.stderr)
        self.assert_tensors_equal(self.exported_tensors(), self.model.state_dict())
        result = self.run_exporter("--checkpoint-key", "state_dict_ema", config=TV, state=self.tmp / "ckpt.pth")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_tensors_equal(self.exported_tensors(), ema)

    def test_checkpoint_of_several_state_dicts_asks_which(self):
        state = self.model.state_dict()
        torch.save({"teacher": state, "student": state}, self.tmp / "dino.pth")
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "dino.pth"),
                          "entries 'teacher', 'student' each hold a state_dict", "--checkpoint-key")
        self.assert_error(self.run_exporter("--checkpoint-key", "teachr", config=TV, state=self.tmp / "dino.pth"),
                          "--checkpoint-key 'teachr'", "no such entry", "'teacher', 'student'")

    def test_prefixed_keys_name_the_prefix_to_strip(self):
        state = self.model.state_dict()
        torch.save({"module." + k: v for k, v in state.items()}, self.tmp / "ddp.pth")
        result = self.run_exporter(config=TV, state=self.tmp / "ddp.pth")
        self.assert_error(result, 'every key starts with "module." (a DataParallel/DDP checkpoint): add --strip-prefix '
                          "module.")
        self.assertNotIn("missing key", result.stderr)
        result = self.run_exporter("--strip-prefix", "module.", config=TV, state=self.tmp / "ddp.pth")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_tensors_equal(self.exported_tensors(), state)
        self.output.unlink()
        torch.save({"module._orig_mod." + k: v for k, v in state.items()}, self.tmp / "compiled.pth")
        self.assert_error(self.run_exporter("--strip-prefix", "module.", config=TV, state=self.tmp / "compiled.pth"),
                          "use --strip-prefix module._orig_mod. instead of module.")

    def test_prefix_of_nearly_every_key_reads_the_sub_module(self):
        state = self.model.state_dict()
        lightning = {"model." + k: v for k, v in state.items()}
        lightning["criterion.weight"] = torch.ones(5)
        torch.save({"state_dict": lightning, "epoch": 4}, self.tmp / "lightning.ckpt")
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "lightning.ckpt"),
                          '20 of the 21 keys start with "model."',
                          "the other one, 'criterion.weight', would be left out",
                          "add --strip-prefix model.")
        result = self.run_exporter("--strip-prefix", "model.", config=TV, state=self.tmp / "lightning.ckpt")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("left out the 1 key without it ('criterion.weight')", result.stderr)
        self.assert_tensors_equal(self.exported_tensors(), state)

    def test_two_prefixes_that_fit_are_both_named(self):
        state = self.model.state_dict()
        torch.save({**{"model." + k: v for k, v in state.items()}, **{"model_ema." + k: v for k, v in state.items()}},
                   self.tmp / "ema.pth")
        self.assert_error(self.run_exporter(config=TV, state=self.tmp / "ema.pth"),
                          "the keys under 'model.' and under 'model_ema.' each match", "--strip-prefix")
        self.assert_error(self.run_exporter("--strip-prefix", "encoder.", config=TV, state=self.tmp / "ema.pth"),
                          "--strip-prefix 'encoder.': no key of the state_dict starts with it")

    def description(self):
        from safetensors import safe_open
        with safe_open(str(self.output), "pt") as f:
            return json.loads(f.metadata()["vit3d.model"])

    def test_timm_model_by_name_takes_its_pretrained_cfg(self):
        import timm
        model = timm.create_model("deit_tiny_patch16_224", pretrained=False, num_classes=7)
        torch.save(model.state_dict(), self.tmp / "deit.pth")
        result = self.run_exporter("--timm-model", "deit_tiny_patch16_224", "--timm-args", '{"num_classes": 7}',
                                   "--state-dict", str(self.tmp / "deit.pth"), family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        self.assert_tensors_equal(self.exported_tensors(), model.state_dict())
        description = self.description()
        self.assertEqual((description["family"], description["config"]["num_classes"]), ("timm", 7))
        # deit's pretrained_cfg has ImageNet's mean and std, where timm's ViT default is 0.5
        pre = description["preprocess"]
        self.assertEqual((pre["mean"], pre["std"]), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        self.assertEqual((pre["resize_size"], pre["interpolation"]), (248, "bicubic"))  # crop_pct 0.9
        self.assertEqual(description["source"]["built_by"],
                         "timm.create_model('deit_tiny_patch16_224', pretrained=False, **arguments)")

    def test_timm_squash_crop_resizes_straight_to_the_input(self):
        overlay = {"depth": 1, "pretrained_cfg_overlay": {"crop_mode": "squash", "crop_pct": 1.0}}
        result = self.run_exporter("--timm-model", "vit_tiny_patch16_224", "--timm-args", json.dumps(overlay),
                                   "--random-weights", family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIsNone(self.description()["preprocess"]["resize_size"])
        overlay["pretrained_cfg_overlay"]["crop_pct"] = 0.95
        result = self.run_exporter("--timm-model", "vit_tiny_patch16_224", "--timm-args", json.dumps(overlay),
                                   "--random-weights", family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("crop_mode='squash' with crop_pct=0.95, which vit3d's preprocessing cannot express",
                      result.stderr)
        self.assertEqual(self.description()["preprocess"]["resize_size"], 235)

    def test_unknown_timm_model_lists_close_matches(self):
        self.assert_error(self.run_exporter("--timm-model", "vit_smal_patch16_224", "--random-weights", family=None),
                          "--timm-model 'vit_smal_patch16_224': timm", "has no such model",
                          "close matches: vit_small_patch16_224,")
        self.assert_error(self.run_exporter("--timm-model", "vit_tiny_patch16_224.in1k", "--random-weights",
                                            family=None), "no pretrained tag 'in1k'", "augreg_in21k")

    def test_timm_model_vit3d_cannot_reproduce_is_refused(self):
        self.assert_error(self.run_exporter("--timm-model", "vit_small_patch16_18x2_224", "--random-weights",
                                            "--timm-args", '{"depth": 1}', family=None),
                          "block 0 of type ParallelThingsBlock is not something vit3d can reproduce",
                          "supported: timm's Block or ResPostBlock")

    def test_model_by_name_needs_a_checkpoint_or_random_weights(self):
        self.assert_error(self.run_exporter("--timm-model", "vit_tiny_patch16_224", family=None),
                          "--timm-model needs the checkpoint: --state-dict FILE (or --random-weights")
        self.assert_error(self.run_exporter("--timm-model", "vit_tiny_patch16_224", "--random-weights",
                                            "--timm-args", '{"pretrained": true}', family=None),
                          "'pretrained' is set by the exporter")

    def test_random_weights_are_named_and_reproducible(self):
        command = ("--timm-model", "vit_tiny_patch16_224", "--timm-args", '{"depth": 1}', "--random-weights")
        result = self.run_exporter(*command, family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("note: --random-weights: the file holds the model's random initialisation", result.stderr)
        self.assertIn("random initialisation", self.description()["source"]["weights"])
        first = self.exported_tensors()
        self.assertEqual(self.run_exporter(*command, family=None).returncode, 0)
        self.assert_tensors_equal(self.exported_tensors(), first)

    def test_torchvision_model_by_name(self):
        import torchvision
        model = torchvision.models.get_model("vit_b_16", weights=None)
        torch.save(model.state_dict(), self.tmp / "vit_b_16.pth")
        result = self.run_exporter("--torchvision-model", "vit_b_16", "--state-dict", str(self.tmp / "vit_b_16.pth"),
                                   family=None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("torchvision vit2d, input [3, 224, 224]", result.stdout)
        self.assert_tensors_equal(self.exported_tensors(), model.state_dict())
        self.assertEqual(self.description()["preprocess"]["resize_size"], 256)
        self.output.unlink()
        self.assert_error(self.run_exporter("--torchvision-model", "vit_b16", "--random-weights", family=None),
                          "--torchvision-model 'vit_b16'", "close matches: vit_b_16")

    def test_usage_error_is_one_line(self):
        self.assert_error(self.run_exporter("--state-dict", str(self.state)), "--help for the usage")

    def test_failure_in_user_code_is_one_line_and_debug_shows_the_traceback(self):
        (self.tmp / "broken_models.py").write_text("def build():\n    raise ValueError('no such layer: blk9')\n")
        command = [sys.executable, str(EXPORTER), "--python", "broken_models:build", "--output", str(self.output)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=str(self.tmp))
        self.assert_error(result, "ValueError: no such layer: blk9", "--debug")
        result = subprocess.run(command + ["--debug"], capture_output=True, text=True, cwd=str(self.tmp))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Traceback (most recent call last)", result.stderr)
        self.assertIn("ValueError: no such layer: blk9", result.stderr)

    def test_dtype_conversion(self):
        result = self.run_exporter("--dtype", "float16", config=TV)
        self.assertEqual(result.returncode, 0, result.stderr)
        from safetensors.torch import load_file
        self.assertEqual({t.dtype for t in load_file(str(self.output)).values()}, {torch.float16})


if __name__ == "__main__":
    unittest.main(verbosity=1)
