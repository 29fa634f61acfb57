// nn::Linear in bf16 (core/precision.hpp), at every level the CPU runs (bf16's native kernel at avx512 where
// the CPU has AVX512-BF16, emulated elsewhere): the bf16 GEMM itself, close to the float product; the
// activation epilogue; the pack kept, dropped when the weight is written and sized as bf16; double layers
// refused; a gated Mlp and a whole module through nn::set_precision.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/precision.hpp>
#include <vit3d/detail/bf16_gemm.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Precision;
using vit3d::Tensor;
namespace nn = vit3d::nn;

nn::Linear<float> random_linear(Index in, Index out, std::uint64_t seed) {
    return nn::Linear<float>(Tensor<float>::randn({out, in}, seed, 0.0f, 0.05f),
                             Tensor<float>::randn({out}, seed + 1));
}

double relative_error(const Tensor<float>& a, const Tensor<float>& b) {
    double error = 0, norm = 0;
    for (Index i = 0; i < a.size(); ++i) {
        error += (double(a.data()[i]) - b.data()[i]) * (double(a.data()[i]) - b.data()[i]);
        norm += double(b.data()[i]) * b.data()[i];
    }
    return std::sqrt(error / norm);
}

TEST(Bf16Linear, IsTheBf16GemmAndCloseToTheFloatProduct) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        nn::Linear<float> layer = random_linear(768, 300, 3);
        const Tensor<float> x = Tensor<float>::randn({2, 197, 768}, 5);
        const Tensor<float> f32 = layer.forward(x);
        layer.set_precision(Precision::bf16);
        ASSERT_EQ(layer.precision(), Precision::bf16);
        const Tensor<float> y = layer.forward(x);
        ASSERT_EQ(y.shape(), f32.shape());
        const auto weights = vit3d::detail::Bf16Weights::convert(layer.weight.data(), 768, 300, 768, isa);
        Tensor<float> direct({2, 197, 300});
        vit3d::detail::bf16_gemm_abt(2 * 197, x.data(), 768, weights, layer.bias->data(), direct.data(), 300,
                                     vit3d::num_threads());
        for (Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], direct.data()[i]) << i;
        const double error = relative_error(y, f32);
        std::cout << "[ bf16     ] " << vit3d::isa_name(isa) << " ("
                  << vit3d::enum_name(vit3d::detail::active_bf16_kernel())
                  << "): relative error of a 768 -> 300 layer, bf16 vs f32: " << error << std::endl;
        EXPECT_LT(error, 0.005);
        // The pack: 2 bytes per weight natively, the float pack of the rounded weight when emulated.
        const Index bytes = layer.packed_weight_bytes();
        EXPECT_GE(bytes, 768 * 300 * (weights.kernel == vit3d::detail::Bf16Kernel::avx512bf16 ? 2 : 4));
        EXPECT_LE(bytes, 768 * 320 * (weights.kernel == vit3d::detail::Bf16Kernel::avx512bf16 ? 2 : 4));
    });
}

TEST(Bf16Linear, RunsTheActivationOnTheBf16Product) {
    vit3d::test::for_each_isa([](vit3d::Isa) {
        nn::Linear<float> layer = random_linear(96, 130, 9);
        layer.set_precision(Precision::bf16);
        const Tensor<float> x = Tensor<float>::randn({37, 96}, 2);
        Tensor<float> expected = layer.forward(x);
        nn::apply_activation_range(expected.data(), expected.size(), nn::Activation::gelu,
                                   vit3d::detail::active_isa());
        const Tensor<float> y = layer.forward(x, nn::Activation::gelu);
        for (Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], expected.data()[i]) << i;
    });
}

TEST(Bf16Linear, AWrittenWeightIsConvertedAgain) {
    nn::Linear<float> layer = random_linear(64, 48, 4);
    layer.set_precision(Precision::bf16);
    layer.pack_weight();
    const Tensor<float> x = Tensor<float>::randn({5, 64}, 6);
    const Tensor<float> before = layer.forward(x);
    layer.weight.data()[0] += 1.0f;  // through the non-const tensor: the pack is dropped
    nn::Linear<float> fresh(layer.weight, layer.bias);
    fresh.set_precision(Precision::bf16);
    const Tensor<float> after = layer.forward(x), expected = fresh.forward(x);
    for (Index i = 0; i < after.size(); ++i) ASSERT_EQ(after.data()[i], expected.data()[i]) << i;
    EXPECT_NE(after.data()[0], before.data()[0]);
    layer.set_precision(Precision::f32);  // and back: the float weight was never changed by bf16
    EXPECT_EQ(layer.packed_weight_bytes(), 0);
    const Tensor<float> f32 = layer.forward(x);
    nn::Linear<float> plain(layer.weight, layer.bias);
    const Tensor<float> expected_f32 = plain.forward(x);
    for (Index i = 0; i < f32.size(); ++i) ASSERT_EQ(f32.data()[i], expected_f32.data()[i]) << i;
}

TEST(Bf16Linear, DoubleLayersAreRefused) {
    nn::Linear<double> layer(8, 4);
    EXPECT_THAT([&] { layer.set_precision(Precision::bf16); },
                ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr(
                    "vit3d::nn::Linear::set_precision: expected f32 for a layer of double "
                    "(bf16 runs float layers only), got bf16")));
    EXPECT_EQ(layer.precision(), Precision::f32);
}

TEST(Bf16Linear, AGatedMlpRunsItsLayersInBf16) {
    nn::MlpConfig config;
    config.dim = 64;
    config.hidden = 96;
    config.kind = nn::MlpKind::swiglu;
    config.activation = nn::Activation::silu;
    nn::Mlp<float> mlp(config);
    std::uint64_t seed = 1;
    mlp.visit_parameters([&](const std::string&, Tensor<float>& p) {
        p = Tensor<float>::randn(p.shape(), seed++, 0.0f, 0.1f);
    });
    const Tensor<float> x = Tensor<float>::randn({3, 10, 64}, 11);
    const Tensor<float> f32 = mlp.forward(x);
    nn::set_precision(mlp, Precision::bf16);
    EXPECT_EQ(nn::count_linear_layers(mlp, Precision::bf16), 3);
    const Tensor<float> y = mlp.forward(x);
    const double error = relative_error(y, f32);
    EXPECT_LT(error, 0.01);
    EXPECT_GT(error, 0.0);  // it did run in bf16
}

}  // namespace
