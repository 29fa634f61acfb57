// The fused (FlashAttention-style) kernel against the naive one, which test_attention.cpp checks against
// the definition: random shapes, any head_dim, biases and masks of every broadcast shape, cross-attention,
// fully masked rows, odd lengths (1, 7, 197, 4097), float and double. Plus the vectorised exponential the
// fused softmax relies on, thread-count independence and the workspace bound.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/detail/packet_math.hpp>
#include <vit3d/nn/scaled_dot_product_attention.hpp>
#include <vit3d/nn/slice_bias.hpp>

#include "support/isa_testing.hpp"
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
    vit3d::test::for_each_isa([&](vit3d::Isa) {
        std::uint64_t seed = 100;
        for (Index n : {1, 7, 197})
            for (Index d : {1, 7, 16, 32, 33, 64, 80, 128})
                expect_kernels_agree<T>({2, 3, n, n, d}, seed++, nullptr, nullptr);
    });
}

TYPED_TEST(FusedAttention, AgreesWithNaiveAt4097Tokens) {
    using T = TypeParam;
    const Shape key_padding{1, 1, 1, 4097};
    expect_kernels_agree<T>({1, 2, 4097, 4097, 64}, 7, nullptr, nullptr);
    expect_kernels_agree<T>({1, 1, 4097, 4097, 32}, 8, nullptr, &key_padding, 0.9);
}

TYPED_TEST(FusedAttention, AgreesWithNaiveOnRandomShapesBiasesMasksAndCrossAttention) {
    using T = TypeParam;
    vit3d::test::for_each_isa([&](vit3d::Isa) {
        std::mt19937_64 rng(2024);
        auto pick = [&](std::vector<Index> options) { return options[rng() % options.size()]; };
        for (int trial = 0; trial < 60; ++trial) {
            const Case c{pick({1, 2, 3}), pick({1, 2, 4}), pick({1, 5, 13, 64, 97, 300}),
                         pick({1, 3, 64, 65, 255, 257, 520, 1030}), pick({3, 8, 24, 64, 72})};
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
    });
}

TYPED_TEST(FusedAttention, FullyMaskedRowsGiveZero) {
    using T = TypeParam;
    vit3d::test::for_each_isa([&](vit3d::Isa isa) {
        // Two key tiles, so that a row can see nothing in the first and something in the second.
        const Index N = 600;
        ASSERT_EQ(vit3d::detail::fused_attention_tiles<T>(5, N, 16, isa).key_tiles, 2);
        const Tensor<T> q = Tensor<T>::randn({1, 2, 5, 16}, 1), k = Tensor<T>::randn({1, 2, N, 16}, 2),
                        v = Tensor<T>::randn({1, 2, N, 16}, 3);
        Tensor<std::uint8_t> mask = Tensor<std::uint8_t>::ones({1, 2, 5, N});
        for (Index j = 0; j < N; ++j) mask(0, 1, 3, j) = 0;       // head 1, query 3 sees nothing
        for (Index j = 0; j < N - 10; ++j) mask(0, 0, 0, j) = 0;  // only keys in the last key tile
        const Tensor<T> fused = scaled_dot_product_attention(q, k, v, nullptr, &mask, AttentionKernel::fused);
        for (Index c = 0; c < 16; ++c) EXPECT_EQ(fused(0, 1, 3, c), T(0));
        EXPECT_TRUE(
            Agree(fused, scaled_dot_product_attention(q, k, v, nullptr, &mask, AttentionKernel::naive)));
        // A -inf bias masks as well.
        Tensor<T> bias = Tensor<T>::zeros({1, 1, 5, N});
        for (Index j = 0; j < N; ++j) bias(0, 0, 2, j) = -std::numeric_limits<T>::infinity();
        const Tensor<T> biased =
            scaled_dot_product_attention(q, k, v, &bias, nullptr, AttentionKernel::fused);
        for (Index c = 0; c < 16; ++c) EXPECT_EQ(biased(0, 0, 2, c), T(0));
    });
}

// As torch's softmax and matmul: a NaN in a query makes its row NaN, a NaN in a key every row of its head,
// a NaN in a value that column of every row of its head; everything else stays finite. A NaN score must not
// be taken for a masked key (which gives weight 0) nor be flushed by the exponential.
TYPED_TEST(FusedAttention, NaNInAQueryKeyOrValuePropagatesAsInPyTorch) {
    using T = TypeParam;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    vit3d::test::for_each_isa([&](vit3d::Isa isa) {
        // Two key tiles, the NaN key in the second: rows must not settle on their first tile's result.
        const Index N = 600;
        ASSERT_EQ(vit3d::detail::fused_attention_tiles<T>(5, N, 16, isa).key_tiles, 2);
        Tensor<T> q = Tensor<T>::randn({1, 3, 5, 16}, 1), k = Tensor<T>::randn({1, 3, N, 16}, 2),
                  v = Tensor<T>::randn({1, 3, N, 16}, 3);
        q(0, 0, 2, 7) = nan;      // head 0: query 2
        k(0, 1, N - 3, 0) = nan;  // head 1: every query
        v(0, 2, 4, 5) = nan;      // head 2: column 5 of every query
        for (AttentionKernel kernel : {AttentionKernel::fused, AttentionKernel::naive}) {
            SCOPED_TRACE(kernel == AttentionKernel::fused ? "fused" : "naive");
            const Tensor<T> out = scaled_dot_product_attention(q, k, v, nullptr, nullptr, kernel);
            for (Index h = 0; h < 3; ++h)
                for (Index i = 0; i < 5; ++i)
                    for (Index c = 0; c < 16; ++c) {
                        const bool expect_nan = (h == 0 && i == 2) || h == 1 || (h == 2 && c == 5);
                        EXPECT_EQ(std::isnan(out(0, h, i, c)), expect_nan)
                            << "head " << h << " query " << i << " column " << c << ": " << out(0, h, i, c);
                    }
        }
    });
}

TYPED_TEST(FusedAttention, NoKeysAttendsNothing) {
    using T = TypeParam;
    const Tensor<T> q = Tensor<T>::randn({1, 1, 3, 8}, 1), kv = Tensor<T>::empty({1, 1, 0, 8});
    EXPECT_TENSOR_EQ(scaled_dot_product_attention(q, kv, kv, nullptr, nullptr, AttentionKernel::fused),
                     Tensor<T>::zeros({1, 1, 3, 8}));
}

// q [B, H, Nq, d] attends k, v [B, H, Nk, d] with a distance bias (and a mask), through the kernel chosen.
template <class T>
Tensor<T> attend_with_distance_bias(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                    const vit3d::nn::DistanceBias<T>& distance,
                                    const Tensor<std::uint8_t>* mask, AttentionKernel kernel) {
    Tensor<T> out = Tensor<T>::empty(q.shape());
    auto p = vit3d::nn::bhnd_attention_problem(q, k, v, out, "test");
    p.set_operands(nullptr, nullptr, mask ? mask->data() : nullptr, mask ? &mask->shape() : nullptr, "test");
    p.set_distance_bias(&distance, "test");
    vit3d::nn::attention(p, kernel);
    return out;
}

// The same bias written out densely, [1, H, Nq, Nk].
template <class T>
Tensor<T> dense(const vit3d::nn::DistanceBias<T>& d, Index Nq, Index Nk) {
    Tensor<T> bias({1, d.heads, Nq, Nk});
    for (Index h = 0; h < d.heads; ++h)
        for (Index i = 0; i < Nq; ++i)
            for (Index j = 0; j < Nk; ++j) bias(0, h, i, j) = d.at(h, i, j);
    return bias;
}

template <class T>
vit3d::nn::SliceDistanceBias<T> random_slice_bias(Index heads, Index levels, std::uint64_t seed) {
    vit3d::nn::SliceDistanceBiasConfig c;
    c.heads = heads;
    c.levels = levels;
    c.prefix_bias = true;
    vit3d::nn::SliceDistanceBias<T> slices(c);
    slices.table = Tensor<T>::randn(slices.table.shape(), seed, T(0), T(2));
    slices.prefix_row = Tensor<T>::randn({heads}, seed + 1, T(0), T(2));
    slices.prefix_col = Tensor<T>::randn({heads}, seed + 2, T(0), T(2));
    return slices;
}

TYPED_TEST(FusedAttention, DistanceBiasInTheTileLoopAgreesWithTheDenseBias) {
    using T = TypeParam;
    struct GridCase {
        std::array<Index, 3> grid;
        Index prefix;
    };
    // N = 1, 7, 197 and 4,097 tokens: a lone token, then a class token before 1x2x3, 4x7x7 and 16^3
    // patches.
    const std::vector<GridCase> cases{{{1, 1, 1}, 0}, {{1, 2, 3}, 1}, {{4, 7, 7}, 1}, {{16, 16, 16}, 1}};
    std::uint64_t seed = 500;
    for (const auto& c : cases) {
        seed += 10;
        const Index N = c.prefix + c.grid[0] * c.grid[1] * c.grid[2];
        const bool large = N > 1000;  // one batch and two heads there: the naive reference is O(N^2)
        const Index B = large ? 1 : 2, H = large ? 2 : 3, d = large ? 32 : 24;
        const auto slices = random_slice_bias<T>(H, 5, seed);
        const auto tables = slices.describe(c.grid, c.prefix);
        const auto distance = tables.view();
        const Tensor<T> q = Tensor<T>::randn({2, H, N, d}, seed + 3),
                        k = Tensor<T>::randn({2, H, N, d}, seed + 4),
                        v = Tensor<T>::randn({2, H, N, d}, seed + 5);
        const Tensor<T> bias = slices.bias(c.grid, c.prefix);
        EXPECT_TENSOR_EQ(bias, dense(distance, N, N));
        // The references once (the naive kernel does not depend on the ISA level), the fused kernel per
        // level.
        const Tensor<T> reference =
            scaled_dot_product_attention(q, k, v, &bias, nullptr, AttentionKernel::naive);
        EXPECT_TRUE(
            Agree(attend_with_distance_bias(q, k, v, distance, nullptr, AttentionKernel::naive), reference))
            << "N " << N;
        const Tensor<std::uint8_t> mask = random_mask<T>({B, 1, 1, N}, seed + 6, 0.6);
        const Tensor<T> masked_reference =
            large ? Tensor<T>() : scaled_dot_product_attention(q, k, v, &bias, &mask, AttentionKernel::naive);
        vit3d::test::for_each_isa([&](vit3d::Isa) {
            EXPECT_TRUE(Agree(attend_with_distance_bias(q, k, v, distance, nullptr, AttentionKernel::fused),
                              reference))
                << "N " << N;
            if (large) return;
            EXPECT_TRUE(Agree(attend_with_distance_bias(q, k, v, distance, &mask, AttentionKernel::fused),
                              masked_reference))
                << "N " << N << " with a key mask";
        });
    }
}

TYPED_TEST(FusedAttention, DistanceBiasServesCrossAttentionAndAnyCoordinates) {
    using T = TypeParam;
    vit3d::test::for_each_isa([&](vit3d::Isa) {
        // Queries and keys with coordinates of their own (not sorted, runs of every length, prefixes of 2 and
        // 1), a dense bias on top, and a mask: every route through the tile loop's runs.
        const Index H = 2, d = 16, Nq = 300, Nk = 530, distances = 40;
        std::mt19937_64 rng(77);
        std::vector<Index> q_coords(Nq - 2), k_coords(Nk - 1);
        for (auto& c : q_coords) c = static_cast<Index>(rng() % 20);
        Index run_left = 0, c = 0;
        for (auto& x : k_coords) {
            if (run_left-- == 0)
                c = static_cast<Index>(rng() % 40), run_left = static_cast<Index>(rng() % 300);
            x = c;
        }
        const Tensor<T> table = Tensor<T>::randn({H, distances}, 1), row = Tensor<T>::randn({H}, 2),
                        column = Tensor<T>::randn({H}, 3);
        vit3d::nn::DistanceBias<T> distance;
        distance.heads = H;
        distance.distances = distances;
        distance.by_distance = table.data();
        distance.query_coords = q_coords.data();
        distance.key_coords = k_coords.data();
        distance.query_prefix = 2;
        distance.key_prefix = 1;
        distance.query_prefix_bias = row.data();
        distance.key_prefix_bias = column.data();
        const Tensor<T> q = Tensor<T>::randn({1, H, Nq, d}, 4), k = Tensor<T>::randn({1, H, Nk, d}, 5),
                        v = Tensor<T>::randn({1, H, Nk, d}, 6);
        const Tensor<T> extra = Tensor<T>::randn({Nq, Nk}, 7);
        const Tensor<std::uint8_t> mask = random_mask<T>({1, H, Nq, Nk}, 8, 0.5);
        Tensor<T> out = Tensor<T>::empty(q.shape());
        auto p = vit3d::nn::bhnd_attention_problem(q, k, v, out, "test");
        p.set_operands(extra.data(), &extra.shape(), mask.data(), &mask.shape(), "test");
        p.set_distance_bias(&distance, "test");
        vit3d::nn::attention(p, AttentionKernel::fused);
        const Tensor<T> both = dense(distance, Nq, Nk) + extra;
        EXPECT_TRUE(Agree(out, scaled_dot_product_attention(q, k, v, &both, &mask, AttentionKernel::naive)));

        // A distance the table does not cover, a head count that is not the problem's, no coordinates:
        // errors.
        distance.distances = 39;
        EXPECT_THAT(
            [&] { p.set_distance_bias(&distance, "op"); },
            ::testing::ThrowsMessage<vit3d::shape_error>(::testing::HasSubstr(
                "op: distance bias: coordinates lie up to 39 apart, but the table holds distances 0 to 38")));
        distance.distances = distances;
        distance.heads = 3;
        EXPECT_THAT([&] { p.set_distance_bias(&distance, "op"); },
                    ::testing::ThrowsMessage<vit3d::shape_error>(::testing::HasSubstr("expected 2 heads")));
        distance.heads = H;
        distance.key_coords = nullptr;
        EXPECT_THROW(p.set_distance_bias(&distance, "op"), vit3d::shape_error);
    });
}

TEST(FusedAttention, DistanceBiasNeedsNoQuadraticBufferAt4097Tokens) {
    // The kernel's own account of its scratch memory, with the distance bias: O(N), not O(N^2).
    const Index N = 4097, H = 12, d = 64;
    const auto slices = random_slice_bias<float>(H, 32, 9);
    const auto tables = slices.describe({16, 16, 16}, 1);
    const auto distance = tables.view();
    const Tensor<float> q = Tensor<float>::randn({1, H, N, d}, 1);
    Tensor<float> out = Tensor<float>::empty(q.shape());
    auto p = vit3d::nn::bhnd_attention_problem(q, q, q, out, "test");
    p.set_distance_bias(&distance, "test");
    const Index fused = vit3d::nn::attention_workspace_bytes(p, AttentionKernel::fused, 2);
    EXPECT_LT(fused, N * N * Index(sizeof(float)) / 8);  // 4.7 MB on 2 threads; the scores would be 67 MB
    EXPECT_GT(fused, vit3d::nn::attention_workspace_bytes<float>(AttentionKernel::fused, H, N, N, d, 2));
    EXPECT_EQ(vit3d::nn::attention_workspace_bytes(p, AttentionKernel::naive, 2),
              2 * N * N * Index(sizeof(float)));
}

TEST(FusedAttention, ResultDoesNotDependOnTheThreadCount) {
    vit3d::test::for_each_isa([&](vit3d::Isa) {
        const Tensor<float> q = Tensor<float>::randn({2, 3, 250, 64}, 1),
                            k = Tensor<float>::randn({2, 3, 400, 64}, 2),
                            v = Tensor<float>::randn({2, 3, 400, 64}, 3);
        vit3d::set_num_threads(1);
        const Tensor<float> one =
            scaled_dot_product_attention(q, k, v, nullptr, nullptr, AttentionKernel::fused);
        vit3d::set_num_threads(2);
        const Tensor<float> two =
            scaled_dot_product_attention(q, k, v, nullptr, nullptr, AttentionKernel::fused);
        vit3d::set_num_threads(0);
        EXPECT_TENSOR_EQ(one, two);
    });
}

TEST(FusedAttention, KeysGoInTheFewestEqualTilesOfAbout512) {
    vit3d::test::for_each_isa([&](vit3d::Isa isa) {
        for (Index keys : {1, 197, 512, 513, 1024, 1030, 4096, 4097, 16385}) {
            SCOPED_TRACE("keys " + std::to_string(keys));
            const auto t = vit3d::detail::fused_attention_tiles<float>(64, keys, 64, isa);
            const Index fewest = (keys + 511) / 512;
            EXPECT_EQ(t.key_tile % t.block_columns, 0);
            EXPECT_LE(t.key_tiles, fewest);
            EXPECT_GE(t.key_tiles * t.key_tile, keys);
            EXPECT_LT((t.key_tiles - 1) * t.key_tile, keys);  // no empty tile
            // Equal tiles up to the block's rounding: 1024 keys in 2 tiles, not 384 + 384 + 256.
            EXPECT_LT(t.key_tile, (keys + fewest - 1) / fewest + t.block_columns);
        }
    });
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
