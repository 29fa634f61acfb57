// The fused (FlashAttention-style) kernel against the naive one, which test_attention.cpp checks against
// the definition: random shapes, any head_dim, biases and masks of every broadcast shape, cross-attention,
// fully masked rows, odd lengths (1, 7, 197, 4097), float and double. Plus the vectorised exponential the
// fused softmax relies on, thread-count independence and the workspace bound.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/detail/packet_math.hpp>
#include <vit3d/nn/scaled_dot_product_attention.hpp>

#include "support/tensor_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::nn::AttentionKernel;
using vit3d::nn::scaled_dot_product_attention;

template <class T>
constexpr double tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

// max |a - b| <= tol * max(1, max |b|): relative to the size of the output.
template <class T>
::testing::AssertionResult Agree(const Tensor<T>& fused, const Tensor<T>& naive) {
    double scale = 1.0;
    for (T x : naive) scale = std::max(scale, std::abs(static_cast<double>(x)));
    return vit3d::test::TensorsClose(fused, naive, 0.0, tolerance<T>() * scale);
}

template <class T>
Tensor<std::uint8_t> random_mask(const Shape& shape, std::uint64_t seed, double keep) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution attend(keep);
    Tensor<std::uint8_t> m(shape);
    for (auto& x : m) x = attend(rng) ? 1 : 0;
    return m;
}

template <class T>
class FusedAttention : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FusedAttention, Types);

TYPED_TEST(FusedAttention, VectorisedExpIsWithinTwoUlpAndFlushesBelowTheNormalRange) {
    using T = TypeParam;
    using P = vit3d::detail::Packet<T>;
    constexpr int W = vit3d::detail::packet_width<T>;
    const T threshold = vit3d::detail::exp_flush_threshold<T>;
    // Every argument a softmax feeds it lies in [-inf, 0]; sweep that range densely, past the threshold.
    std::vector<T> xs{T(0),
                      -std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::max(),
                      threshold,
                      std::nextafter(threshold, T(0)),
                      std::nextafter(threshold, T(-1000)),
                      -std::numeric_limits<T>::denorm_min()};
    const int steps = 400000;
    const double lowest = static_cast<double>(threshold) * 1.25;
    for (int i = 0; i <= steps; ++i) xs.push_back(static_cast<T>(lowest * i / steps));
    while (xs.size() % W) xs.push_back(T(0));
    double worst_ulp = 0;
    for (std::size_t i = 0; i < xs.size(); i += W) {
        alignas(64) T out[W];
        Eigen::internal::pstoreu(out, vit3d::detail::exp_flushed<T>(Eigen::internal::ploadu<P>(&xs[i])));
        for (int l = 0; l < W; ++l) {
            const T x = xs[i + l];
            if (x < threshold) {
                ASSERT_EQ(out[l], T(0)) << "exp(" << x << ")";
                continue;
            }
            const long double exact = std::exp(static_cast<long double>(x));
            const T rounded = static_cast<T>(exact);
            const long double ulp = std::nextafter(rounded, std::numeric_limits<T>::infinity()) - rounded;
            worst_ulp = std::max(worst_ulp, static_cast<double>(std::abs(out[l] - exact) / ulp));
        }
    }
    EXPECT_LE(worst_ulp, 2.0);
}

TYPED_TEST(FusedAttention, VectorisedExp2IsWithinTwoUlpAndFlushesBelowTheNormalRange) {
    using T = TypeParam;
    using P = vit3d::detail::Packet<T>;
    constexpr int W = vit3d::detail::packet_width<T>;
    // The fused softmax's scores are in base 2: 2^x for x in [-inf, 0]. float flushes below 2^-126; double
    // (computed as e^(x ln 2)) below its own normal range.
    const double flush = std::is_same_v<T, float> ? -126.0 : -1022.0;
    std::vector<T> xs{T(0),
                      -std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::max(),
                      T(flush),
                      std::nextafter(T(flush), T(0)),
                      std::nextafter(T(flush), T(-2000)),
                      T(-0.5),
                      T(0.5) - T(1)};
    const int steps = 400000;
    for (int i = 0; i <= steps; ++i) xs.push_back(static_cast<T>(flush * 1.03 * i / steps));
    while (xs.size() % W) xs.push_back(T(0));
    double worst_ulp = 0;
    for (std::size_t i = 0; i < xs.size(); i += W) {
        alignas(64) T out[W];
        Eigen::internal::pstoreu(out, vit3d::detail::exp2_flushed<T>(Eigen::internal::ploadu<P>(&xs[i])));
        for (int l = 0; l < W; ++l) {
            const T x = xs[i + l];
            if (x < T(flush)) {
                ASSERT_EQ(out[l], T(0)) << "2^" << x;
                continue;
            }
            const long double exact = std::exp2(static_cast<long double>(x));
            const T rounded = static_cast<T>(exact);
            const long double ulp = std::nextafter(rounded, std::numeric_limits<T>::infinity()) - rounded;
            worst_ulp = std::max(worst_ulp, static_cast<double>(std::abs(out[l] - exact) / ulp));
        }
    }
    // double loses up to |x| * 2^-53 relative to the rounding of x ln 2: allow that at |x| <= 1022.
    EXPECT_LE(worst_ulp, (std::is_same_v<T, float> ? 2.0 : 1024.0));
}

struct Case {
    Index B, H, Nq, Nk, d;
};

template <class T>
void expect_kernels_agree(const Case& c, std::uint64_t seed, const Shape* bias_shape, const Shape* mask_shape,
                          double keep = 0.7) {
    const Tensor<T> q = Tensor<T>::randn({c.B, c.H, c.Nq, c.d}, seed);
    const Tensor<T> k = Tensor<T>::randn({c.B, c.H, c.Nk, c.d}, seed + 1);
    const Tensor<T> v = Tensor<T>::randn({c.B, c.H, c.Nk, c.d}, seed + 2);
    Tensor<T> bias;
    Tensor<std::uint8_t> mask;
    if (bias_shape) bias = Tensor<T>::randn(*bias_shape, seed + 3, T(0), T(2));
    if (mask_shape) mask = random_mask<T>(*mask_shape, seed + 4, keep);
    const auto* b = bias_shape ? &bias : nullptr;
    const auto* m = mask_shape ? &mask : nullptr;
    const Tensor<T> fused = scaled_dot_product_attention(q, k, v, b, m, AttentionKernel::fused);
    const Tensor<T> naive = scaled_dot_product_attention(q, k, v, b, m, AttentionKernel::naive);
    EXPECT_TRUE(Agree(fused, naive)) << "B " << c.B << " H " << c.H << " Nq " << c.Nq << " Nk " << c.Nk
                                     << " d " << c.d << (b ? " bias" : "") << (m ? " mask" : "");
}

TYPED_TEST(FusedAttention, AgreesWithNaiveOnOddLengthsAndEveryHeadDim) {
    using T = TypeParam;
    std::uint64_t seed = 100;
    for (Index n : {1, 7, 197})
        for (Index d : {1, 7, 16, 32, 33, 64, 80, 128})
            expect_kernels_agree<T>({2, 3, n, n, d}, seed++, nullptr, nullptr);
}

TYPED_TEST(FusedAttention, AgreesWithNaiveAt4097Tokens) {
    using T = TypeParam;
    const Shape key_padding{1, 1, 1, 4097};
    expect_kernels_agree<T>({1, 2, 4097, 4097, 64}, 7, nullptr, nullptr);
    expect_kernels_agree<T>({1, 1, 4097, 4097, 32}, 8, nullptr, &key_padding, 0.9);
}

TYPED_TEST(FusedAttention, AgreesWithNaiveOnRandomShapesBiasesMasksAndCrossAttention) {
    using T = TypeParam;
    std::mt19937_64 rng(2024);
    auto pick = [&](std::vector<Index> options) { return options[rng() % options.size()]; };
    for (int trial = 0; trial < 60; ++trial) {
        const Case c{pick({1, 2, 3}), pick({1, 2, 4}), pick({1, 5, 13, 64, 97, 300}),
                     pick({1, 3, 64, 65, 255, 257, 520}), pick({3, 8, 24, 64, 72})};
        // Every way a bias or a mask broadcasts to [B, H, Nq, Nk].
        const std::vector<Shape> shapes{
            {c.B, c.H, c.Nq, c.Nk}, {1, c.H, c.Nq, c.Nk}, {c.Nq, c.Nk}, {c.B, 1, 1, c.Nk}, {c.Nk},
            {c.B, c.H, c.Nq, 1},    {1, 1, c.Nq, 1}};
        const Shape bias_shape = shapes[rng() % shapes.size()];
        const Shape mask_shape = shapes[rng() % shapes.size()];
        const int variant = trial % 4;
        const double keep = trial % 3 == 0 ? 0.1 : 0.7;  // sparse masks leave some rows fully masked
        expect_kernels_agree<T>(c, 1000 + trial, variant & 1 ? &bias_shape : nullptr,
                                variant & 2 ? &mask_shape : nullptr, keep);
    }
}

TYPED_TEST(FusedAttention, FullyMaskedRowsGiveZero) {
    using T = TypeParam;
    const Tensor<T> q = Tensor<T>::randn({1, 2, 5, 16}, 1), k = Tensor<T>::randn({1, 2, 300, 16}, 2),
                    v = Tensor<T>::randn({1, 2, 300, 16}, 3);
    Tensor<std::uint8_t> mask = Tensor<std::uint8_t>::ones({1, 2, 5, 300});
    for (Index j = 0; j < 300; ++j) mask(0, 1, 3, j) = 0;  // head 1, query 3 sees nothing
    for (Index j = 0; j < 290; ++j) mask(0, 0, 0, j) = 0;  // only keys in the last key tile
    const Tensor<T> fused = scaled_dot_product_attention(q, k, v, nullptr, &mask, AttentionKernel::fused);
    for (Index c = 0; c < 16; ++c) EXPECT_EQ(fused(0, 1, 3, c), T(0));
    EXPECT_TRUE(Agree(fused, scaled_dot_product_attention(q, k, v, nullptr, &mask, AttentionKernel::naive)));
    // A -inf bias masks as well.
    Tensor<T> bias = Tensor<T>::zeros({1, 1, 5, 300});
    for (Index j = 0; j < 300; ++j) bias(0, 0, 2, j) = -std::numeric_limits<T>::infinity();
    const Tensor<T> biased = scaled_dot_product_attention(q, k, v, &bias, nullptr, AttentionKernel::fused);
    for (Index c = 0; c < 16; ++c) EXPECT_EQ(biased(0, 0, 2, c), T(0));
}

TYPED_TEST(FusedAttention, NoKeysAttendsNothing) {
    using T = TypeParam;
    const Tensor<T> q = Tensor<T>::randn({1, 1, 3, 8}, 1), kv = Tensor<T>::empty({1, 1, 0, 8});
    EXPECT_TENSOR_EQ(scaled_dot_product_attention(q, kv, kv, nullptr, nullptr, AttentionKernel::fused),
                     Tensor<T>::zeros({1, 1, 3, 8}));
}

TEST(FusedAttention, ResultDoesNotDependOnTheThreadCount) {
    const Tensor<float> q = Tensor<float>::randn({2, 3, 250, 64}, 1),
                        k = Tensor<float>::randn({2, 3, 400, 64}, 2),
                        v = Tensor<float>::randn({2, 3, 400, 64}, 3);
    vit3d::set_num_threads(1);
    const Tensor<float> one = scaled_dot_product_attention(q, k, v, nullptr, nullptr, AttentionKernel::fused);
    vit3d::set_num_threads(2);
    const Tensor<float> two = scaled_dot_product_attention(q, k, v, nullptr, nullptr, AttentionKernel::fused);
    vit3d::set_num_threads(0);
    EXPECT_TENSOR_EQ(one, two);
}

TEST(FusedAttention, WorkspaceGrowsLinearlyWithTokensAndStaysBelow64MiBAt16384) {
    using vit3d::nn::attention_workspace_bytes;
    const Index at4k = attention_workspace_bytes<float>(AttentionKernel::fused, 12, 4096, 4096, 64, 2);
    const Index at16k = attention_workspace_bytes<float>(AttentionKernel::fused, 12, 16384, 16384, 64, 2);
    EXPECT_LT(at16k, Index(64) << 20);
    EXPECT_LT(at16k, 5 * at4k);  // linear in N (the naive kernel's is quadratic)
    EXPECT_EQ(attention_workspace_bytes<float>(AttentionKernel::naive, 12, 16384, 16384, 64, 2),
              Index(2) * 16384 * 16384 * 4);
}

TEST(FusedAttention, RejectsBadShapesAndWeightsRequests) {
    const Tensor<float> q = Tensor<float>::randn({1, 2, 5, 8}, 1), k = Tensor<float>::randn({1, 2, 6, 8}, 2);
    const Tensor<float> bad = Tensor<float>::randn({1, 2, 6, 4}, 3);
    EXPECT_THROW(scaled_dot_product_attention(q, k, bad), vit3d::shape_error);
    const Tensor<float> bias = Tensor<float>::zeros({5, 5});
    try {
        scaled_dot_product_attention(q, k, k, &bias);
        FAIL() << "expected a shape_error";
    } catch (const vit3d::shape_error& e) {
        EXPECT_NE(std::string(e.what()).find("[5, 5]"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("[1, 2, 5, 6]"), std::string::npos) << e.what();
    }
}

}  // namespace
