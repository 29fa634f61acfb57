// vit3d-infer as a user runs it: each input kind, each output kind, many inputs, resume, shards, atomicity,
// --json, and every kind of bad input, each with its message and exit code. The models are the tiny
// round-trip fixtures; the inputs are written here. cli_numbers.cpp checks the outputs against an
// in-process forward pass.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "support/fixtures.hpp"
#include "vit3d/formats/image.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/model_input.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/transform_json.hpp"
#include "vit3d/transforms/preprocess.hpp"
#include "vit3d/transforms/resample.hpp"

namespace {

using namespace vit3d_cli_test;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;

const std::string timm = model("timm_vit_token_f32");        // 2D, RGB, 32x32, head, class token
const std::string monai = model("monai_vit_f32");            // 3D, BCHWD [16, 16, 8], window -1000..1000
const std::string vitpt3d = model("vit_pytorch_vit3d_f32");  // 3D, BCDHW [8, 16, 16]
const std::string reg2rg = model("reg2rg_vit3d_f32");        // 3D, BCHWD, no head, no pooling

Tensor<float> read(const std::string& p) { return io::read_npy<float>(p); }

void expect_equal(const Tensor<float>& a, const Tensor<float>& b) {
    ASSERT_EQ(a.shape(), b.shape());
    for (Index i = 0; i < a.size(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << "element " << i;
}

// A volume whose voxel (i, j, k) holds 10000 k + 100 j + i: any axis mix-up shows in the values.
io::Volume<float> index_volume(Index nz, Index ny, Index nx) {
    io::Volume<float> v;
    v.data = Tensor<float>({nz, ny, nx});
    for (Index k = 0; k < nz; ++k)
        for (Index j = 0; j < ny; ++j)
            for (Index i = 0; i < nx; ++i)
                v.data(k, j, i) = static_cast<float>(10000 * k + 100 * j + i) / 1e4f;
    return v;
}

class Cli : public CliTest {};

// --- inputs -----------------------------------------------------------------------------------------------

TEST_F(Cli, NpyFloat32OneSampleGivesOneRowOfLogits) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({3, 32, 32}, 1));
    const Result r = infer({"--weights", timm, "--input", path("x.npy"), "--output", path("y.npy")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read(path("y.npy")).shape(), (vit3d::Shape{1, 5}));
    EXPECT_THAT(r.out, HasSubstr("timm vit2d"));
}

// Each accepted element type gives what the same values as float32 give.
TEST_F(Cli, NpyFloat64Uint8Int16AreTheirValuesAsFloat32) {
    Tensor<std::uint8_t> u8({3, 32, 32});
    Tensor<std::int16_t> i16({3, 32, 32});
    Tensor<double> f64 = Tensor<double>::randn({3, 32, 32}, 2);
    for (Index i = 0; i < u8.size(); ++i) {
        u8.data()[i] = static_cast<std::uint8_t>((i * 37) % 256);
        i16.data()[i] = static_cast<std::int16_t>((i * 91) % 2001 - 1000);
    }
    const auto as_float = [](const auto& t) {
        Tensor<float> f(t.shape());
        for (Index i = 0; i < t.size(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
        return f;
    };
    io::write_npy(path("u8.npy"), u8);
    io::write_npy(path("i16.npy"), i16);
    io::write_npy(path("f64.npy"), f64);
    io::write_npy(path("u8f.npy"), as_float(u8));
    io::write_npy(path("i16f.npy"), as_float(i16));
    io::write_npy(path("f64f.npy"), as_float(f64));
    const Result r = infer({"-w", timm, "-i", dir_.string(), "-o", path("out"), "-k", "pooled"});
    ASSERT_EQ(r.code, 0) << r.err;
    for (const char* name : {"u8", "i16", "f64"})
        expect_equal(read(path("out/" + std::string(name) + ".npy")),
                     read(path("out/" + std::string(name) + "f.npy")));
}

TEST_F(Cli, NpyBatchGivesOneRowPerSample) {
    const Tensor<float> batch = Tensor<float>::randn({3, 3, 32, 32}, 3);
    io::write_npy(path("batch.npy"), batch);
    for (Index b = 0; b < 3; ++b)
        io::write_npy(path("one" + std::to_string(b) + ".npy"), batch.narrow(0, b, 1).squeeze(0));
    ASSERT_EQ(infer({"-w", timm, "-i", path("batch.npy"), "-o", path("batch_out.npy")}).code, 0);
    const Tensor<float> all = read(path("batch_out.npy"));
    ASSERT_EQ(all.shape(), (vit3d::Shape{3, 5}));
    for (Index b = 0; b < 3; ++b) {
        const std::string name = "one" + std::to_string(b);
        ASSERT_EQ(infer({"-w", timm, "-i", path(name + ".npy"), "-o", path(name + "_out.npy")}).code, 0);
        expect_equal(read(path(name + "_out.npy")), all.narrow(0, b, 1));
    }
}

// Several files per forward pass give what one file per pass gives.
TEST_F(Cli, BatchSizeDoesNotChangeTheNumbers) {
    fs::create_directories(path("in"));
    for (int i = 0; i < 5; ++i)
        io::write_npy(path("in/" + std::to_string(i) + ".npy"), Tensor<float>::randn({3, 32, 32}, 10 + i));
    const Result one = infer({"-w", timm, "-i", path("in"), "-o", path("b1"), "-b", "1"});
    const Result three = infer({"-w", timm, "-i", path("in"), "-o", path("b3"), "-b", "3"});
    ASSERT_EQ(one.code, 0) << one.err;
    ASSERT_EQ(three.code, 0) << three.err;
    for (int i = 0; i < 5; ++i)
        expect_equal(read(path("b1/" + std::to_string(i) + ".npy")),
                     read(path("b3/" + std::to_string(i) + ".npy")));
}

// A PNG at the model's size: (v / 255 - mean) / std per channel, as timm's transform gives (no resize, the
// crop of resize_size 35 turned off with --resize-size 0).
TEST_F(Cli, PngIsRescaledAndNormalisedAsTheWeightsFileSays) {
    Tensor<std::uint8_t> image({3, 32, 32});
    for (Index i = 0; i < image.size(); ++i) image.data()[i] = static_cast<std::uint8_t>((i * 53) % 256);
    io::write_png(path("a.png"), image);
    const Result r = infer({"-w", timm, "-i", path("a.png"), "-o", path("a_out.npy"), "--save-input",
                            path("seen"), "--resize-size", "0"});
    ASSERT_EQ(r.code, 0) << r.err;
    Tensor<float> expected({1, 3, 32, 32});
    const double mean[3] = {0.485, 0.456, 0.406}, stddev[3] = {0.229, 0.224, 0.225};
    for (Index i = 0; i < image.size(); ++i) {
        const auto c = static_cast<std::size_t>(i / (32 * 32));
        expected.data()[i] = (static_cast<float>(image.data()[i]) / 255.0f - static_cast<float>(mean[c])) /
                             static_cast<float>(stddev[c]);
    }
    expect_equal(read(path("seen/a.npy")), expected);
    // The model saw what the saved input holds.
    ASSERT_EQ(infer({"-w", timm, "-i", path("seen/a.npy"), "-o", path("again.npy")}).code, 0);
    expect_equal(read(path("again.npy")), read(path("a_out.npy")));
}

// Images of another size: timm's eval transform, Resize(35, bicubic) of the shorter side, CenterCrop(32).
TEST_F(Cli, PngAndJpegAreResizedAndCroppedToTheInputSize) {
    for (const std::string name : {"rgb.png", "rgb_q95.jpg"}) {
        const std::string stem = name.substr(0, name.find('.'));
        const Result r = infer({"-w", timm, "-i", fixture("images/" + name), "-o", path(stem + ".npy"),
                                "--save-input", path("seen")});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(read(path(stem + ".npy")).shape(), (vit3d::Shape{1, 5}));
        Tensor<float> x = io::read_image<float>(fixture("images/" + name), io::ImageChannels::rgb);
        x = transforms::center_crop(transforms::resize_shorter_side(x, 35, transforms::ResizeFilter::bicubic),
                                    32, 32);
        x = transforms::normalize(x, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}).unsqueeze(0);
        expect_equal(read(path("seen/" + stem + ".npy")), x);
    }
}

// --input-size runs a model with dynamic_size (timm's, exported at 40 x 24) at another size: a .npy of that
// size gives timm's numbers at it (its dynamic_img_size), and images are resized to it.
TEST_F(Cli, InputSizeRunsADynamicSizeModelAtAnotherSize) {
    const std::string dinov2 = fixture("timm/dinov2_registers.safetensors");
    const io::Safetensors expected_file =
        io::Safetensors::read(fixture("timm/dinov2_registers_expected.safetensors"));
    io::write_npy(path("other.npy"), expected_file.get<float>("in.x_other"));
    const Result r = infer({"-w", dinov2, "-i", path("other.npy"), "-o", path("pooled.npy"), "-k", "pooled",
                            "--input-size", "56,16", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["model"]["input_shape"], nlohmann::json({3, 56, 16}));
    EXPECT_TRUE(vit3d::test::MatchesReference(read(path("pooled.npy")),
                                              expected_file.get<float>("f32.other.pooled")));
    // Without --input-size the file's size is expected, and named: that input fails.
    const Result fixed = infer({"-w", dinov2, "-i", path("other.npy"), "-o", path("p2.npy")});
    EXPECT_EQ(fixed.code, 1);
    EXPECT_THAT(fixed.err, HasSubstr("expected one sample [3, 40, 24]"));
    const Result image = infer({"-w", dinov2, "-i", fixture("images/rgb.png"), "-o", path("grid.npy"), "-k",
                                "token_grid", "--input-size", "24,32"});
    ASSERT_EQ(image.code, 0) << image.err;
    EXPECT_EQ(read(path("grid.npy")).shape(), (vit3d::Shape{1, 32, 3, 4}));
    // A model without dynamic_size, and sizes the patches do not divide: refused before anything runs.
    io::write_npy(path("x.npy"), Tensor<float>({3, 32, 32}));
    const auto at = [&](const std::string& weights, const std::string& sizes) {
        return infer({"-w", weights, "-i", path("x.npy"), "-o", path("o.npy"), "--input-size", sizes});
    };
    expect_one_line_error(at(timm, "48,48"), 2,
                          "--input-size: this model runs at its input size [32, 32] only");
    expect_one_line_error(at(dinov2, "50,16"), 2,
                          "--input-size: 50 on axis 0 is not a multiple of the patch size 8");
    expect_one_line_error(at(dinov2, "56"), 2, "--input-size: expected 2 spatial sizes (layout BCHW), got 1");
    expect_one_line_error(at(dinov2, "0,16"), 2, "--input-size: expected positive integers, got 0");
    EXPECT_FALSE(fs::exists(path("o.npy")));
}

// NIfTI axis order: vit3d reads [z, y, x]; BCDHW models take it as it is, BCHWD models (MONAI) take
// [x, y, z]. The monai fixture's window (-1000..1000 -> 0..1) is applied as well.
TEST_F(Cli, NiftiAxesFollowTheModelsLayout) {
    const io::Volume<float> v = index_volume(8, 16, 16);
    io::write_nifti(path("v.nii"), v);
    io::write_nifti(path("v.nii.gz"), v);
    ASSERT_EQ(
        infer({"-w", vitpt3d, "-i", path("v.nii"), "-o", path("d.npy"), "--save-input", path("d")}).code, 0);
    expect_equal(read(path("d/v.npy")), v.data.unsqueeze(0).unsqueeze(0));

    for (const char* name : {"v.nii", "v.nii.gz"}) {
        const Result r = infer({"-w", monai, "-i", path(name), "-o", path("h.npy"), "--save-input",
                                path("h_in"), "--overwrite"});
        ASSERT_EQ(r.code, 0) << r.err;
        const Tensor<float> seen = read(path("h_in/v.npy"));
        ASSERT_EQ(seen.shape(), (vit3d::Shape{1, 1, 16, 16, 8}));
        for (Index k = 0; k < 8; ++k)
            for (Index j = 0; j < 16; ++j)
                for (Index i = 0; i < 16; ++i) {
                    const double hu = static_cast<double>(v.data(k, j, i));
                    ASSERT_EQ(seen(0, 0, i, j, k), static_cast<float>((hu + 1000.0) / 2000.0)) << i << j << k;
                }
        EXPECT_EQ(read(path("h.npy")).shape(), (vit3d::Shape{1, 3}));
    }
}

// --steps: one CT stored LPS and stored RAS gives the same model input and output (Orientation first); the
// steps are part of the run's identity, so changing them is an existing output's conflict, not a skip.
TEST_F(Cli, StepsMakeLpsAndRasFilesOfOneScanTheSame) {
    const std::string steps =
        R"([{"name": "Orientation", "axcodes": "RAS"},
            {"name": "ScaleIntensityRange", "a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1, "clip": true},
            {"name": "ResizeWithPadOrCrop", "spatial_size": [16, 16, 8]}])";
    const std::string fixtures = fixture("transforms/");
    for (const char* name : {"ct_lps", "ct_ras"}) {
        const Result r =
            infer({"-w", monai, "-i", fixtures + name + ".nii.gz", "-o", path(std::string(name) + ".npy"),
                   "--steps", steps, "--save-input", path(std::string(name) + "_in")});
        ASSERT_EQ(r.code, 0) << r.err;
    }
    expect_equal(read(path("ct_lps_in/ct_lps.npy")), read(path("ct_ras_in/ct_ras.npy")));
    expect_equal(read(path("ct_lps.npy")), read(path("ct_ras.npy")));
    vit3d::transforms::Preprocessing p;
    p.layout = "BCHWD";
    p.input_size = {16, 16, 8};
    p.steps = io::transforms_from_json(nlohmann::json::parse(steps), "", "steps");
    expect_equal(read(path("ct_lps_in/ct_lps.npy")),
                 io::read_nifti_input(fixtures + "ct_lps.nii.gz", {1, 16, 16, 8}, p));

    write_text(path("steps.json"), R"([{"name": "Orientation", "axcodes": "LPS"},
                                       {"name": "ResizeWithPadOrCrop", "spatial_size": [16, 16, 8]}])");
    expect_one_line_error(infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("ct_lps.npy"),
                                 "--steps", "@" + path("steps.json")}),
                          2, "was written with other preprocessing (steps");
    expect_one_line_error(infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("x.npy"),
                                 "--steps", R"([{"name": "Rotate"}])"}),
                          2, "--steps[0].name: expected one of");
    expect_one_line_error(
        infer({"-w", timm, "-i", fixtures + "ct_lps.nii.gz", "-o", path("x.npy"), "--steps", "[]"}), 2,
        "--steps: the steps prepare volumes");
    expect_one_line_error(infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("x.npy"),
                                 "--steps", "[]", "--window", "0,1"}),
                          2, "--steps replaces the value steps");
    expect_one_line_error(
        infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("x.npy"), "--preset", "merlin2"}), 2,
        "--preset: expected one of merlin, monai_unetr_btcv, got \"merlin2\"");
    expect_one_line_error(infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("x.npy"),
                                 "--preset", "merlin", "--steps", "[]"}),
                          2, "--steps and --preset: give one of them");
    // Merlin's pipeline ends at 224 x 224 x 160; this model takes 16 x 16 x 8.
    const Result merlin =
        infer({"-w", monai, "-i", fixtures + "ct_lps.nii.gz", "-o", path("m.npy"), "--preset", "merlin"});
    EXPECT_EQ(merlin.code, 1) << merlin.err;
    EXPECT_THAT(merlin.err,
                HasSubstr("preprocess.steps give [1, 224, 224, 160] (layout BCHWD) where the model "
                          "takes [1, 16, 16, 8]"));
}

TEST_F(Cli, NiftiOfAnotherSizeIsResampledTrilinearly) {
    const io::Volume<float> v = index_volume(5, 12, 20);
    io::write_nifti(path("small.nii.gz"), v);
    ASSERT_EQ(
        infer({"-w", vitpt3d, "-i", path("small.nii.gz"), "-o", path("o.npy"), "--save-input", path("in")})
            .code,
        0);
    expect_equal(read(path("in/small.npy")),
                 transforms::resample_trilinear(v.data.unsqueeze(0), {8, 16, 16}).unsqueeze(0));
}

// --- outputs ----------------------------------------------------------------------------------------------

TEST_F(Cli, EachOutputKindHasItsShape) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({3, 32, 32}, 4));
    const std::vector<std::pair<std::string, vit3d::Shape>> kinds = {{"logits", {1, 5}},
                                                                     {"pooled", {1, 16}},
                                                                     {"tokens", {1, 17, 16}},
                                                                     {"token_grid", {1, 16, 4, 4}},
                                                                     {"cls_attention", {1, 2, 4, 4}}};
    for (const auto& [kind, shape] : kinds) {
        const Result r = infer({"-w", timm, "-i", path("x.npy"), "-o", path(kind + ".npy"), "-k", kind});
        ASSERT_EQ(r.code, 0) << kind << ": " << r.err;
        EXPECT_EQ(read(path(kind + ".npy")).shape(), shape) << kind;
    }
}

TEST_F(Cli, DefaultOutputIsLogitsElsePooledElseTokens) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({3, 32, 32}, 5));
    io::write_npy(path("v.npy"), Tensor<float>::randn({1, 16, 16, 8}, 5));
    const Result with_head = infer({"-w", timm, "-i", path("x.npy"), "-o", path("a.npy"), "--json"});
    EXPECT_EQ(nlohmann::json::parse(with_head.out)["output_kind"], "logits");
    const Result featureless = infer({"-w", reg2rg, "-i", path("v.npy"), "-o", path("b.npy"), "--json"});
    EXPECT_EQ(nlohmann::json::parse(featureless.out)["output_kind"], "tokens");
    EXPECT_EQ(read(path("b.npy")).shape(), (vit3d::Shape{1, 8, 12}));  // 2x2x2 patches, no class token
}

TEST_F(Cli, AnOutputTheModelCannotGiveIsOneLineSayingWhy) {
    io::write_npy(path("v.npy"), Tensor<float>::randn({1, 16, 16, 8}, 6));
    expect_one_line_error(
        infer({"-w", reg2rg, "-i", path("v.npy"), "-o", path("o.npy"), "-k", "logits"}), 2,
        "--output-kind logits: this reg2rg vit3d model gives no logits (it has no head); it gives "
        "tokens, token_grid");
    expect_one_line_error(
        infer({"-w", reg2rg, "-i", path("v.npy"), "-o", path("o.npy"), "-k", "cls_attention"}), 2,
        "gives no cls_attention (it has no class token, or no blocks)");
    EXPECT_FALSE(fs::exists(path("o.npy")));
}

// With one input, --output is the file when it ends in .npy, a folder when it is one or ends in /, and is
// refused otherwise (a file "y.npy" or a folder "y/" are both plausible readings of "y"). With several,
// a name ending in .npy is refused as a folder.
TEST_F(Cli, OutputNameForOneInputEndsInNpyOrIsAFolder) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({3, 32, 32}, 8));
    expect_one_line_error(
        infer({"-w", timm, "-i", path("x.npy"), "-o", path("y")}), 2,
        "--output \"" + path("y") +
            "\": with one input, expected the output file (a name ending in .npy) or a folder "
            "(one that exists, or a name ending in /), e.g. \"" +
            path("y.npy") + "\" or \"" + path("y/") + "\"");
    EXPECT_EQ(names_in(dir_), std::vector<std::string>{"x.npy"});

    ASSERT_EQ(infer({"-w", timm, "-i", path("x.npy"), "-o", path("file.NPY")}).code, 0);
    EXPECT_EQ(read(path("file.NPY")).shape(), (vit3d::Shape{1, 5}));
    ASSERT_EQ(infer({"-w", timm, "-i", path("x.npy"), "-o", path("new/")}).code, 0);
    EXPECT_EQ(names_in(path("new")), with_records({"x.npy"}));
    fs::create_directories(path("there"));
    ASSERT_EQ(infer({"-w", timm, "-i", path("x.npy"), "-o", path("there")}).code, 0);
    EXPECT_EQ(names_in(path("there")), with_records({"x.npy"}));

    write_inputs(path("in"), {"a", "b"});
    expect_one_line_error(
        infer({"-w", timm, "-i", path("in"), "-o", path("all.npy")}), 2,
        "--output \"" + path("all.npy") +
            "\": with several inputs --output is a folder, and a name ending in .npy names a "
            "file; choose a folder name");
    EXPECT_FALSE(fs::exists(path("all.npy")));
}

// --- many inputs ------------------------------------------------------------------------------------------

TEST_F(Cli, FolderInputTakesItsKnownFilesAndSkipsHiddenOnes) {
    write_inputs(path("in"), {"a", "c", ".hidden"});
    io::write_png(path("in/b.png"), Tensor<std::uint8_t>::full({3, 10, 12}, 9));
    write_text(path("in/notes.txt"), "not an input");
    const Result r = infer({"-w", timm, "-i", path("in"), "-o", path("out")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(names_in(path("out")), with_records({"a.npy", "b.npy", "c.npy"}));
    EXPECT_THAT(r.out, HasSubstr("3 done, 0 skipped (output exists), 0 failed"));
}

TEST_F(Cli, GlobInputExpandsThePattern) {
    write_inputs(path("in"), {"a", "b"});
    io::write_png(path("in/c.png"), Tensor<std::uint8_t>::full({3, 10, 12}, 9));
    const Result r = infer({"-w", timm, "-i", path("in") + "/*.npy", "-o", path("out")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(names_in(path("out")), with_records({"a.npy", "b.npy"}));
    expect_one_line_error(infer({"-w", timm, "-i", path("in") + "/*.nii", "-o", path("out2")}), 2,
                          "no file matches the pattern");
}

TEST_F(Cli, ListFilesAndRepeatedInputs) {
    write_inputs(path("in"), {"a", "b", "c", "d"});
    write_text(path("list.txt"), "# inputs\n" + path("in/a.npy") + "\n\n  " + path("in/b.npy") + "  \n");
    write_text(path("more.txt"), path("in/c.npy") + "\n");
    const Result r = infer({"-w", timm, "-i", "@" + path("list.txt"), "--input-list", path("more.txt"), "-i",
                            path("in/d.npy"), "-o", path("out")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(names_in(path("out")), with_records({"a.npy", "b.npy", "c.npy", "d.npy"}));
    expect_one_line_error(infer({"-w", timm, "-i", "@" + path("absent.txt"), "-o", path("out")}), 2,
                          "cannot read it: no such file");
}

TEST_F(Cli, EqualStemsAreRefusedNamingBoth) {
    write_inputs(path("one"), {"scan"});
    fs::create_directories(path("two"));
    io::write_png(path("two/scan.png"), Tensor<std::uint8_t>::full({3, 8, 8}, 1));
    const Result r = infer({"-w", timm, "-i", path("one"), "-i", path("two"), "-o", path("out")});
    expect_one_line_error(r, 2,
                          "inputs \"" + path("one/scan.npy") + "\" and \"" + path("two/scan.png") +
                              "\" would both write \"" + path("out/scan.npy") + "\"");
    EXPECT_FALSE(fs::exists(path("out/scan.npy")));
}

// --- resume, shards, atomicity ----------------------------------------------------------------------------

// A rerun skips the outputs it wrote and computes the missing ones; --overwrite computes them all again.
// (cli_records.cpp: the existing outputs that stop a run instead.)
TEST_F(Cli, ExistingOutputsAreSkippedUnlessOverwrite) {
    write_inputs(path("in"), {"a", "b"});
    ASSERT_EQ(infer({"-w", timm, "-i", path("in/b.npy"), "-o", path("out/")}).code, 0);
    const std::string b_bytes = read_text(path("out/b.npy"));
    const Result first = infer({"-w", timm, "-i", path("in"), "-o", path("out")});
    ASSERT_EQ(first.code, 0) << first.err;
    EXPECT_THAT(first.out, HasSubstr("1 done, 1 skipped (output exists), 0 failed"));
    EXPECT_THAT(first.err, HasSubstr("skipping 1 input(s) whose output exists"));
    EXPECT_EQ(read_text(path("out/b.npy")), b_bytes);
    EXPECT_EQ(read(path("out/a.npy")).shape(), (vit3d::Shape{1, 5}));

    const Result again = infer({"-w", timm, "-i", path("in"), "-o", path("out"), "--json"});
    const auto j = nlohmann::json::parse(again.out);
    EXPECT_EQ(j["summary"]["done"], 0);
    EXPECT_EQ(j["summary"]["skipped"], 2);

    const Result overwrite = infer({"-w", timm, "-i", path("in"), "-o", path("out"), "--overwrite"});
    ASSERT_EQ(overwrite.code, 0) << overwrite.err;
    EXPECT_THAT(overwrite.out, HasSubstr("2 done, 0 skipped"));
    EXPECT_EQ(read(path("out/b.npy")).shape(), (vit3d::Shape{1, 5}));
}

std::vector<std::string> done_inputs(const Result& r) {
    std::vector<std::string> inputs;
    const auto j = nlohmann::json::parse(r.out);
    for (const auto& f : j["files"]) {
        EXPECT_EQ(f["status"], "done");
        inputs.push_back(f["input"]);
    }
    return inputs;
}

TEST_F(Cli, ShardsAreDisjointAndCoverEveryInput) {
    const std::vector<std::string> stems = {"a", "b", "c", "d", "e", "f", "g"};
    write_inputs(path("in"), stems);
    std::set<std::string> seen;
    std::size_t total = 0;
    for (int k = 0; k < 3; ++k) {
        const std::string shard = std::to_string(k) + "/3";
        const Result r = infer({"-w", timm, "-i", path("in"), "-o", path("out"), "--shard", shard, "--json"});
        ASSERT_EQ(r.code, 0) << r.err;
        const auto mine = done_inputs(r);
        // Round robin over the sorted inputs: shard k takes indices k, k + 3, ...
        std::vector<std::string> expected;
        for (std::size_t i = static_cast<std::size_t>(k); i < stems.size(); i += 3)
            expected.push_back(path("in/" + stems[i] + ".npy"));
        EXPECT_EQ(mine, expected) << shard;
        total += mine.size();
        seen.insert(mine.begin(), mine.end());
        // The same shard again finds its outputs written.
        const auto j = nlohmann::json::parse(
            infer({"-w", timm, "-i", path("in"), "-o", path("out"), "--shard", shard, "--json"}).out);
        EXPECT_EQ(j["summary"]["skipped"], mine.size());
    }
    EXPECT_EQ(total, stems.size());
    EXPECT_EQ(seen.size(), stems.size());
    EXPECT_EQ(names_in(path("out")).size(), 2 * stems.size());  // each output and its record
}

// A bad file in the middle: the others are written, it is reported and has no output; the exit code is 1.
TEST_F(Cli, ABadFileIsReportedAndSkipped) {
    write_inputs(path("in"), {"a", "c"});
    write_text(path("in/b.npy"), "\x93NUMPY garbage");
    const Result r = infer({"-w", timm, "-i", path("in"), "-o", path("out")});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("vit3d-infer: " + path("in/b.npy") + ": failed: "));
    EXPECT_THAT(r.err, HasSubstr("1 of 3 input(s) failed (2 done, 0 skipped as existing)"));
    EXPECT_THAT(r.out, HasSubstr("2 done, 0 skipped (output exists), 1 failed"));
    EXPECT_EQ(names_in(path("out")), with_records({"a.npy", "c.npy"}));
}

// A write that fails mid-way (the file size limit, SIGXFSZ ignored so that write() fails with EFBIG) leaves
// nothing at the final name and no temporary file; killed by SIGXFSZ it leaves nothing at the final name,
// and a rerun completes.
TEST_F(Cli, NothingIsHalfWritten) {
    write_inputs(path("in"), {"a", "b"});
    const std::string command =
        "'" + infer_path() + "' -w '" + timm + "' -i '" + path("in") + "' -o '" + path("out") + "' -k tokens";
    const Result failing = shell("trap '' XFSZ; ulimit -f 1; exec " + command);
    EXPECT_EQ(failing.code, 1) << failing.err;
    EXPECT_THAT(failing.err, HasSubstr("File too large"));
    EXPECT_EQ(names_in(path("out")), std::vector<std::string>{});

    const Result killed = shell("ulimit -f 1; exec " + command);
    EXPECT_EQ(killed.code, 128 + SIGXFSZ) << killed.err;
    for (const std::string& name : names_in(path("out"))) EXPECT_THAT(name, StartsWith(".")) << name;

    const Result rerun = shell("exec " + command);
    ASSERT_EQ(rerun.code, 0) << rerun.err;
    EXPECT_EQ(read(path("out/a.npy")).shape(), (vit3d::Shape{1, 17, 16}));
    EXPECT_EQ(read(path("out/b.npy")).shape(), (vit3d::Shape{1, 17, 16}));
}

// --- what it prints ---------------------------------------------------------------------------------------

TEST_F(Cli, JsonHoldsTheFacts) {
    write_inputs(path("in"), {"a", "b"});
    write_text(path("in/c.npy"), "not an array");
    const Result r = infer({"-w", timm, "-i", path("in"), "-o", path("out"), "--json", "-b", "2", "-t", "1"});
    EXPECT_EQ(r.code, 1);
    const auto j = nlohmann::json::parse(r.out);  // one object, nothing else on stdout
    EXPECT_EQ(j["tool"], "vit3d-infer");
    EXPECT_EQ(j["model"]["family"], "timm");
    EXPECT_EQ(j["model"]["kind"], "vit2d");
    EXPECT_EQ(j["model"]["parameters"], 7941);
    EXPECT_EQ(j["model"]["layout"], "BCHW");
    EXPECT_EQ(j["model"]["input_shape"], nlohmann::json({3, 32, 32}));
    EXPECT_EQ(j["model"]["grid"], nlohmann::json({4, 4}));
    EXPECT_EQ(j["model"]["tokens"], 17);
    EXPECT_EQ(j["output_kind"], "logits");
    EXPECT_EQ(j["batch_size"], 2);
    EXPECT_EQ(j["threads"], 1);
    EXPECT_EQ(j["preprocess"]["mean"], nlohmann::json({0.485, 0.456, 0.406}));
    EXPECT_EQ(j["summary"]["done"], 2);
    EXPECT_EQ(j["summary"]["failed"], 1);
    EXPECT_EQ(j["exit_code"], 1);
    for (const char* stage : {"load", "read", "forward", "write", "total"})
        EXPECT_GE(j["seconds"][stage], 0.0);
    EXPECT_GT(j["peak_memory_bytes"], 1000000);
    ASSERT_EQ(j["files"].size(), 3u);
    EXPECT_EQ(j["files"][0]["input"], path("in/a.npy"));
    EXPECT_EQ(j["files"][0]["output"], path("out/a.npy"));
    EXPECT_EQ(j["files"][0]["status"], "done");
    EXPECT_EQ(j["files"][0]["read_dtype"], "float32");
    EXPECT_EQ(j["files"][0]["read_shape"], nlohmann::json({3, 32, 32}));
    EXPECT_EQ(j["files"][0]["input_shape"], nlohmann::json({1, 3, 32, 32}));
    EXPECT_EQ(j["files"][0]["output_shape"], nlohmann::json({1, 5}));
    EXPECT_EQ(j["files"][2]["status"], "failed");
    EXPECT_THAT(j["files"][2]["error"].get<std::string>(), HasSubstr("c.npy"));
}

TEST_F(Cli, TextReportSaysWhatItDid) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({3, 32, 32}, 7));
    const Result r = infer({"-w", timm, "-i", path("x.npy"), "-o", path("y.npy")});
    ASSERT_EQ(r.code, 0) << r.err;
    for (const char* text :
         {"timm vit2d, 7,941 parameters, input [3, 32, 32] (layout BCHW), 17 tokens (4x4 patches "
          "+ class token)",
          "float32 [3, 32, 32] -> input [1, 3, 32, 32] -> [1, 5]", "time:    load ", "read+preprocess ",
          "forward ", "write ", "memory:  peak "})
        EXPECT_THAT(r.out, HasSubstr(text));
    const Result quiet = infer({"-w", timm, "-i", path("x.npy"), "-o", path("z.npy"), "--quiet"});
    EXPECT_EQ(quiet.code, 0);
    EXPECT_EQ(quiet.out, "");
    EXPECT_EQ(quiet.err, "");
    // Not a terminal: plain progress lines.
    EXPECT_THAT(r.err, HasSubstr("vit3d-infer: [1/1] " + path("x.npy") + ": done"));
}

TEST_F(Cli, HelpStatesTheConventions) {
    const Result r = infer({"--help"});
    EXPECT_EQ(r.code, 0);
    for (const char* text : {"--output-kind", "--shard", "[C, x, y, z]", "BCHWD", "[B, C, spatial...]",
                             "Exit codes", "<output>.vit3d.json"})
        EXPECT_THAT(r.out, HasSubstr(text));
}

// --- bad inputs: per file, exit code 1 --------------------------------------------------------------------

void expect_failed_file(const Result& r, const std::string& input, const std::string& text) {
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("vit3d-infer: " + input + ": failed: "));
    EXPECT_THAT(r.err, HasSubstr(text));
    EXPECT_THAT(r.err, HasSubstr("1 of 1 input(s) failed"));
}

TEST_F(Cli, WrongDtype) {
    io::write_npy(path("i64.npy"), Tensor<std::int64_t>({3, 32, 32}));
    expect_failed_file(
        infer({"-w", timm, "-i", path("i64.npy"), "-o", path("o.npy")}), path("i64.npy"),
        "unsupported .npy dtype int64: expected float16, float32, float64, uint8, int8, uint16 or int16");
    expect_failed_file(infer({"-w", timm, "-i", fixture("npy/c8_complex.npy"), "-o", path("o.npy")}),
                       fixture("npy/c8_complex.npy"), "complex");
}

TEST_F(Cli, WrongRankOrSize) {
    io::write_npy(path("rank.npy"), Tensor<float>({32, 32}));
    expect_failed_file(
        infer({"-w", timm, "-i", path("rank.npy"), "-o", path("o.npy")}), path("rank.npy"),
        "shape [32, 32] does not fit the model: expected one sample [3, 32, 32] or a batch [B, 3, 32, "
        "32] (layout BCHW)");
    io::write_npy(path("size.npy"), Tensor<float>({2, 3, 32, 31}));
    expect_failed_file(infer({"-w", timm, "-i", path("size.npy"), "-o", path("o.npy")}), path("size.npy"),
                       "shape [2, 3, 32, 31] does not fit the model");
}

TEST_F(Cli, TruncatedFiles) {
    io::write_npy(path("full.npy"), Tensor<float>({3, 32, 32}));
    std::string bytes = read_text(path("full.npy"));
    write_text(path("cut.npy"), bytes.substr(0, bytes.size() - 100));
    expect_failed_file(infer({"-w", timm, "-i", path("cut.npy"), "-o", path("o.npy")}), path("cut.npy"),
                       "bytes");
    io::write_nifti(path("full.nii"), index_volume(8, 16, 16));
    bytes = read_text(path("full.nii"));
    write_text(path("cut.nii"), bytes.substr(0, bytes.size() / 2));
    expect_failed_file(infer({"-w", vitpt3d, "-i", path("cut.nii"), "-o", path("o.npy")}), path("cut.nii"),
                       "bytes");
    expect_failed_file(infer({"-w", timm, "-i", fixture("images/truncated.png"), "-o", path("o.npy")}),
                       fixture("images/truncated.png"), "truncated.png");
    EXPECT_FALSE(fs::exists(path("o.npy")));
}

TEST_F(Cli, UnreadableImage) {
    expect_failed_file(infer({"-w", timm, "-i", fixture("images/not_an_image.png"), "-o", path("o.npy")}),
                       fixture("images/not_an_image.png"), "not_an_image.png");
    write_text(path("data.csv"), "1,2,3\n");
    expect_failed_file(infer({"-w", timm, "-i", path("data.csv"), "-o", path("o.npy")}), path("data.csv"),
                       "unknown input type: expected one of .npy, .png");
}

TEST_F(Cli, ModelAndInputMismatch) {
    io::write_png(path("a.png"), Tensor<std::uint8_t>::full({3, 8, 8}, 7));
    expect_failed_file(
        infer({"-w", monai, "-i", path("a.png"), "-o", path("o.npy")}), path("a.png"),
        "an image feeds a 2D model (layout BCHW); this model takes volumes (layout BCHWD, input [1, "
        "16, 16, 8])");
    io::write_nifti(path("v.nii"), index_volume(8, 16, 16));
    expect_failed_file(infer({"-w", timm, "-i", path("v.nii"), "-o", path("o.npy")}), path("v.nii"),
                       "a NIfTI volume feeds a 3D model");
    io::Volume<float> two;
    two.data = Tensor<float>({2, 8, 16, 16});
    io::write_nifti(path("two.nii"), two);
    expect_failed_file(infer({"-w", monai, "-i", path("two.nii"), "-o", path("o.npy")}), path("two.nii"),
                       "the model takes 1 channel(s); the volume [2, 8, 16, 16] gives 2");
    io::write_npy(path("vol.npy"), Tensor<float>({1, 8, 16, 16}));
    expect_failed_file(infer({"-w", monai, "-i", path("vol.npy"), "-o", path("o.npy")}), path("vol.npy"),
                       "expected one sample [1, 16, 16, 8] or a batch [B, 1, 16, 16, 8] (layout BCHWD)");
}

// --- bad arguments: one line, exit code 2, nothing written -----------------------------------------------

// A file named on the command line or in a list that does not exist is a mistyped command, refused before
// anything runs, like a folder or a glob that gives no file; the other inputs are not run either.
TEST_F(Cli, MissingNamedInputsAreABadCommandLine) {
    write_inputs(path("in"), {"a"});
    const Result named = infer({"-w", timm, "-i", path("in/a.npy"), path("absent.npy"), "-o", path("out")});
    expect_one_line_error(named, 2, "--input \"" + path("absent.npy") + "\": no such file");
    EXPECT_FALSE(fs::exists(path("out")));
    EXPECT_FALSE(fs::exists(path("absent.npy")));

    const Result one = infer({"-w", timm, "-i", path("absent.npy"), "-o", path("o.npy")});
    expect_one_line_error(one, 2, "--input \"" + path("absent.npy") + "\": no such file");
    EXPECT_FALSE(fs::exists(path("o.npy")));

    write_text(path("list.txt"), "# inputs\n" + path("in/a.npy") + "\n" + path("gone.npy") + "\n");
    const Result listed = infer({"-w", timm, "--input-list", path("list.txt"), "-o", path("out")});
    expect_one_line_error(
        listed, 2,
        "input list \"" + path("list.txt") + "\" line 3: \"" + path("gone.npy") + "\": no such file");
    EXPECT_FALSE(fs::exists(path("out")));
}

TEST_F(Cli, BadOptionValues) {
    io::write_npy(path("x.npy"), Tensor<float>({3, 32, 32}));
    const auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"-w", timm, "-i", path("x.npy"), "-o", path("o.npy")};
        args.insert(args.end(), extra.begin(), extra.end());
        return infer(args);
    };
    expect_one_line_error(with({"--shard", "3/2"}), 2,
                          "--shard: expected K/N with 0 <= K < N (e.g. 0/4 .. 3/4), got \"3/2\"");
    expect_one_line_error(with({"--shard", "1"}), 2, "--shard: expected K/N");
    expect_one_line_error(with({"--threads", "0"}), 2, "--threads: expected a positive integer, got 0");
    expect_one_line_error(with({"--threads", "many"}), 2, "--threads");
    expect_one_line_error(with({"--batch-size", "0"}), 2, "--batch-size: expected a positive integer, got 0");
    expect_one_line_error(
        with({"--output-kind", "features"}), 2,
        "--output-kind: expected one of logits, pooled, tokens, token_grid, cls_attention, got "
        "\"features\"");
    expect_one_line_error(with({"--mean", "0.5,0.5"}), 2, "--mean: expected 3 value(s), one per channel");
    expect_one_line_error(with({"--window", "5,1"}), 2, "--window: expected LOW,HIGH with LOW < HIGH");
    expect_one_line_error(with({"--interpolation", "lanczos"}), 2,
                          "--interpolation: expected bilinear or bicubic");
    expect_one_line_error(with({"--frobnicate"}), 2, "frobnicate");
    expect_one_line_error(infer({"-i", path("x.npy"), "-o", path("o.npy")}), 2, "--weights is required");
    expect_one_line_error(infer({"-w", timm, "-i", path("x.npy"), "-o", ""}), 2, "--output: expected a path");
    expect_one_line_error(infer({"-w", timm, "-o", path("o.npy")}), 2,
                          "no input: give --input or --input-list");
    expect_one_line_error(infer({"-w", path("x.npy"), "-i", path("x.npy"), "-o", path("o.npy")}), 2,
                          "cannot load the model: ");
    expect_one_line_error(infer({"-w", path("absent.safetensors"), "-i", path("x.npy"), "-o", path("o.npy")}),
                          2, "cannot load the model: ");
    expect_one_line_error(with({"--json", "--threads", "0"}), 2, "--threads");
    EXPECT_EQ(nlohmann::json::parse(with({"--json", "--threads", "0"}).out)["exit_code"], 2);
    EXPECT_FALSE(fs::exists(path("o.npy")));
}

}  // namespace
