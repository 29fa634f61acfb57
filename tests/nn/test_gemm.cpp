// vit3d's packed GEMM (C = A B^T + bias, the kernel behind every linear layer) against a plain loop in
// double: shapes that exercise every row tail, partial column panels, K beyond one packed chunk, K = 0,
// row strides larger than the width, with and without bias; the row-blocked paths of calls with many rows
// and of prepacked weights; thread-count independence; epilogues that see every finished block once, and the
// gated product built on them.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/detail/gemm.hpp>
#include <vit3d/detail/gemm_kernel.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;

template <class T>
class PackedGemm : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(PackedGemm, Types);

template <class T>
std::vector<T> random_values(Index n, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    std::vector<T> v(static_cast<std::size_t>(n));
    for (T& x : v) x = static_cast<T>(normal(rng));
    return v;
}

template <class T>
void expect_matches_loop(Index M, Index N, Index K, bool with_bias, std::mt19937_64& rng, int threads) {
    const Index lda = K + 3, ldb = K + 1, ldc = N + 2;  // strided rows: the kernel must honour them
    const auto A = random_values<T>(M * lda, rng), B = random_values<T>(N * ldb, rng),
               bias = random_values<T>(N, rng);
    std::vector<T> C(static_cast<std::size_t>(M * ldc), T(-7));
    vit3d::detail::packed_gemm_abt(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc,
                                   with_bias ? bias.data() : nullptr, threads);
    const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
    for (Index i = 0; i < M; ++i) {
        for (Index j = 0; j < N; ++j) {
            double exact = with_bias ? static_cast<double>(bias[j]) : 0.0, magnitude = std::abs(exact);
            for (Index k = 0; k < K; ++k) {
                exact += static_cast<double>(A[i * lda + k]) * static_cast<double>(B[j * ldb + k]);
                magnitude +=
                    std::abs(static_cast<double>(A[i * lda + k]) * static_cast<double>(B[j * ldb + k]));
            }
            ASSERT_NEAR(C[i * ldc + j], exact, tol * std::max(1.0, magnitude))
                << "M " << M << " N " << N << " K " << K << " at (" << i << ", " << j << ")";
        }
        for (Index j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], T(-7)) << "wrote past column " << N;
    }
}

TYPED_TEST(PackedGemm, MatchesALoopOnEveryTailAndChunking) {
    vit3d::test::for_each_isa([](vit3d::Isa) {
        std::mt19937_64 rng(5);
        for (Index M : {1, 2, 4, 5, 6, 7, 13, 197})
            for (Index N : {1, 3, 16, 17, 24, 25, 64, 65, 130})
                for (Index K : {1, 7, 8, 64, 513})
                    expect_matches_loop<TypeParam>(M, N, K, (M + N + K) % 2 == 0, rng, 2);
    });
}

TYPED_TEST(PackedGemm, ZeroDepthGivesTheBias) {
    vit3d::test::for_each_isa([](vit3d::Isa) {
        std::mt19937_64 rng(6);
        expect_matches_loop<TypeParam>(4, 70, 0, true, rng, 1);
        expect_matches_loop<TypeParam>(4, 70, 0, false, rng, 1);
    });
}

// From gemm_pack_whole_rows rows on, the call packs B whole and takes A in blocks of rows: that path against
// the loop (row tails, a partial last row block, K beyond one chunk, K = 0), and bit for bit against the
// same rows computed by calls too short to take it.
TYPED_TEST(PackedGemm, ManyRowsTakeARowBlockedPathWithTheSameResults) {
    vit3d::test::for_each_isa([](vit3d::Isa) {
        std::mt19937_64 rng(8);
        const Index many = vit3d::detail::gemm_pack_whole_rows + 7;
        expect_matches_loop<TypeParam>(many, 65, 513, true, rng, 2);
        expect_matches_loop<TypeParam>(many, 17, 0, true, rng, 1);
        const Index M = many + 250, N = 130, K = 600;
        const auto A = random_values<TypeParam>(M * K, rng), B = random_values<TypeParam>(N * K, rng),
                   bias = random_values<TypeParam>(N, rng);
        for (int threads : {1, 2}) {
            std::vector<TypeParam> whole(static_cast<std::size_t>(M * N)), pieces(whole.size());
            vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, whole.data(), N, bias.data(),
                                           threads);
            for (Index first = 0; first < M; first += 401) {
                const Index rows = std::min<Index>(401, M - first);
                vit3d::detail::packed_gemm_abt(rows, N, K, A.data() + first * K, K, B.data(), K,
                                               pieces.data() + first * N, N, bias.data(), threads);
            }
            ASSERT_EQ(whole, pieces) << threads << " threads";
        }
    });
}

// With B prepacked (as nn::Linear keeps it), A is taken in blocks of rows: bit for bit the same as packing B
// as the call goes, with K over several chunks, a row tail, partial panels, rows just past one block (one
// pass) and beyond it (equal passes), and a pack for another level being ignored.
TYPED_TEST(PackedGemm, PrepackedWeightsGiveTheSameBits) {
    std::mt19937_64 rng(9);
    for (Index M : {1, 5, 197, 256, 613})
        for (Index K : {7, 1100}) {
            const Index N = 130;
            const auto A = random_values<TypeParam>(M * K, rng), B = random_values<TypeParam>(N * K, rng),
                       bias = random_values<TypeParam>(N, rng);
            vit3d::test::for_each_isa([&](vit3d::Isa isa) {
                using Weights = vit3d::detail::GemmWeights<TypeParam>;
                const Weights pack = Weights::pack(B.data(), K, N, K, isa, 2);
                const auto levels = vit3d::test::runnable_isas();  // another level this CPU can run
                const vit3d::Isa other_isa = isa == levels.front() ? levels.back() : levels.front();
                const Weights other = Weights::pack(B.data(), K, N, K, other_isa, 1);
                for (int threads : {1, 2}) {
                    std::vector<TypeParam> plain(static_cast<std::size_t>(M * N)), packed(plain.size()),
                        ignored(plain.size());
                    vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, plain.data(), N,
                                                   bias.data(), threads, isa);
                    vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, packed.data(), N,
                                                   bias.data(), threads, isa, &pack);
                    vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, ignored.data(), N,
                                                   bias.data(), threads, isa, &other);
                    ASSERT_EQ(plain, packed) << "M " << M << " K " << K << ", " << threads << " threads";
                    ASSERT_EQ(plain, ignored) << "M " << M << " K " << K << ", " << threads << " threads";
                }
            });
        }
}

TEST(PackedGemm, ResultDoesNotDependOnTheThreadCount) {
    std::mt19937_64 rng(7);
    const Index M = 100, N = 300, K = 1100;
    const auto A = random_values<float>(M * K, rng), B = random_values<float>(N * K, rng);
    vit3d::test::for_each_isa([&](vit3d::Isa) {
        std::vector<float> one(static_cast<std::size_t>(M * N)), two(one.size());
        vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, one.data(), N,
                                       static_cast<float*>(nullptr), 1);
        vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, two.data(), N,
                                       static_cast<float*>(nullptr), 2);
        EXPECT_EQ(one, two);
    });
}

// An epilogue records which elements it saw, and when: each element once, after its last chunk of K (its
// value is then the plain product's), on every path (rows in one pass or several, B prepacked, packed whole,
// or by slices; K = 0; partial panels) and thread count.
template <class T>
struct CountingEpilogue {
    const std::vector<T>* expected;
    std::vector<int>* seen;
    Index N;
    bool* values_ok;
    static void apply(const void* self, T* c, Index ldc, Index row, Index rows, Index col, Index cols) {
        const auto& e = *static_cast<const CountingEpilogue*>(self);
        for (Index r = 0; r < rows; ++r)
            for (Index j = 0; j < cols; ++j) {
                const auto at = static_cast<std::size_t>((row + r) * e.N + col + j);
                ++(*e.seen)[at];
                if (c[r * ldc + j] != (*e.expected)[at]) *e.values_ok = false;
                c[r * ldc + j] = T(-1);  // in place: the output keeps what the epilogue leaves
            }
    }
};

TYPED_TEST(PackedGemm, AnEpilogueSeesEveryFinishedElementOnce) {
    using T = TypeParam;
    std::mt19937_64 rng(11);
    for (Index M : {1, 7, 300, 1100})
        for (Index K : {0, 3, 600}) {
            const Index N = 70;
            const auto A = random_values<T>(M * K, rng), B = random_values<T>(N * K, rng),
                       bias = random_values<T>(N, rng);
            vit3d::test::for_each_isa([&](vit3d::Isa isa) {
                using Weights = vit3d::detail::GemmWeights<T>;
                const Weights pack = Weights::pack(B.data(), K, N, K, isa, 1);
                for (const Weights* weights : {static_cast<const Weights*>(nullptr), &pack})
                    for (int threads : {1, 2}) {
                        std::vector<T> plain(static_cast<std::size_t>(M * N)), out(plain.size());
                        vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, plain.data(), N,
                                                       bias.data(), threads, isa, weights);
                        std::vector<int> seen(plain.size(), 0);
                        bool values_ok = true;
                        const CountingEpilogue<T> counting{&plain, &seen, N, &values_ok};
                        vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, out.data(), N,
                                                       bias.data(), threads, isa, weights,
                                                       {&CountingEpilogue<T>::apply, &counting, false});
                        const std::string where = "M " + std::to_string(M) + " K " + std::to_string(K) +
                                                  (weights ? ", prepacked" : "") + ", " +
                                                  std::to_string(threads) + " threads";
                        ASSERT_EQ(seen, std::vector<int>(plain.size(), 1)) << where;
                        ASSERT_TRUE(values_ok) << where;
                        ASSERT_EQ(out, std::vector<T>(plain.size(), T(-1))) << where;
                    }
            });
        }
}

// The gated product: one GEMM over the gate's and the value's rows packed half a panel each gives, through
// an epilogue that replaces the output, act(gate) * value exactly as two products and a pass would (here
// with the identity: gate * value), for every hidden width against the half-panel, on every path.
template <class T>
struct ProductEpilogue {
    T* out;
    Index hidden, half;
    static void apply(const void* self, T* c, Index ldc, Index row, Index rows, Index col, Index) {
        const auto& e = *static_cast<const ProductEpilogue*>(self);
        const Index first = col / (2 * e.half) * e.half, count = std::min(e.half, e.hidden - first);
        for (Index r = 0; r < rows; ++r)
            for (Index j = 0; j < count; ++j)
                e.out[(row + r) * e.hidden + first + j] = c[r * ldc + j] * c[r * ldc + e.half + j];
    }
};

TYPED_TEST(PackedGemm, AGatedPackGivesTheProductOfItsTwoHalves) {
    using T = TypeParam;
    std::mt19937_64 rng(13);
    vit3d::test::for_each_isa([&](vit3d::Isa isa) {
        if (!vit3d::detail::gated_gemm_supported<T>(isa)) return;
        const Index half = vit3d::detail::kernel_shape<T>(isa).columns() / 2;
        for (Index M : {1, 9, 500})
            for (Index H : {Index(1), half - 1, half, 3 * half + 5})
                for (Index K : {5, 600}) {
                    const auto A = random_values<T>(M * K, rng), gate = random_values<T>(H * K, rng),
                               value = random_values<T>(H * K, rng);
                    std::vector<T> g(static_cast<std::size_t>(M * H)), v(g.size());
                    vit3d::detail::packed_gemm_abt(M, H, K, A.data(), K, gate.data(), K, g.data(), H,
                                                   static_cast<T*>(nullptr), 1, isa);
                    vit3d::detail::packed_gemm_abt(M, H, K, A.data(), K, value.data(), K, v.data(), H,
                                                   static_cast<T*>(nullptr), 1, isa);
                    using Weights = vit3d::detail::GemmWeights<T>;
                    const Weights pack = Weights::pack_gated(gate.data(), value.data(), K, H, K, isa, 2);
                    ASSERT_TRUE(pack.matches_gated(gate.data(), value.data(), K, H));
                    std::vector<T> changed = value;
                    changed.back() += T(1);
                    ASSERT_FALSE(pack.matches_gated(gate.data(), changed.data(), K, H));
                    for (int threads : {1, 2}) {
                        std::vector<T> out(g.size(), T(-7));
                        const ProductEpilogue<T> product{out.data(), H, half};
                        vit3d::detail::packed_gemm_abt(M, pack.N, K, A.data(), K, static_cast<T*>(nullptr), K,
                                                       static_cast<T*>(nullptr), 0, static_cast<T*>(nullptr),
                                                       threads, isa, &pack,
                                                       {&ProductEpilogue<T>::apply, &product, true});
                        for (std::size_t i = 0; i < out.size(); ++i)
                            ASSERT_EQ(out[i], g[i] * v[i]) << "M " << M << " H " << H << " K " << K << ", "
                                                           << threads << " threads, element " << i;
                    }
                }
    });
}

TEST(PackedGemm, AnEpilogueReplacingTheOutputNeedsAPack) {
    const Index n = 2;
    const std::vector<float> A(4, 1.0f), B(4, 1.0f);
    std::vector<float> C(4);
    const vit3d::detail::GemmEpilogue<float> replacing{
        [](const void*, float*, Index, Index, Index, Index, Index) {}, nullptr, true};
    EXPECT_THROW(
        vit3d::detail::packed_gemm_abt(
            n, n, n, A.data(), n, B.data(), n, C.data(), n, static_cast<const float*>(nullptr), 1,
            vit3d::Isa::generic, static_cast<const vit3d::detail::GemmWeights<float>*>(nullptr), replacing),
        std::logic_error);
}

TEST(PackedGemm, LinearUsesItAndAgreesWithEigen) {
    vit3d::nn::Linear<float> fc(768, 300);
    fc.weight = vit3d::Tensor<float>::randn(fc.weight.shape(), 1);
    fc.bias = vit3d::Tensor<float>::randn({300}, 2);
    const auto x = vit3d::Tensor<float>::randn({2, 197, 768}, 3);
    const auto y = fc.forward(x);
    vit3d::Tensor<float> expected = vit3d::Tensor<float>::empty({2, 197, 300});
    vit3d::detail::eigen_gemm_abt<float>(2 * 197, 300, 768, x.data(), 768, fc.weight.data(), 768,
                                         expected.data(), 300);
    expected.as_matrix().rowwise() += fc.bias->flat().transpose();
    EXPECT_TRUE(vit3d::allclose(y, expected, 1e-5, 1e-4));
}

}  // namespace
