// vit3d-infer's outputs are the numbers io::load_model + forward give in this process, exactly, for each
// output kind and for a 3D model fed a NIfTI volume: the tool adds no arithmetic of its own between the
// model input and the written output.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "vit3d/formats/image.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/transforms/resample.hpp"

namespace {

using namespace vit3d_cli_test;
using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;

void expect_equal(const Tensor<float>& a, const Tensor<float>& b) {
    ASSERT_EQ(a.shape(), b.shape());
    for (Index i = 0; i < a.size(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << "element " << i;
}

class CliNumbers : public CliTest {};

TEST_F(CliNumbers, EveryOutputKindEqualsTheInProcessForward) {
    const std::string weights = model("timm_vit_token_f32");
    const auto loaded = io::load_model<float>(weights);
    const Tensor<float> x = Tensor<float>::randn({2, 3, 32, 32}, 21);
    io::write_npy(path("x.npy"), x);
    for (io::ModelOutput kind : loaded.outputs()) {
        const std::string name = io::output_name(kind);
        const Result r = infer({"-w", weights, "-i", path("x.npy"), "-o", path(name + ".npy"), "-k", name});
        ASSERT_EQ(r.code, 0) << name << ": " << r.err;
        expect_equal(io::read_npy<float>(path(name + ".npy")), loaded.forward(x, kind));
    }
}

// A float64 weights file computes in float, as io::load_model<float> loads it.
TEST_F(CliNumbers, AVolumeThroughA3DModelEqualsTheInProcessForward) {
    const std::string weights = model("monai_vit_f64");
    io::Volume<float> v;
    v.data = Tensor<float>::rand({8, 16, 16}, 22, -1200.0f, 1200.0f);
    io::write_nifti(path("ct.nii.gz"), v);
    const Result r = infer(
        {"-w", weights, "-i", path("ct.nii.gz"), "-o", path("ct.npy"), "--save-input", path("in"), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto loaded = io::load_model<float>(weights);
    expect_equal(io::read_npy<float>(path("ct.npy")),
                 loaded.forward(io::read_npy<float>(path("in/ct.npy")), io::ModelOutput::logits));
    EXPECT_NE(r.out.find("\"parameters\":" + std::to_string(loaded.parameter_count())), std::string::npos);
}

// A Hugging Face model folder runs as a weights file does: DINOv2's processor (the shorter side to 18,
// bicubic, a 16 x 16 crop, ImageNet statistics) applied to an image, its model's output for what it saw.
TEST_F(CliNumbers, AHuggingFaceFolderRunsWithItsProcessorsPreprocessing) {
    const std::string folder = std::string(VIT3D_TEST_FIXTURE_DIR) + "/huggingface/dinov2";
    Tensor<std::uint8_t> image({3, 24, 20});
    for (Index i = 0; i < image.size(); ++i) image.data()[i] = static_cast<std::uint8_t>((i * 37) % 256);
    io::write_png(path("a.png"), image);
    const Result r = infer({"-w", folder, "-i", path("a.png"), "-o", path("a.npy"), "-k", "pooled",
                            "--save-input", path("seen")});
    ASSERT_EQ(r.code, 0) << r.err;
    Tensor<float> x = io::read_image<float>(path("a.png"), io::ImageChannels::rgb);
    x = transforms::center_crop(transforms::resize_shorter_side(x, 18, transforms::ResizeFilter::bicubic), 16,
                                16);
    x = transforms::normalize(x, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}).unsqueeze(0);
    expect_equal(io::read_npy<float>(path("seen/a.npy")), x);
    const auto loaded = io::load_model<float>(folder);
    expect_equal(io::read_npy<float>(path("a.npy")), loaded.forward(x, io::ModelOutput::pooled));
}

}  // namespace
