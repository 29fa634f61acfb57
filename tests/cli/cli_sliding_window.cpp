// vit3d-infer --sliding-window: a volume larger than the model's input is preprocessed at its own size and
// run over windows, giving exactly what io::sliding_window_forward gives in this process; smaller volumes are
// resized as without the option; the windows enter the outputs' records; what the option refuses.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/io/sliding_window_inference.hpp"
#include "vit3d/transforms/compose.hpp"
#include "vit3d/transforms/presets.hpp"
#include "vit3d/transforms/resample.hpp"

namespace {

using namespace vit3d_cli_test;
using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace models = vit3d::models;
namespace transforms = vit3d::transforms;

const std::string monai = model("monai_vit_f32");  // BCHWD [16, 16, 8], patches 8x8x4, window -1000..1000

void expect_equal(const Tensor<float>& a, const Tensor<float>& b) {
    ASSERT_EQ(a.shape(), b.shape());
    for (Index i = 0; i < a.size(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << "element " << i;
}

class CliSlidingWindow : public CliTest {};

TEST_F(CliSlidingWindow, ALargerVolumeRunsOverWindowsAtItsOwnSize) {
    io::Volume<float> v;
    v.data = Tensor<float>::rand({21, 30, 40}, 31, -1200.0f, 1200.0f);  // [z, y, x]: [x, y, z] = [40, 30, 21]
    io::write_nifti(path("ct.nii.gz"), v);
    const auto loaded = io::load_model<float>(monai);
    for (const char* kind : {"token_grid", "cls_attention", "pooled"}) {
        SCOPED_TRACE(kind);
        const std::string out = path(std::string(kind) + ".npy");
        const Result r =
            infer({"-w", monai, "-i", path("ct.nii.gz"), "-o", out, "-k", kind, "--sliding-window",
                   "0.25,gaussian", "-b", "3", "--save-input", path("in"), "--overwrite"});
        ASSERT_EQ(r.code, 0) << r.err;
        const Tensor<float> seen = io::read_npy<float>(path("in/ct.npy"));
        ASSERT_EQ(seen.shape(), (Shape{1, 1, 40, 30, 21}));
        // The window -1000..1000 -> 0..1, and no resize.
        const double hu = static_cast<double>(v.data(3, 5, 7));
        EXPECT_EQ(seen(0, 0, 7, 5, 3), static_cast<float>(std::clamp((hu + 1000.0) / 2000.0, 0.0, 1.0)));
        models::SlidingWindowConfig c;
        c.overlap = {0.25};
        c.mode = models::BlendMode::gaussian;
        c.sw_batch_size = 3;
        const io::ModelOutput output = *vit3d::enum_from_name<io::ModelOutput>(kind);
        expect_equal(io::read_npy<float>(out), io::sliding_window_forward(loaded, seen, output, c));
    }
    EXPECT_EQ(io::read_npy<float>(path("token_grid.npy")).shape(), (Shape{1, 24, 5, 3, 5}));
    const nlohmann::json record = nlohmann::json::parse(read_text(path("token_grid.npy.vit3d.json")));
    EXPECT_THAT(record.dump(),
                HasSubstr("\"sliding_window\":{\"cval\":0.0,\"mode\":\"gaussian\",\"overlap\":0.25"));
}

TEST_F(CliSlidingWindow, ASmallerVolumeIsResizedAsWithoutTheOption) {
    io::Volume<float> v;
    v.data = Tensor<float>::rand({6, 10, 12}, 32, -1000.0f, 1000.0f);
    io::write_nifti(path("small.nii"), v);
    const Result with = infer({"-w", monai, "-i", path("small.nii"), "-o", path("a.npy"), "-k", "pooled",
                               "--sliding-window", "0.5"});
    const Result without = infer({"-w", monai, "-i", path("small.nii"), "-o", path("b.npy"), "-k", "pooled"});
    ASSERT_EQ(with.code, 0) << with.err;
    ASSERT_EQ(without.code, 0) << without.err;
    expect_equal(io::read_npy<float>(path("a.npy")), io::read_npy<float>(path("b.npy")));
}

TEST_F(CliSlidingWindow, ANpyOfAnotherSizeRunsOverWindowsAsItIs) {
    const Tensor<float> x = Tensor<float>::randn({1, 20, 16, 12}, 33);
    io::write_npy(path("x.npy"), x);
    const Result r = infer({"-w", monai, "-i", path("x.npy"), "-o", path("g.npy"), "-k", "token_grid",
                            "--sliding-window", "0.5"});
    ASSERT_EQ(r.code, 0) << r.err;
    models::SlidingWindowConfig c;
    c.overlap = {0.5};
    expect_equal(io::read_npy<float>(path("g.npy")),
                 io::sliding_window_forward(io::load_model<float>(monai), x.unsqueeze(0),
                                            io::ModelOutput::token_grid, c));
}

// MONAI's UNETR validation pipeline leaves each volume at its own size (spacing, then the body's bounding
// box), for sliding windows: with them the preset's steps run whole and the model over windows.
TEST_F(CliSlidingWindow, APresetThatLeavesTheSizeFreeRunsOverWindows) {
    io::Volume<float> v;
    v.data = Tensor<float>::rand({20, 36, 42}, 36, -100.0f, 200.0f);  // all foreground after the window
    io::write_nifti(path("ct.nii.gz"), v);
    const std::vector<std::string> args{"-w", monai,        "-i",       path("ct.nii.gz"),
                                        "-k", "token_grid", "--preset", "monai_unetr_btcv"};
    std::vector<std::string> with = args;
    with.insert(with.end(), {"-o", path("g.npy"), "--sliding-window", "0.5", "--save-input", path("in")});
    const Result r = infer(with);
    ASSERT_EQ(r.code, 0) << r.err;
    const transforms::SpatialImage<float> image =
        transforms::apply(transforms::preset("monai_unetr_btcv").steps, io::spatial_image(v));
    const Tensor<float> seen = io::read_npy<float>(path("in/ct.npy"));
    expect_equal(seen, image.data.unsqueeze(0));  // BCHWD: [C, i, j, k] as the steps give it
    models::SlidingWindowConfig c;
    c.overlap = {0.5};
    expect_equal(
        io::read_npy<float>(path("g.npy")),
        io::sliding_window_forward(io::load_model<float>(monai), seen, io::ModelOutput::token_grid, c));
    std::vector<std::string> without = args;
    without.insert(without.end(), {"-o", path("n.npy")});
    const Result plain = infer(without);
    EXPECT_EQ(plain.code, 1);
    EXPECT_THAT(plain.err, HasSubstr("end the steps with ResizeWithPadOrCrop to the input size"));
}

// Steps that end by sizing the volume to the input: a larger volume skips that sizing and runs over
// windows; a volume no larger than the input on any axis takes every step, as without the option.
TEST_F(CliSlidingWindow, StepsEndingInASizingStepSkipItForALargerVolume) {
    const std::string steps =
        R"([{"name": "ScaleIntensityRange", "a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1, "clip": true},
            {"name": "ResizeWithPadOrCrop", "spatial_size": [16, 16, 8]}])";
    io::Volume<float> big, small;
    big.data = Tensor<float>::rand({12, 20, 24}, 37, -1200.0f, 1200.0f);   // [x, y, z] = [24, 20, 12]
    small.data = Tensor<float>::rand({6, 10, 12}, 38, -1200.0f, 1200.0f);  // [12, 10, 6]
    io::write_nifti(path("big.nii.gz"), big);
    io::write_nifti(path("small.nii.gz"), small);
    for (const char* name : {"big", "small"}) {
        const Result r = infer({"-w", monai, "-i", path(std::string(name) + ".nii.gz"), "-o",
                                path(std::string(name) + ".npy"), "-k", "token_grid", "--steps", steps,
                                "--sliding-window", "0.25", "--save-input", path("in")});
        ASSERT_EQ(r.code, 0) << r.err;
    }
    EXPECT_EQ(io::read_npy<float>(path("in/big.npy")).shape(), (Shape{1, 1, 24, 20, 12}));
    EXPECT_EQ(io::read_npy<float>(path("big.npy")).shape(), (Shape{1, 24, 3, 2, 3}));
    EXPECT_EQ(io::read_npy<float>(path("in/small.npy")).shape(), (Shape{1, 1, 16, 16, 8}));
    EXPECT_EQ(io::read_npy<float>(path("small.npy")).shape(), (Shape{1, 24, 2, 2, 2}));
}

TEST_F(CliSlidingWindow, RefusesTokensBadOverlapsAndImageModels) {
    io::write_npy(path("x.npy"), Tensor<float>::randn({1, 20, 16, 12}, 34));
    const auto run = [&](const std::vector<std::string>& extra) {
        std::vector<std::string> args{"-w", monai, "-i", path("x.npy"), "-o", path("o.npy")};
        args.insert(args.end(), extra.begin(), extra.end());
        return infer(args);
    };
    expect_one_line_error(run({"-k", "tokens", "--sliding-window", "0.25"}), 2,
                          "--sliding-window: tokens cannot be stitched");
    expect_one_line_error(run({"--sliding-window", "1"}), 2, "got \"1\": overlap 1 is outside [0, 1)");
    expect_one_line_error(run({"--sliding-window", "0.25,soft"}), 2, "unknown blend mode \"soft\"");
    expect_one_line_error(run({"--sliding-window", "a quarter"}), 2, "expected OVERLAP[,constant|gaussian]");
    io::write_npy(path("i.npy"), Tensor<float>::randn({3, 32, 32}, 35));
    expect_one_line_error(infer({"-w", model("timm_vit_token_f32"), "-i", path("i.npy"), "-o", path("o.npy"),
                                 "--sliding-window", "0.25"}),
                          2, "this model takes images (layout BCHW)");
    EXPECT_FALSE(fs::exists(path("o.npy")));
}

}  // namespace
