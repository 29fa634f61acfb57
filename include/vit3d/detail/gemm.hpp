#pragma once
// C = A B^T + bias for row-major matrices, the product behind every linear layer (B is a PyTorch weight
// [out, in]). By default vit3d's own packed kernel computes it (detail/gemm_kernel.hpp) on
// vit3d::num_threads() threads. Configured with VIT3D_USE_BLAS (CMake option of the same name), float and
// double go to the BLAS's cblas_?gemm instead, on vit3d::num_threads() of OpenBLAS's own threads.
// bench/bench_gemm.cpp measures the three (vit3d, Eigen, BLAS) side by side.

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/threading.hpp"

#ifdef VIT3D_USE_BLAS
#include <cblas.h>
#endif

namespace vit3d::detail {

#ifdef VIT3D_USE_BLAS
// OpenBLAS's thread count is process-wide; set it only when it changes.
inline void set_blas_threads(int threads) {
#ifdef OPENBLAS_VERSION
    static std::atomic<int> current{0};
    if (current.exchange(threads) != threads) openblas_set_num_threads(threads);
#else
    (void)threads;  // another BLAS: its own environment variables decide
#endif
}
#endif

// Eigen's GEMM for the same product, on vit3d::num_threads() threads: kept as the yardstick for
// bench/bench_gemm.cpp.
template <class T>
void eigen_gemm_abt(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C,
                    Index ldc) {
    using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using In = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
    using Out = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;
    if (M == 0 || N == 0) return;
    Out c(C, M, N, Eigen::OuterStride<>(ldc));
    if (K == 0) {
        c.setZero();
        return;
    }
    // Eigen parallelises a large product with OpenMP over omp_get_max_threads() threads (and runs it serially
    // inside someone else's parallel region): make that vit3d's count.
    ScopedOpenMPThreads eigen_threads(num_threads());
    c.noalias() = In(A, M, K, Eigen::OuterStride<>(lda)) * In(B, N, K, Eigen::OuterStride<>(ldb)).transpose();
}

// C [M, N] = A [M, K] * B [N, K]^T + bias [N] (bias may be null); lda, ldb, ldc are the row strides
// (elements). C is overwritten. `weights`, when not null, is B packed once (nn/weight_pack_cache.hpp);
// a pack for another instruction-set level than the one that runs is ignored, as is any pack in the BLAS
// route. `epilogue` rewrites C's blocks in place as they are finished (in the BLAS route: all of C after
// the product); one that replaces the output goes to packed_gemm_abt with its gated pack instead.
template <class T>
void gemm_abt(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
              const T* bias = nullptr, const GemmWeights<T>* weights = nullptr,
              const GemmEpilogue<T>& epilogue = {}) {
    if (M <= 0 || N <= 0) return;
    if (epilogue && epilogue.replaces_output)
        throw std::logic_error(
            "vit3d::detail::gemm_abt: an epilogue that replaces the output needs "
            "packed_gemm_abt and its pack");
#ifdef VIT3D_USE_BLAS
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        if (K > 0) {
            set_blas_threads(num_threads());
            const auto m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
            const T beta = bias ? T(1) : T(0);
            if (bias)
                for (Index i = 0; i < M; ++i) std::copy(bias, bias + N, C + i * ldc);
            if constexpr (std::is_same_v<T, float>)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, A, static_cast<int>(lda),
                            B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
            else
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0, A, static_cast<int>(lda),
                            B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
            if (epilogue) epilogue.apply(epilogue.context, C, ldc, 0, M, 0, N);
            return;
        }
    }
#endif
    packed_gemm_abt(M, N, K, A, lda, B, ldb, C, ldc, bias, num_threads(), active_isa(), weights, epilogue);
}

}  // namespace vit3d::detail
