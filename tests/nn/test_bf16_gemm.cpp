// The bf16 GEMM (detail/bf16_gemm.hpp), for every variant this CPU runs (forced through the ISA cap): against
// a loop in double over the bf16-rounded operands, on shapes that exercise row tails, partial panels, odd K
// and K beyond one chunk; the rounding against its definition; thread-count independence; the epilogue; and
// the error of bf16 against the float product.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>
#include <vit3d/detail/bf16_gemm.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::detail::Bf16Kernel;
using vit3d::detail::Bf16Weights;
using vit3d::detail::round_to_bf16;

std::vector<float> random_values(Index n, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = static_cast<float>(normal(rng));
    return v;
}

TEST(Bf16Gemm, RoundingIsToNearestEvenAndKeepsNaN) {
    const auto bits = [](std::uint32_t u) {
        float x;
        std::memcpy(&x, &u, 4);
        return x;
    };
    EXPECT_EQ(vit3d::detail::bf16_bits(1.0f), 0x3F80);
    EXPECT_EQ(vit3d::detail::bf16_bits(bits(0x3F808000u)), 0x3F80);  // a tie goes to the even neighbour
    EXPECT_EQ(vit3d::detail::bf16_bits(bits(0x3F818000u)), 0x3F82);
    EXPECT_EQ(vit3d::detail::bf16_bits(bits(0x3F808001u)), 0x3F81);  // above the tie: up
    EXPECT_EQ(vit3d::detail::bf16_bits(-2.0f), 0xC000);
    EXPECT_EQ(vit3d::detail::bf16_bits(std::numeric_limits<float>::infinity()), 0x7F80);
    EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_TRUE(std::isnan(round_to_bf16(bits(0x7F800001u))));       // a NaN whose payload would round to inf
    EXPECT_EQ(vit3d::detail::bf16_bits(bits(0x00000001u)), 0x0000);  // subnormals flush to zero
    EXPECT_EQ(vit3d::detail::bf16_bits(bits(0x80400000u)), 0x8000);
    EXPECT_EQ(round_to_bf16(bits(0x7F7FFFFFu)),
              std::numeric_limits<float>::infinity());  // max float rounds up
}

void expect_matches_loop(Index M, Index N, Index K, bool with_bias, vit3d::Isa isa, std::mt19937_64& rng) {
    const Bf16Kernel kernel = vit3d::detail::bf16_kernel_for(isa);
    const Index lda = K + 3, ldw = K + 1, ldc = N + 2;
    const auto A = random_values(M * lda, rng), W = random_values(N * ldw, rng), bias = random_values(N, rng);
    const Bf16Weights weights = Bf16Weights::convert(W.data(), ldw, N, K, isa);
    ASSERT_EQ(weights.kernel, kernel);
    std::vector<float> C(static_cast<std::size_t>(M * ldc), -7.0f);
    vit3d::detail::bf16_gemm_abt(M, A.data(), lda, weights, with_bias ? bias.data() : nullptr, C.data(), ldc,
                                 2);
    for (Index i = 0; i < M; ++i) {
        for (Index j = 0; j < N; ++j) {
            double exact = with_bias ? bias[j] : 0.0, magnitude = std::abs(exact);
            for (Index k = 0; k < K; ++k) {
                const double term = double(round_to_bf16(A[i * lda + k])) * round_to_bf16(W[j * ldw + k]);
                exact += term;
                magnitude += std::abs(term);
            }
            ASSERT_NEAR(C[i * ldc + j], exact, 2e-6 * std::max(1.0, magnitude))
                << "M " << M << " N " << N << " K " << K << " at (" << i << ", " << j << ")";
        }
        for (Index j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], -7.0f) << "wrote past column " << N;
    }
}

TEST(Bf16Gemm, MatchesALoopOverTheRoundedValuesOnEveryTail) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(12);
        for (Index M : {1, 5, 6, 7, 13, 197})
            for (Index N : {1, 3, 16, 63, 64, 65, 130})
                for (Index K : {1, 2, 3, 64, 300})
                    expect_matches_loop(M, N, K, (M + N + K) % 2 == 0, isa, rng);
    });
}

TEST(Bf16Gemm, TheNativeVariantRunsWhereTheCpuHasIt) {
    EXPECT_EQ(vit3d::detail::bf16_kernel_for(vit3d::Isa::avx2), Bf16Kernel::emulated);
    if (vit3d::detail::cpu_has_avx512_bf16()) {
        EXPECT_EQ(vit3d::detail::bf16_kernel_for(vit3d::Isa::avx512), Bf16Kernel::avx512bf16);
    }
}

TEST(Bf16Gemm, ResultDoesNotDependOnTheThreadCountAndEpiloguesSeeEveryElementOnce) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(2);
        const Index M = 300, N = 200, K = 768;
        const auto A = random_values(M * K, rng), W = random_values(N * K, rng), bias = random_values(N, rng);
        const Bf16Weights weights = Bf16Weights::convert(W.data(), K, N, K, isa);
        std::vector<float> one(static_cast<std::size_t>(M * N)), two(one.size()), doubled(one.size());
        vit3d::detail::bf16_gemm_abt(M, A.data(), K, weights, bias.data(), one.data(), N, 1);
        vit3d::detail::bf16_gemm_abt(M, A.data(), K, weights, bias.data(), two.data(), N, 2);
        EXPECT_EQ(one, two);
        const auto twice = [](const void*, float* c, Index ldc, Index, Index rows, Index, Index cols) {
            for (Index r = 0; r < rows; ++r)
                for (Index j = 0; j < cols; ++j) c[r * ldc + j] *= 2.0f;
        };
        vit3d::detail::bf16_gemm_abt(M, A.data(), K, weights, bias.data(), doubled.data(), N, 2,
                                     vit3d::detail::GemmEpilogue<float>{twice, nullptr, false});
        for (std::size_t i = 0; i < one.size(); ++i) ASSERT_EQ(doubled[i], 2.0f * one[i]) << i;
    });
}

// bf16 keeps 8 bits of mantissa: a ViT-B-sized product is within a few tenths of a percent of float's.
TEST(Bf16Gemm, StaysCloseToTheFloatProduct) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        std::mt19937_64 rng(6);
        const Index M = 64, N = 96, K = 768;
        const auto A = random_values(M * K, rng), W = random_values(N * K, rng);
        const Bf16Weights weights = Bf16Weights::convert(W.data(), K, N, K, isa);
        std::vector<float> C(static_cast<std::size_t>(M * N));
        vit3d::detail::bf16_gemm_abt(M, A.data(), K, weights, nullptr, C.data(), N, 2);
        double error = 0, norm = 0;
        for (Index i = 0; i < M; ++i)
            for (Index j = 0; j < N; ++j) {
                double exact = 0;
                for (Index k = 0; k < K; ++k) exact += double(A[i * K + k]) * W[j * K + k];
                error += (C[i * N + j] - exact) * (C[i * N + j] - exact);
                norm += exact * exact;
            }
        EXPECT_LT(std::sqrt(error / norm), 0.005);
    });
}

}  // namespace
