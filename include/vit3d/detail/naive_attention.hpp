#pragma once
// The direct attention kernel: per (batch, head) the full scores matrix Q K^T * scale + bias, a row-wise
// softmax, and one product with V, all through Eigen. Memory is Nq x Nk per thread. It is the reference for
// the fused kernel and the one that can hand out the attention weights.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

// Row-wise softmax in place; a row that is -inf everywhere (all keys masked) becomes 0.
template <class Matrix>
void softmax_rows(Matrix& scores) {
    using T = typename Matrix::Scalar;
    const T neg_inf = -std::numeric_limits<T>::infinity();
    for (Index i = 0; i < scores.rows(); ++i) {
        auto row = scores.row(i);
        const T max = row.maxCoeff();
        if (max == neg_inf) {
            row.setZero();
            continue;
        }
        // Eigen's vectorised exp clamps its argument (exp(-inf) comes out ~1e-39), so masked scores are
        // zeroed explicitly: a masked key must contribute nothing at all.
        row = (row.array() == neg_inf).select(T(0), (row.array() - max).exp());
        row /= row.sum();
    }
}

// weights, when not null, receives softmax weights [B, H, Nq, Nk] (contiguous).
template <class T>
void naive_attention(const AttentionProblem<T>& p, T* weights, int threads) {
    using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Strided = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
    using StridedOut = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;
    const Index Nq = p.queries, Nk = p.keys, d = p.head_dim, pairs = p.batch * p.heads;
    if (pairs * Nq == 0) return;
    const T scale = static_cast<T>(p.scale);
    const T neg_inf = -std::numeric_limits<T>::infinity();
    threads = static_cast<int>(std::max<Index>(1, std::min<Index>(threads, pairs)));
    // One scores matrix per thread, allocated before the region (nothing may throw inside it).
    std::vector<Matrix> scores(static_cast<std::size_t>(threads), Matrix(Nq, Nk));
    parallel_region(threads, [&](int thread, int thread_count) {
        // With one thread of ours, Eigen's GEMM would otherwise open a region of its own over all cores.
        ScopedOpenMPThreads eigen_threads(1);
        Matrix& S = scores[static_cast<std::size_t>(thread)];
        const ItemRange share = static_share(pairs, thread, thread_count);
        for (Index bh = share.begin; bh < share.end; ++bh) {
            const Index b = bh / p.heads, h = bh % p.heads;
            StridedOut O(p.out_at(b, h, 0), Nq, d, Eigen::OuterStride<>(p.out_token_stride));
            if (Nk == 0) {
                O.setZero();
                continue;
            }
            const Strided Q(p.q.at(b, h, 0), Nq, d, Eigen::OuterStride<>(p.q.token_stride));
            const Strided K(p.k.at(b, h, 0), Nk, d, Eigen::OuterStride<>(p.k.token_stride));
            const Strided V(p.v.at(b, h, 0), Nk, d, Eigen::OuterStride<>(p.v.token_stride));
            S.noalias() = (Q * K.transpose()) * scale;
            if (p.bias)
                for (Index i = 0; i < Nq; ++i)
                    for (Index j = 0; j < Nk; ++j) S(i, j) += p.bias_at(b, h, i, j);
            if (p.distance_bias)
                for (Index i = 0; i < Nq; ++i)
                    for (Index j = 0; j < Nk; ++j) S(i, j) += p.distance_bias->at(h, i, j);
            if (p.allowed)
                for (Index i = 0; i < Nq; ++i)
                    for (Index j = 0; j < Nk; ++j)
                        if (!p.is_allowed(b, h, i, j)) S(i, j) = neg_inf;
            softmax_rows(S);
            O.noalias() = S * V;
            if (weights) Eigen::Map<Matrix>(weights + bh * Nq * Nk, Nq, Nk) = S;
        }
    });
}

}  // namespace vit3d::detail

#define VIT3D_NAIVE_ATTENTION_INSTANCES(X, T) \
    X(void vit3d::detail::naive_attention<T>(const vit3d::detail::AttentionProblem<T>&, T*, int))
VIT3D_EXTERN_INSTANCES(VIT3D_NAIVE_ATTENTION_INSTANCES)
