// Linear in int8 (core/precision.hpp, nn/linear.hpp, detail/int8_linear.hpp): close to the float product,
// and exactly the int8 GEMM called directly for an input without outlier channels (per sample: the weight's
// rounding error times the sample's mean row into the bias, then the product); the activation epilogue
// applied; its int8 pack kept, dropped when the weight is written and remade for another int8 kernel; int8
// refused for double; outlier input channels found per sample and computed in float, which keeps an input
// with 3 channels x30 inside the 2% gate that the int8 GEMM alone misses; the rounding error on the mean row
// corrected; a sample's result independent of its batch; and the precision of a whole module set and read
// back, a gated Mlp's fc1 and fc1_x included.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/precision.hpp>
#include <vit3d/detail/int8_linear.hpp>

#include "support/isa_testing.hpp"
#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Precision;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::detail::Int8Weights;
namespace nn = vit3d::nn;

// ||a - b|| / ||b|| over all elements, in double.
double relative_error(const Tensor<float>& a, const Tensor<float>& b) {
    double error = 0, norm = 0;
    for (Index i = 0; i < b.size(); ++i) {
        const double d = double(a.data()[i]) - double(b.data()[i]);
        error += d * d;
        norm += double(b.data()[i]) * double(b.data()[i]);
    }
    return std::sqrt(error / norm);
}

// A layer with the scale of a trained one's: weights N(0, 1 / in), so outputs are about as large as inputs.
nn::Linear<float> random_layer(Index in, Index out, std::uint64_t seed) {
    return nn::Linear<float>(Tensor<float>::randn({out, in}, seed, 0.0f, 1.0f / std::sqrt(float(in))),
                             Tensor<float>::randn({out}, seed + 1, 0.0f, 0.1f));
}

nn::Linear<float> int8_copy(const nn::Linear<float>& layer) {
    nn::Linear<float> copy = layer;
    copy.set_precision(Precision::int8);
    return copy;
}

// x W^T + b through int8_gemm_abt alone, the weight quantised for the active int8 kernel: neither outlier
// channels nor the rounding error's correction.
Tensor<float> plain_int8(const nn::Linear<float>& layer, const Tensor<float>& x) {
    const Index in = layer.in_features(), out = layer.out_features(), rows = x.size() / in;
    const Int8Weights weights =
        Int8Weights::quantize(layer.weight.data(), in, out, in, vit3d::detail::active_int8_kernel());
    Tensor<float> y({rows, out});
    vit3d::detail::int8_gemm_abt(rows, x.data(), in, weights, layer.bias ? layer.bias->data() : nullptr,
                                 y.data(), out, vit3d::num_threads());
    return y;
}

// What the int8 Linear computes for x [samples, rows, in] without outlier channels, by calls of
// int8_gemm_abt, per sample: the weight's rounding error R times the sample's mean row, added to the bias
// (R in blocks of rows); then the product with that bias.
Tensor<float> direct_int8(const nn::Linear<float>& layer, const Tensor<float>& x) {
    const Index in = layer.in_features(), out = layer.out_features(), samples = x.dim(0),
                rows = x.size() / in / samples;
    const auto weights = vit3d::detail::Int8AffineWeights::quantize(layer.weight.data(), in, out, in,
                                                                    vit3d::detail::active_int8_kernel());
    const int threads = vit3d::num_threads();
    Tensor<float> y({samples * rows, out});
    for (Index s = 0; s < samples; ++s) {
        const float* xs = x.data() + s * rows * in;
        EXPECT_TRUE(vit3d::detail::int8_outlier_channels(xs, rows, in).empty());
        Tensor<float> mean({in}), bias({out});
        for (Index k = 0; k < in; ++k) {
            float sum = 0.0f;
            for (Index i = 0; i < rows; ++i) sum += xs[i * in + k];  // in the order of int8_affine's sums
            mean(k) = sum / static_cast<float>(rows);
        }
        for (std::size_t b = 0; b < weights.rounding.size(); ++b) {
            const Index first = Index(b) * vit3d::detail::int8_rounding_block_rows;
            vit3d::detail::int8_gemm_abt(1, mean.data(), in, weights.rounding[b],
                                         layer.bias ? layer.bias->data() + first : nullptr,
                                         bias.data() + first, out, threads);
        }
        vit3d::detail::int8_gemm_abt(rows, xs, in, weights.weights, bias.data(), y.data() + s * rows * out,
                                     out, threads);
    }
    Shape shape = x.shape();
    shape.back() = out;
    return y.reshape(shape);
}

TEST(Int8Linear, PrecisionNamesReadBothWays) {
    EXPECT_STREQ(vit3d::precision_name(Precision::f32), "f32");
    EXPECT_STREQ(vit3d::precision_name(Precision::int8), "int8");
    EXPECT_EQ(vit3d::parse_precision("int8"), Precision::int8);
    EXPECT_EQ(vit3d::parse_precision("f32"), Precision::f32);
    EXPECT_EQ(vit3d::parse_precision("bf16"), Precision::bf16);
    EXPECT_THAT([] { vit3d::parse_precision("fp16"); },
                ::testing::ThrowsMessage<std::invalid_argument>(
                    "vit3d::parse_precision: expected f32, bf16 or int8, got \"fp16\""));
}

TEST(Int8Linear, IsCloseToTheFloatProductAndIsTheInt8GemmItself) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        const nn::Linear<float> layer = random_layer(768, 300, 1);
        const nn::Linear<float> int8 = int8_copy(layer);
        const Tensor<float> x = Tensor<float>::randn({2, 50, 768}, 2);
        const Tensor<float> y = int8.forward(x), expected = layer.forward(x);
        ASSERT_EQ(y.shape(), expected.shape());
        const double error = relative_error(y, expected);
        std::cout << "[ int8     ] " << vit3d::isa_name(isa) << " ("
                  << vit3d::enum_name(vit3d::detail::active_int8_kernel())
                  << "): Linear 768 -> 300, relative error " << error << std::endl;
        EXPECT_LT(error, 0.02);
        EXPECT_GT(error, 0.0) << "the product is quantised";
        EXPECT_TENSOR_EQ(y, direct_int8(layer, x));
        EXPECT_TENSOR_EQ(int8.forward(x), y) << "the second call, from the kept pack";
    });
}

TEST(Int8Linear, AppliesTheActivationAsTheFloatLayerDoes) {
    vit3d::test::for_each_isa([](vit3d::Isa) {
        const nn::Linear<float> int8 = int8_copy(random_layer(96, 200, 3));
        const Tensor<float> x = Tensor<float>::randn({37, 96}, 4);
        for (nn::Activation a : {nn::Activation::gelu, nn::Activation::relu, nn::Activation::silu})
            EXPECT_TENSOR_EQ(int8.forward(x, a), nn::activate(int8.forward(x), a)) << nn::activation_name(a);
    });
}

TEST(Int8Linear, KeepsItsPackAndRemakesItAfterAWriteOrForAnotherKernel) {
    nn::Linear<float> layer = random_layer(130, 70, 5);
    layer.set_precision(Precision::int8);
    EXPECT_EQ(layer.precision(), Precision::int8);
    const Tensor<float> x = Tensor<float>::randn({9, 130}, 6);
    EXPECT_EQ(layer.packed_weight_bytes(), 0);
    layer.pack_weight();
    const Index bytes = vit3d::detail::Int8AffineWeights::quantize(layer.weight.data(), 130, 70, 130,
                                                                   vit3d::detail::active_int8_kernel())
                            .bytes();
    EXPECT_EQ(layer.packed_weight_bytes(), bytes) << "pack_weight makes the int8 pack";
    EXPECT_TENSOR_EQ(layer.forward(x), direct_int8(layer, x));

    layer.weight(3, 4) = 25.0f;  // a write through the tensor drops the pack
    EXPECT_TENSOR_EQ(layer.forward(x), direct_int8(layer, x));
    EXPECT_EQ(layer.packed_weight_bytes(), bytes) << "and the next call makes the new one";

    vit3d::test::for_each_isa([&](vit3d::Isa isa) {  // each level's kernel: a pack for it
        EXPECT_TENSOR_EQ(layer.forward(x), direct_int8(layer, x)) << vit3d::isa_name(isa);
    });

    layer.set_precision(Precision::f32);  // drops the int8 pack, and no float pack was made meanwhile
    EXPECT_EQ(layer.packed_weight_bytes(), 0);
    const nn::Linear<float> plain(layer.weight, layer.bias);  // the float weight was left as it was
    EXPECT_TENSOR_EQ(layer.forward(x), plain.forward(x));
}

TEST(Int8Linear, ConcurrentForwardsOfOneLayerAgree) {
    const nn::Linear<float> layer = int8_copy(random_layer(200, 150, 7));
    const Tensor<float> x = Tensor<float>::randn({20, 200}, 8);
    std::vector<Tensor<float>> results(4);
    std::vector<std::thread> threads;
    for (auto& r : results) threads.emplace_back([&] { r = layer.forward(x); });
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_TENSOR_EQ(r, results[0]);
}

TEST(Int8Linear, IsRefusedForDouble) {
    nn::Linear<double> layer(4, 3);
    EXPECT_THAT([&] { layer.set_precision(Precision::int8); },
                ::testing::ThrowsMessage<std::invalid_argument>(
                    HasSubstr("vit3d::nn::Linear::set_precision: expected f32 for a layer of double")));
    EXPECT_EQ(layer.precision(), Precision::f32);
    nn::Mlp<double> mlp(4, 8);
    EXPECT_THROW(nn::set_precision(mlp, Precision::int8), std::invalid_argument);
    EXPECT_NO_THROW(nn::set_precision(mlp, Precision::f32));
}

// --- outlier channels -------------------------------------------------------------------------------------

// x [rows, in] ~ N(0, 1) with `channels` scaled by `factor`: a LayerNorm output of a trained ViT.
Tensor<float> with_outliers(Index rows, Index in, const std::vector<Index>& channels, float factor,
                            std::uint64_t seed) {
    Tensor<float> x = Tensor<float>::randn({rows, in}, seed);
    for (Index i = 0; i < rows; ++i)
        for (Index k : channels) x(i, k) *= factor;
    return x;
}

TEST(Int8Linear, FindsTheOutlierChannelsByTheirMaximaAgainstTheMedian) {
    using vit3d::detail::int8_outlier_channels;
    const Tensor<float> plain = Tensor<float>::randn({197, 768}, 9);
    EXPECT_TRUE(int8_outlier_channels(plain.data(), 197, 768).empty()) << "Gaussian channels are alike";
    const Tensor<float> x = with_outliers(197, 768, {5, 300, 767}, 30.0f, 9);
    EXPECT_EQ(int8_outlier_channels(x.data(), 197, 768), (std::vector<Index>{5, 300, 767}));
    // One token's value is enough: the maximum over rows, as the range of that token's row.
    Tensor<float> one = plain;
    one(17, 40) = 40.0f;
    EXPECT_EQ(int8_outlier_channels(one.data(), 197, 768), (std::vector<Index>{40}));
    // At most in / 8, the largest: 16 channels of 64 grown, of which 8 (the largest) are kept.
    std::vector<Index> grown;
    for (Index k = 0; k < 16; ++k) grown.push_back(4 * k);
    Tensor<float> many = with_outliers(50, 64, grown, 20.0f, 10);
    for (Index i = 0; i < 50; ++i)
        for (Index k = 8; k < 16; ++k) many(i, 4 * k) *= 3.0f;
    EXPECT_EQ(int8_outlier_channels(many.data(), 50, 64),
              (std::vector<Index>{32, 36, 40, 44, 48, 52, 56, 60}));
    EXPECT_TRUE(int8_outlier_channels(many.data(), 50, 7).empty()) << "fewer than 8 channels: none";
    const Tensor<float> zeros({4, 64});
    EXPECT_TRUE(int8_outlier_channels(zeros.data(), 4, 64).empty());
}

// 3 channels x30: per-row quantisation alone loses the other channels' bits and misses the 2% gate; with the
// outlier channels in float the error stays well inside it.
TEST(Int8Linear, OutlierChannelsKeepTheErrorLow) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        const nn::Linear<float> layer = random_layer(768, 256, 11);
        const nn::Linear<float> int8 = int8_copy(layer);
        const Tensor<float> x = with_outliers(197, 768, {11, 222, 600}, 30.0f, 12).reshape({1, 197, 768});
        const Tensor<float> expected = layer.forward(x);
        const double with_handling = relative_error(int8.forward(x), expected);
        const double without = relative_error(plain_int8(layer, x), expected);
        std::cout << "[ int8     ] " << vit3d::isa_name(isa) << " ("
                  << vit3d::enum_name(vit3d::detail::active_int8_kernel())
                  << "): 3 input channels x30, relative error " << with_handling
                  << " with outlier channels in float, " << without << " without" << std::endl;
        EXPECT_LT(with_handling, 0.02);
        EXPECT_GT(without, 0.02) << "per-row quantisation alone fails the gate";
        EXPECT_GT(without, 4 * with_handling);
        // And with an activation: the float part comes first, the epilogue after the int8 part.
        EXPECT_TENSOR_EQ(int8.forward(x, nn::Activation::gelu),
                         nn::activate(int8.forward(x), nn::Activation::gelu));
    });
}

// --- the weights' rounding error on the mean row
// ------------------------------------------------------------

// The mean over rows, [rows, n] -> [n].
Tensor<float> row_mean(const Tensor<float>& y) {
    const Index n = y.dim(-1), rows = y.size() / n;
    Tensor<float> mean({n});
    for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < n; ++j) mean(j) += y.data()[i * n + j] / float(rows);
    return mean;
}

// Tokens that share much of their features, as a ViT's do: x = mu + noise, mu the same in every row. The
// weights' rounding error makes an error R mu common to all rows of the plain int8 product, which the
// correction removes: the error of the rows' mean drops, and the whole error with it.
TEST(Int8Linear, TheRoundingErrorOnTheMeanRowIsCorrected) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        const nn::Linear<float> layer = random_layer(768, 256, 13);
        const nn::Linear<float> int8 = int8_copy(layer);
        const Tensor<float> mu = Tensor<float>::randn({1, 768}, 14);
        const Tensor<float> x =
            (Tensor<float>::randn({197, 768}, 15, 0.0f, 0.5f) + mu).reshape({1, 197, 768});
        const Tensor<float> expected = layer.forward(x), corrected = int8.forward(x),
                            plain = plain_int8(layer, x);
        const double common = relative_error(row_mean(corrected), row_mean(expected)),
                     common_plain = relative_error(row_mean(plain), row_mean(expected));
        const double whole = relative_error(corrected, expected),
                     whole_plain = relative_error(plain, expected);
        std::cout << "[ int8     ] " << vit3d::isa_name(isa) << " ("
                  << vit3d::enum_name(vit3d::detail::active_int8_kernel())
                  << "): rows sharing a mean, relative error of the rows' mean " << common << " corrected, "
                  << common_plain << " not; of the whole output " << whole << ", " << whole_plain
                  << std::endl;
        EXPECT_LT(common, common_plain / 4);
        EXPECT_LT(whole, whole_plain);
        EXPECT_TENSOR_EQ(corrected, direct_int8(layer, x));
    });
}

// --- samples -----------------------------------------------------------------------------------------------

// Outlier channels and the mean row are each sample's own (an index of the first axis; a row of a matrix), so
// a sample gives the same result alone as in any batch: here with a sample that has outlier channels between
// two that do not, whose GEMMs are shared.
TEST(Int8Linear, ASamplesResultDoesNotDependOnTheBatch) {
    const nn::Linear<float> int8 = int8_copy(random_layer(128, 90, 16));
    Tensor<float> x = Tensor<float>::randn({4, 30, 128}, 17);
    for (Index i = 0; i < 30; ++i) x(1, i, 7) *= 40.0f;
    const Tensor<float> batch = int8.forward(x);
    for (Index s = 0; s < 4; ++s)
        EXPECT_TENSOR_EQ(batch.narrow(0, s, 1), int8.forward(x.narrow(0, s, 1))) << "sample " << s;
    EXPECT_TENSOR_EQ(int8.forward(x.narrow(0, 1, 3)).narrow(0, 2, 1), batch.narrow(0, 3, 1));
    const Tensor<float> rows = x.reshape({120, 128}), per_row = int8.forward(rows);  // 120 samples of a row
    for (Index r : {0, 31, 119})
        EXPECT_TENSOR_EQ(per_row.narrow(0, r, 1), int8.forward(rows.narrow(0, r, 1))) << "row " << r;
}

// --- modules ----------------------------------------------------------------------------------------------

template <class Module>
void randomize(Module& m, std::uint64_t seed) {
    m.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.0f, 1.0f / std::sqrt(float(t.dim(-1))));
    });
}

// Every Linear of a gated Mlp is shown to the precision visitor, fc1 and fc1_x too (the Mlp stands in for
// them before packing visitors only); in int8 the gate is applied after fc1's int8 product, as the unfused
// float path does, and pack_weights packs the three Linear layers' int8 weights.
TEST(Int8Linear, EveryLinearOfAGatedMlpTakesThePrecision) {
    for (nn::MlpKind kind :
         {nn::MlpKind::mlp, nn::MlpKind::glu, nn::MlpKind::swiglu_packed, nn::MlpKind::swiglu}) {
        nn::MlpConfig c;
        c.dim = 64;
        c.hidden = 96;
        c.kind = kind;
        c.activation = kind == nn::MlpKind::mlp ? nn::Activation::gelu : nn::Activation::silu;
        nn::Mlp<float> mlp(c);
        randomize(mlp, 20);
        const Tensor<float> x = Tensor<float>::randn({3, 10, 64}, 21);
        const Tensor<float> expected = mlp.forward(x);
        nn::pack_weights(mlp);  // a float pack (the gated one) made before
        const Index linears = kind == nn::MlpKind::swiglu ? 3 : 2;
        EXPECT_EQ(nn::count_linear_layers(mlp, Precision::f32), linears);
        nn::set_precision(mlp, Precision::int8);
        EXPECT_EQ(nn::count_linear_layers(mlp, Precision::int8), linears) << vit3d::enum_name(kind);
        EXPECT_EQ(nn::count_linear_layers(mlp, Precision::f32), 0);
        EXPECT_EQ(mlp.fc1.precision(), Precision::int8);
        if (mlp.fc1_x) {
            EXPECT_EQ(mlp.fc1_x->precision(), Precision::int8);
        }
        EXPECT_EQ(mlp.fc2.precision(), Precision::int8);

        const Tensor<float> y = mlp.forward(x);
        EXPECT_EQ(mlp.packed_weight_bytes(), 0) << "the gated float pack is dropped";
        const double error = relative_error(y, expected);
        EXPECT_LT(error, 0.03) << vit3d::enum_name(kind);
        Tensor<float> h;
        if (kind == nn::MlpKind::mlp) {
            h = mlp.fc1.forward(x, c.activation);
        } else if (kind == nn::MlpKind::swiglu) {
            h = nn::activate(mlp.fc1.forward(x), c.activation) * mlp.fc1_x->forward(x);
        } else {
            const Tensor<float> ab = mlp.fc1.forward(x);
            const Tensor<float> a = ab.narrow(-1, 0, 96), b = ab.narrow(-1, 96, 96);
            h = kind == nn::MlpKind::glu ? a * nn::activate(b, c.activation)
                                         : nn::activate(a, c.activation) * b;
        }
        EXPECT_TENSOR_EQ(y, mlp.fc2.forward(h)) << vit3d::enum_name(kind);

        const Index bytes = nn::pack_weights(mlp);
        EXPECT_EQ(bytes, mlp.fc1.packed_weight_bytes() + (mlp.fc1_x ? mlp.fc1_x->packed_weight_bytes() : 0) +
                             mlp.fc2.packed_weight_bytes());
        EXPECT_GT(mlp.fc1.packed_weight_bytes(), 0);

        nn::set_precision(mlp, Precision::f32);
        EXPECT_TENSOR_EQ(mlp.forward(x), expected) << "back to f32: the float weights are unchanged";
    }
}

// Every Linear of a model, the head included; patch embeddings are not Linear layers.
TEST(Int8Linear, SetPrecisionReachesEveryLinearOfAModel) {
    vit3d::models::VisionTransformerConfig<2> c;
    c.input_size = {32, 32};
    c.patch_size = {8, 8};
    c.dim = 64;
    c.depth = 2;
    c.heads = 4;
    c.mlp_dim = 128;
    c.num_classes = 5;
    vit3d::models::ViT<float> vit(c);
    randomize(vit, 30);
    const Index linears = nn::count_linear_layers(vit, Precision::f32);
    EXPECT_EQ(linears, 2 * 4 + 1) << "qkv, proj, fc1, fc2 per block, and the head";
    const Tensor<float> x = Tensor<float>::randn({2, 3, 32, 32}, 31);
    const auto expected = vit.forward(x);
    nn::set_precision(vit, Precision::int8);
    EXPECT_EQ(nn::count_linear_layers(vit, Precision::int8), linears);
    EXPECT_EQ(vit.head->precision(), Precision::int8);
    const auto y = vit.forward(x);
    EXPECT_LT(relative_error(y.logits, expected.logits), 0.05);
    EXPECT_GT(relative_error(y.logits, expected.logits), 0.0);
    const Index int8_bytes = nn::pack_weights(vit);
    EXPECT_GT(int8_bytes, 0);
    EXPECT_LT(int8_bytes, nn::count_parameters(vit) * Index(sizeof(float)) / 2) << "a byte per weight or so";
}

}  // namespace
