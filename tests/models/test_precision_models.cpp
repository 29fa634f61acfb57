// The accuracy gates of int8 and bf16 inference (core/precision.hpp; docs/precision.md quotes the numbers
// these tests print), whole models against themselves in f32. int8:
//   - the shipped digits ViT (examples/data/digits, trained by tools/train_digits.py) on its 360 test images,
//     loaded with LoadOptions::precision: the same digit for >= 99% of them, accuracy within 0.5 points;
//   - a random-weight torchvision ViT-B/16 at 224 x 224 and a MONAI-style ViT-B on a 96^3 volume with 16^3
//     patches: cosine similarity of the pooled features >= 0.999;
//   - the same two with outlier channels as trained ViTs have them (3 channels of every block's norm1 and
//     norm2, weight and bias, x30): cosine >= 0.999 too, which needs the outlier channels computed in float
//     (detail/int8_linear.hpp).
// At every int8 kernel the machine has (through the ISA cap), except the ViT-B sizes at the generic kernel,
// which is plain C++ and a few seconds per forward. bf16, at its native kernel (AVX512-BF16) where the CPU
// has it and emulated at the avx2 level: the same digits gate; cosine >= 0.9999 for the ViT-B models, with
// and without outlier channels (bf16 keeps a float's range, so outliers need nothing of their own).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/precision.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/transforms/preprocess.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Precision;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace models = vit3d::models;
namespace nn = vit3d::nn;

// The kernel a precision runs at the active level.
std::string kernel_name(Precision precision) {
    return precision == Precision::bf16 ? vit3d::enum_name(vit3d::detail::active_bf16_kernel())
                                        : vit3d::enum_name(vit3d::detail::active_int8_kernel());
}

// The kernels' levels to run a model of ViT-B's size at: every one from avx2 up (int8: avx2 and vnni512;
// bf16: emulated and native), the generic level only when there is no other.
// Under the sanitizers (CI's ASan build runs every test at -O1) only the best level: the kernels' memory is
// checked by the tests of each kernel, and a ViT-B forward there takes some 10 s.
std::vector<vit3d::Isa> vit_b_levels() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return {vit3d::test::runnable_isas().back()};
#endif
    std::vector<vit3d::Isa> levels;
    for (vit3d::Isa isa : vit3d::test::runnable_isas())
        if (isa >= vit3d::Isa::avx2) levels.push_back(isa);
    if (levels.empty()) levels.push_back(vit3d::test::runnable_isas().back());
    return levels;
}

// --- the digits model -------------------------------------------------------------------------------------

struct Digits {
    Tensor<float> x;  // [360, 1, 8, 8], preprocessed as the weights file says
    Tensor<std::uint8_t> labels;
};

Digits digits_test_set(const io::LoadedModel<float>& model) {
    const std::string dir = std::string(VIT3D_EXAMPLE_DATA_DIR) + "/digits";
    const auto images = io::read_npy<std::uint8_t>(dir + "/test_images.npy");  // [N, H, W]
    Tensor<float> x = Tensor<float>::empty({images.dim(0), 1, images.dim(1), images.dim(2)});
    std::copy(images.begin(), images.end(), x.begin());
    return {vit3d::transforms::apply_value_steps(std::move(x), model.preprocess(), 1),
            io::read_npy<std::uint8_t>(dir + "/test_labels.npy")};
}

std::vector<Index> predictions(const Tensor<float>& logits) {
    std::vector<Index> out;
    const Index classes = logits.dim(1);
    for (Index r = 0; r < logits.dim(0); ++r) {
        const float* row = logits.data() + r * classes;
        out.push_back(static_cast<Index>(std::max_element(row, row + classes) - row));
    }
    return out;
}

void expect_digits_predictions(Precision precision) {
    const std::string path = std::string(VIT3D_EXAMPLE_DATA_DIR) + "/digits/digits_vit.safetensors";
    const auto f32 = io::load_model<float>(path);
    io::LoadOptions options;
    options.precision = precision;
    const auto low = io::load_model<float>(path, options);
    ASSERT_EQ(low.precision(), precision);
    const Digits data = digits_test_set(f32);
    const Index n = data.x.dim(0);
    ASSERT_EQ(n, 360);
    const std::vector<Index> expected = predictions(f32.forward(data.x, io::ModelOutput::logits));
    Index f32_correct = 0;
    for (Index i = 0; i < n; ++i) f32_correct += expected[std::size_t(i)] == data.labels(i);
    vit3d::test::for_each_isa([&](vit3d::Isa isa) {
        const std::vector<Index> got = predictions(low.forward(data.x, io::ModelOutput::logits));
        Index agree = 0, correct = 0;
        for (Index i = 0; i < n; ++i) {
            agree += got[std::size_t(i)] == expected[std::size_t(i)];
            correct += got[std::size_t(i)] == data.labels(i);
        }
        const double agreement = 100.0 * double(agree) / double(n);
        const double accuracy = 100.0 * double(correct) / double(n);
        const double f32_accuracy = 100.0 * double(f32_correct) / double(n);
        std::cout << "[ " << vit3d::precision_name(precision) << "     ] digits, " << vit3d::isa_name(isa)
                  << " (" << kernel_name(precision) << "): " << vit3d::precision_name(precision)
                  << " agrees with f32 on " << agree << "/" << n << " images (" << agreement
                  << "%); accuracy " << vit3d::precision_name(precision) << " " << accuracy << "%, f32 "
                  << f32_accuracy << "%" << std::endl;
        EXPECT_GE(agreement, 99.0);
        EXPECT_LE(std::abs(accuracy - f32_accuracy), 0.5);
    });
}

TEST(Int8Models, DigitsGiveTheFloatPredictions) { expect_digits_predictions(Precision::int8); }

TEST(Bf16Models, DigitsGiveTheFloatPredictions) { expect_digits_predictions(Precision::bf16); }

// --- random-weight ViT-B, 2D and 3D -----------------------------------------------------------------------

// Weights at the scale of a trained model's: matrices, biases and embeddings N(0, 0.02) (timm's init), norm
// weights 1 + N(0, 0.1), so that every LayerNorm output has its channels of about one size.
template <class Model>
void randomize(Model& model) {
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string& name, Tensor<float>& p) {
        const bool norm_weight = p.rank() == 1 && name.size() >= 11 &&
                                 name.compare(name.size() - 7, 7, ".weight") == 0 &&
                                 name.find("norm") != std::string::npos;
        p = norm_weight ? Tensor<float>::randn(p.shape(), seed++, 1.0f, 0.1f)
                        : Tensor<float>::randn(p.shape(), seed++, 0.0f, 0.02f);
    });
}

// Outlier channels as trained ViTs have them: channels 17, 301 and 702 of every block's norm1 and norm2
// (weight and bias) x30, so that those channels of every LayerNorm output are some 30x the others.
template <class Model>
void inject_outliers(Model& model) {
    for (auto& block : model.encoder.blocks)
        for (nn::Norm<float>* norm : {&block.norm1, &block.norm2})
            norm->visit_parameters([](const std::string&, Tensor<float>& p) {
                for (Index k : {17, 301, 702}) p(k) *= 30.0f;
            });
}

// The smallest cosine similarity of the rows of a and b [B, D].
double min_cosine(const Tensor<float>& a, const Tensor<float>& b) {
    double smallest = 1.0;
    const Index D = a.dim(1);
    for (Index r = 0; r < a.dim(0); ++r) {
        double ab = 0, aa = 0, bb = 0;
        for (Index j = 0; j < D; ++j) {
            const double u = a.data()[r * D + j], v = b.data()[r * D + j];
            ab += u * v;
            aa += u * u;
            bb += v * v;
        }
        smallest = std::min(smallest, ab / std::sqrt(aa * bb));
    }
    return smallest;
}

// The pooled features of `model` on x in `precision` against f32, at each level of vit_b_levels: a cosine of
// at least 0.999 (int8) or 0.9999 (bf16).
template <std::size_t N>
void expect_pooled_features_close(models::VisionTransformer<float, N>& model, const Tensor<float>& x,
                                  const std::string& name, Precision precision = Precision::int8) {
    const models::VisionTransformerOutput<float> f32 = model.forward(x);
    nn::set_precision(model, precision);
    const double gate = precision == Precision::bf16 ? 0.9999 : 0.999;
    const vit3d::Isa saved = vit3d::cpu_info().cap;
    for (vit3d::Isa isa : vit_b_levels()) {
        vit3d::set_isa_cap(isa);
        const double cosine = min_cosine(model.forward(x).pooled, f32.pooled);
        std::cout << "[ " << vit3d::precision_name(precision) << "     ] " << name << ", "
                  << vit3d::isa_name(isa) << " (" << kernel_name(precision)
                  << "): cosine similarity of the pooled features, " << vit3d::precision_name(precision)
                  << " vs f32: " << cosine << std::endl;
        EXPECT_GE(cosine, gate) << name << " at " << vit3d::isa_name(isa);
    }
    vit3d::set_isa_cap(saved);
    nn::set_precision(model, Precision::f32);
}

models::VisionTransformerConfig<3> monai_vit_b_96() {
    models::VisionTransformerConfig<3> c = models::monai_vit_b_3d();
    c.input_size = {96, 96, 96};
    c.patch_size = {16, 16, 16};
    return c;
}

TEST(Int8Models, ViTB16PooledFeaturesAreThoseOfF32) {
    vit3d::test::report_isas_once();
    models::ViT<float> vit(models::vit_b_16());
    randomize(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 3, 224, 224}, 7);
    expect_pooled_features_close(vit, x, "ViT-B/16 224x224");
}

TEST(Int8Models, ViTB16WithOutlierChannelsStaysClose) {
    vit3d::test::report_isas_once();
    models::ViT<float> vit(models::vit_b_16());
    randomize(vit);
    inject_outliers(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 3, 224, 224}, 7);
    expect_pooled_features_close(vit, x, "ViT-B/16 224x224, outlier channels x30");
}

TEST(Int8Models, ViT3DPooledFeaturesAreThoseOfF32) {
    vit3d::test::report_isas_once();
    models::ViT3D<float> vit(monai_vit_b_96());
    randomize(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 1, 96, 96, 96}, 8);
    expect_pooled_features_close(vit, x, "MONAI ViT-B 96^3, patch 16^3");
}

TEST(Int8Models, ViT3DWithOutlierChannelsStaysClose) {
    vit3d::test::report_isas_once();
    models::ViT3D<float> vit(monai_vit_b_96());
    randomize(vit);
    inject_outliers(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 1, 96, 96, 96}, 8);
    expect_pooled_features_close(vit, x, "MONAI ViT-B 96^3, patch 16^3, outlier channels x30");
}

// bf16 keeps a float's exponent range, so outlier channels need nothing of their own: each model with and
// without them.
TEST(Bf16Models, ViTB16PooledFeaturesAreThoseOfF32) {
    vit3d::test::report_isas_once();
    models::ViT<float> vit(models::vit_b_16());
    randomize(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 3, 224, 224}, 7);
    expect_pooled_features_close(vit, x, "ViT-B/16 224x224", Precision::bf16);
    inject_outliers(vit);
    expect_pooled_features_close(vit, x, "ViT-B/16 224x224, outlier channels x30", Precision::bf16);
}

TEST(Bf16Models, ViT3DPooledFeaturesAreThoseOfF32) {
    vit3d::test::report_isas_once();
    models::ViT3D<float> vit(monai_vit_b_96());
    randomize(vit);
    const Tensor<float> x = Tensor<float>::randn({1, 1, 96, 96, 96}, 8);
    expect_pooled_features_close(vit, x, "MONAI ViT-B 96^3, patch 16^3", Precision::bf16);
    inject_outliers(vit);
    expect_pooled_features_close(vit, x, "MONAI ViT-B 96^3, patch 16^3, outlier channels x30",
                                 Precision::bf16);
}

}  // namespace
