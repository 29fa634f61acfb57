// The int8 GEMM (detail/int8_gemm.hpp) for every variant this CPU runs (forced through the ISA cap): its
// int32 sums and dequantisation against a plain loop over the same quantised values, on shapes that exercise
// every row tail, partial panels, K not a multiple of 4 and beyond one chunk; the vector quantisation of
// activations against the portable one, byte for byte; non-finite rows; thread-count independence; the
// epilogue; and the quantisation error against the float product.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>
#include <vit3d/detail/int8_gemm.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::detail::Int8Kernel;
using vit3d::detail::Int8Weights;

std::vector<float> random_values(Index n, std::mt19937_64& rng, double mean = 0.0) {
    std::normal_distribution<double> normal(mean, 1.0);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = static_cast<float>(normal(rng));
    return v;
}

// A row of activations quantised by the portable code (the reference for every variant).
struct QuantizedRow {
    std::vector<std::uint8_t> q;
    float scale;
    std::int32_t zero;
};

QuantizedRow reference_quantize(const float* x, Index K) {
    float lo = 0.0f, hi = 0.0f;
    vit3d::detail::int8_generic::int8_row_extremes(x, K, lo, hi);
    const auto r = vit3d::detail::int8_row_quantization(lo, hi);
    QuantizedRow row{std::vector<std::uint8_t>(static_cast<std::size_t>(K)), r.scale, r.zero};
    for (Index k = 0; k < K; ++k)
        row.q[std::size_t(k)] = vit3d::detail::int8_quantize_value(x[k], r.inv_scale, r.zero);
    return row;
}

void expect_matches_loop(Index M, Index N, Index K, bool with_bias, Int8Kernel kernel, std::mt19937_64& rng,
                         int threads) {
    const Index lda = K + 3, ldw = K + 1, ldc = N + 2;
    const auto A = random_values(M * lda, rng, 0.3), W = random_values(N * ldw, rng),
               bias = random_values(N, rng);
    const Int8Weights weights = Int8Weights::quantize(W.data(), ldw, N, K, kernel);
    ASSERT_EQ(weights.kernel, kernel);
    std::vector<float> C(static_cast<std::size_t>(M * ldc), -7.0f);
    vit3d::detail::int8_gemm_abt(M, A.data(), lda, weights, with_bias ? bias.data() : nullptr, C.data(), ldc,
                                 threads);
    const int weight_max = vit3d::detail::int8_weight_max(kernel);
    std::vector<std::int8_t> qw(static_cast<std::size_t>(N * K));
    std::vector<float> weight_scales(static_cast<std::size_t>(N));
    std::vector<std::int32_t> sums(static_cast<std::size_t>(N));
    for (Index n = 0; n < N; ++n)
        Int8Weights::quantize_row(W.data() + n * ldw, K, weight_max, qw.data() + n * K, weight_scales[n],
                                  sums[n]);
    for (Index i = 0; i < M; ++i) {
        const QuantizedRow x = reference_quantize(A.data() + i * lda, K);
        for (Index j = 0; j < N; ++j) {
            std::int64_t acc = 0;
            for (Index k = 0; k < K; ++k) acc += std::int64_t(x.q[std::size_t(k)]) * qw[j * K + k];
            const double product =
                double(x.scale) * weight_scales[j] * double(acc - std::int64_t(x.zero) * sums[j]);
            const double expected = product + (with_bias ? bias[j] : 0.0);
            // Float rounding of the dequantisation only: an error of one in the int32 sum is larger.
            const double tol = 4e-7 * (std::abs(product) + std::abs(expected)) + 1e-30;
            ASSERT_NEAR(C[i * ldc + j], expected, tol)
                << "M " << M << " N " << N << " K " << K << " at (" << i << ", " << j << ")";
        }
        for (Index j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], -7.0f) << "wrote past column " << N;
    }
}

TEST(Int8Gemm, MatchesALoopOverTheQuantizedValuesOnEveryTail) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        const Int8Kernel kernel = vit3d::detail::int8_kernel_for(isa);
        std::mt19937_64 rng(11);
        for (Index M : {1, 2, 5, 6, 7, 13, 197})
            for (Index N : {1, 3, 16, 17, 64, 65, 130})
                for (Index K : {1, 3, 4, 5, 64, 1100})
                    expect_matches_loop(M, N, K, (M + N + K) % 2 == 0, kernel, rng, 2);
    });
}

TEST(Int8Gemm, EveryVariantTheCpuHasRuns) {
    // The level a variant is chosen from: vnni512 wherever AVX512-VNNI is there at the avx512 level.
    EXPECT_EQ(vit3d::detail::int8_kernel_for(vit3d::Isa::generic), Int8Kernel::generic);
    const vit3d::CpuInfo info = vit3d::cpu_info();
    if (info.supported >= vit3d::Isa::avx2) {
        EXPECT_EQ(vit3d::detail::int8_kernel_for(vit3d::Isa::avx2), Int8Kernel::avx2);
    }
    if (vit3d::detail::cpu_has_avx512_vnni()) {
        EXPECT_EQ(vit3d::detail::int8_kernel_for(vit3d::Isa::avx512), Int8Kernel::vnni512);
    }
}

TEST(Int8Gemm, VectorQuantizationOfRowsIsByteForByteThePortableOne) {
    std::mt19937_64 rng(3);
    for (Int8Kernel kernel : {Int8Kernel::generic, Int8Kernel::avx2, Int8Kernel::vnni512}) {
        if (kernel == Int8Kernel::vnni512 && !vit3d::detail::cpu_has_avx512_vnni()) {
            continue;
        }
        if (kernel == Int8Kernel::avx2 && vit3d::detail::cpu_supported_isa() < vit3d::Isa::avx2) {
            continue;
        }
        for (Index K : {1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 768}) {
            const Index M = 5, padded = vit3d::detail::round_up(K, 4);
            std::vector<float> A = random_values(M * K, rng, 0.5);
            A[1 * K] = 0.0f;
            for (Index k = 0; k < K; ++k) A[2 * K + k] = 0.0f;                    // a row of zeros
            for (Index k = 0; k < K; ++k) A[3 * K + k] = std::abs(A[3 * K + k]);  // no negative value
            std::vector<std::uint8_t> q(static_cast<std::size_t>(M * padded), 99);
            std::vector<float> scales(static_cast<std::size_t>(M));
            std::vector<std::int32_t> zeros(static_cast<std::size_t>(M));
            vit3d::detail::with_int8_kernels(kernel, [&](auto kernels) {
                decltype(kernels)::quantize_rows(A.data(), K, K, padded, 0, M, nullptr, nullptr, q.data(),
                                                 scales.data(), zeros.data());
            });
            for (Index i = 0; i < M; ++i) {
                const QuantizedRow expected = reference_quantize(A.data() + i * K, K);
                EXPECT_EQ(scales[i], expected.scale) << "K " << K << " row " << i;
                EXPECT_EQ(zeros[i], expected.zero) << "K " << K << " row " << i;
                for (Index k = 0; k < K; ++k)
                    ASSERT_EQ(q[i * padded + k], expected.q[std::size_t(k)])
                        << "K " << K << " at " << i << ", " << k;
                for (Index k = K; k < padded; ++k) ASSERT_EQ(q[i * padded + k], 0) << "padding";
            }
            EXPECT_EQ(zeros[3], 0) << "a row with no negative value has zero point 0";
        }
    }
}

TEST(Int8Gemm, ARowWithANonFiniteValueComesOutNaNAndLeavesTheOthers) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(8);
        const Index M = 4, N = 20, K = 37;
        std::vector<float> A = random_values(M * K, rng), W = random_values(N * K, rng);
        A[1 * K + 30] = std::numeric_limits<float>::quiet_NaN();
        A[2 * K + 3] = std::numeric_limits<float>::infinity();
        const Int8Weights weights =
            Int8Weights::quantize(W.data(), K, N, K, vit3d::detail::int8_kernel_for(isa));
        std::vector<float> C(static_cast<std::size_t>(M * N));
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, nullptr, C.data(), N, 1);
        for (Index j = 0; j < N; ++j) {
            EXPECT_TRUE(std::isfinite(C[0 * N + j]));
            EXPECT_TRUE(std::isnan(C[1 * N + j]));
            EXPECT_TRUE(std::isnan(C[2 * N + j]));
            EXPECT_TRUE(std::isfinite(C[3 * N + j]));
        }
    });
}

TEST(Int8Gemm, ResultDoesNotDependOnTheThreadCount) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(2);
        const Index M = 300, N = 200, K = 768;
        const auto A = random_values(M * K, rng), W = random_values(N * K, rng), bias = random_values(N, rng);
        const Int8Weights weights =
            Int8Weights::quantize(W.data(), K, N, K, vit3d::detail::int8_kernel_for(isa));
        std::vector<float> one(static_cast<std::size_t>(M * N)), two(one.size());
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, bias.data(), one.data(), N, 1);
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, bias.data(), two.data(), N, 2);
        EXPECT_EQ(one, two);
    });
}

TEST(Int8Gemm, AnEpilogueSeesEveryFinishedElementOnce) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(4);
        const Index M = 250, N = 70, K = 50;
        const auto A = random_values(M * K, rng), W = random_values(N * K, rng);
        const Int8Weights weights =
            Int8Weights::quantize(W.data(), K, N, K, vit3d::detail::int8_kernel_for(isa));
        std::vector<float> plain(static_cast<std::size_t>(M * N)), doubled(plain.size());
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, nullptr, plain.data(), N, 2);
        const auto twice = [](const void*, float* c, Index ldc, Index, Index rows, Index, Index cols) {
            for (Index r = 0; r < rows; ++r)
                for (Index j = 0; j < cols; ++j) c[r * ldc + j] *= 2.0f;
        };
        vit3d::detail::Int8GemmOptions options;
        options.epilogue = vit3d::detail::GemmEpilogue<float>{twice, nullptr, false};
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, nullptr, doubled.data(), N, 2, options);
        for (std::size_t i = 0; i < plain.size(); ++i) ASSERT_EQ(doubled[i], 2.0f * plain[i]) << i;
    });
}

// The quantisation error itself, against the float product: per-row u8 activations and per-channel weights
// (7 bits on avx2) keep a ViT-B-sized product within a few tenths of a percent.
TEST(Int8Gemm, StaysCloseToTheFloatProduct) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(6);
        const Index M = 64, N = 96, K = 768;
        const auto A = random_values(M * K, rng), W = random_values(N * K, rng);
        const Int8Kernel kernel = vit3d::detail::int8_kernel_for(isa);
        const Int8Weights weights = Int8Weights::quantize(W.data(), K, N, K, kernel);
        std::vector<float> C(static_cast<std::size_t>(M * N));
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, nullptr, C.data(), N, 2);
        double error = 0, norm = 0;
        for (Index i = 0; i < M; ++i)
            for (Index j = 0; j < N; ++j) {
                double exact = 0;
                for (Index k = 0; k < K; ++k) exact += double(A[i * K + k]) * W[j * K + k];
                error += (C[i * N + j] - exact) * (C[i * N + j] - exact);
                norm += exact * exact;
            }
        const double relative = std::sqrt(error / norm);
        EXPECT_LT(relative, kernel == Int8Kernel::avx2 ? 0.02 : 0.012) << vit3d::enum_name(kernel);
    });
}

TEST(Int8Gemm, RefusesADepthItsSumsCannotHold) {
    std::vector<float> W(static_cast<std::size_t>(vit3d::detail::int8_max_depth + 1), 1.0f);
    EXPECT_THROW(
        (void)Int8Weights::quantize(W.data(), Index(W.size()), 1, Index(W.size()), Int8Kernel::generic),
        std::invalid_argument);
}

}  // namespace

namespace {

TEST(Int8Gemm, ExcludedColumnsCountAsZeroAndAccumulateAddsToTheOutput) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(9);
        const Index M = 23, N = 40, K = 70;
        auto A = random_values(M * K, rng);
        const auto W = random_values(N * K, rng), bias = random_values(N, rng),
                   start = random_values(M * N, rng);
        std::vector<std::uint8_t> excluded(static_cast<std::size_t>(K), 0);
        excluded[2] = excluded[5] = excluded[69] = 1;
        for (Index i = 0; i < M; ++i)
            A[i * K + 5] = 1e4f;  // an outlier channel, which must not widen the rows
        const Int8Weights weights =
            Int8Weights::quantize(W.data(), K, N, K, vit3d::detail::int8_kernel_for(isa));
        std::vector<float> C = start;
        vit3d::detail::Int8GemmOptions options;
        options.excluded = excluded.data();
        options.accumulate = true;
        vit3d::detail::int8_gemm_abt(M, A.data(), K, weights, bias.data(), C.data(), N, 2, options);
        auto zeroed = A;
        for (Index i = 0; i < M; ++i)
            for (Index k = 0; k < K; ++k)
                if (excluded[std::size_t(k)]) zeroed[i * K + k] = 0.0f;
        std::vector<float> product(static_cast<std::size_t>(M * N));
        vit3d::detail::int8_gemm_abt(M, zeroed.data(), K, weights, bias.data(), product.data(), N, 2);
        for (std::size_t i = 0; i < C.size(); ++i) ASSERT_EQ(C[i], start[i] + product[i]) << i;
    });
}

}  // namespace
