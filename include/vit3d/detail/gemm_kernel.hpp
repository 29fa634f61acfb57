#pragma once
// vit3d's own GEMM for C = A B^T (+ bias) with row-major A [M, K] and B [N, K]: the shape of every linear
// layer, B being the PyTorch weight [out, in]. Per panel of `panel` output columns, a slice of B is packed
// transposed (k-major, so a row of the panel is whole packets; 16x16 register transposes), then every
// `rows` rows of A stream through a register-blocked micro-kernel: rows x vectors accumulators, A
// broadcast from memory, the panel loaded a row of packets at a time. K is cut into chunks so that a
// packed slice stays in L2. Threads take contiguous ranges of panels (static schedule): every element is
// computed by one thread in one order, whatever the thread count.
//
// Measured against Eigen's GEMM on ViT-B's layer shapes in bench/bench_gemm.cpp (Eigen packs both operands
// and, for this storage order, runs its kernel at 55-60% of FMA peak on AVX-512).

#include <algorithm>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/packet_math.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

template <class T>
struct GemmTiles {
    static constexpr int width = packet_width<T>;
    static constexpr int rows = vector_registers >= 32 ? 6 : 3;
    static constexpr int vectors = 4;
    static constexpr Index panel = Index(vectors) * width;
    static constexpr Index k_chunk = 512;
};

// Naming Eigen's SSE/AVX packet types (vector types with attributes) as template arguments makes GCC warn
// that the attributes are ignored, which is harmless here: PacketBlock only stores them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

// Packs B[j0 + j, k0 + k] for j < cols, k < depth transposed: into dst[k * dst_stride + j], columns from
// `cols` to dst_stride set to 0. Shared by the GEMM (weight panels) and the fused attention (key tiles).
template <class T>
void pack_transposed(const T* B, Index ldb, Index j0, Index cols, Index k0, Index depth, T* dst,
                     Index dst_stride) {
    using namespace Eigen::internal;
    constexpr int W = packet_width<T>;
    Index j = 0;
    if constexpr (W > 1) {
        for (; j + W <= cols; j += W) {
            Index k = 0;
            for (; k + W <= depth; k += W) {
                PacketBlock<Packet<T>, W> block;
                for (int r = 0; r < W; ++r)
                    block.packet[r] = ploadu<Packet<T>>(B + (j0 + j + r) * ldb + k0 + k);
                ptranspose(block);
                for (int r = 0; r < W; ++r) pstoreu(dst + (k + r) * dst_stride + j, block.packet[r]);
            }
            for (; k < depth; ++k)
                for (int r = 0; r < W; ++r) dst[k * dst_stride + j + r] = B[(j0 + j + r) * ldb + k0 + k];
        }
    }
    for (; j < cols; ++j)
        for (Index k = 0; k < depth; ++k) dst[k * dst_stride + j] = B[(j0 + j) * ldb + k0 + k];
    if (cols < dst_stride)
        for (Index k = 0; k < depth; ++k)
            std::fill(dst + k * dst_stride + cols, dst + (k + 1) * dst_stride, T(0));
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// C[Rows x Vectors packets] (= or +=) A[Rows x depth] * Bp[depth x Vectors packets], the register block
// of both the GEMM and the fused attention: A rows `lda` apart (broadcast one element at a time), Bp rows
// `b_stride` apart, C rows `ldc` apart. `init` (Vectors packets, may be null) starts the accumulators of a
// fresh C, e.g. with the bias. Only the first `cols` columns of C are read or written.
template <class T, int Rows, int Vectors = GemmTiles<T>::vectors>
void micro_kernel(const T* a, Index lda, const T* bp, Index b_stride, Index depth, T* c, Index ldc,
                  Index cols, bool accumulate, const T* init = nullptr) {
    using namespace Eigen::internal;
    using Pk = Packet<T>;
    constexpr int W = packet_width<T>;
    constexpr Index width = Index(Vectors) * W;
    Pk acc[Rows][Vectors];
    const bool full = cols == width;
    alignas(64) T edge[Rows * width];  // C's partial last block, staged
    if (accumulate && !full)
        for (int r = 0; r < Rows; ++r) std::copy(c + r * ldc, c + r * ldc + cols, edge + r * width);
    for (int r = 0; r < Rows; ++r)
        for (int v = 0; v < Vectors; ++v)
            acc[r][v] = accumulate ? ploadu<Pk>(full ? c + r * ldc + v * W : edge + r * width + v * W)
                                   : (init ? ploadu<Pk>(init + v * W) : pset1<Pk>(T(0)));
    for (Index k = 0; k < depth; ++k) {
        Pk b[Vectors];
        for (int v = 0; v < Vectors; ++v) b[v] = ploadu<Pk>(bp + k * b_stride + v * W);
        for (int r = 0; r < Rows; ++r) {
            const Pk x = pset1<Pk>(a[r * lda + k]);
            for (int v = 0; v < Vectors; ++v) acc[r][v] = pmadd(x, b[v], acc[r][v]);
        }
    }
    for (int r = 0; r < Rows; ++r)
        for (int v = 0; v < Vectors; ++v)
            pstoreu(full ? c + r * ldc + v * W : edge + r * width + v * W, acc[r][v]);
    if (!full)
        for (int r = 0; r < Rows; ++r) std::copy(edge + r * width, edge + r * width + cols, c + r * ldc);
}

// The GEMM's micro-kernel for the last `rows` (< GemmTiles::rows) rows of A.
template <class T, int Rows = GemmTiles<T>::rows - 1>
void micro_kernel_tail(int rows, const T* a, Index lda, const T* panel, Index depth, T* c, Index ldc,
                       Index cols, bool accumulate, const T* init) {
    if constexpr (Rows >= 1) {
        if (rows == Rows)
            return micro_kernel<T, Rows>(a, lda, panel, GemmTiles<T>::panel, depth, c, ldc, cols, accumulate,
                                         init);
        micro_kernel_tail<T, Rows - 1>(rows, a, lda, panel, depth, c, ldc, cols, accumulate, init);
    }
}

// C [M, N] = A [M, K] * B [N, K]^T + bias [N] (bias may be null), on up to `threads` threads.
template <class T>
void packed_gemm_abt(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                     const T* bias, int threads) {
    using Tiles = GemmTiles<T>;
    constexpr Index P = Tiles::panel;
    constexpr int R = Tiles::rows;
    if (M <= 0 || N <= 0) return;
    const Index panels = (N + P - 1) / P;
    const Index chunk = std::min<Index>(std::max<Index>(K, 1), Tiles::k_chunk);
    // One thread per panel at most, and no thread for less than ~2 MFLOP of work.
    const Index by_work = std::max<Index>(1, 2 * M * N * std::max<Index>(K, 1) / (Index(2) << 20));
    threads = static_cast<int>(std::max<Index>(1, std::min<Index>({Index(threads), panels, by_work})));
    const Index per_thread = chunk * P + P;
    AlignedBuffer<T> workspace(per_thread * threads);
    parallel_region(threads, [&](int thread, int thread_count) {
        T* packed = workspace.data() + per_thread * thread;
        T* init = packed + chunk * P;
        const ItemRange share = static_share(panels, thread, thread_count);
        for (Index p = share.begin; p < share.end; ++p) {
            const Index j0 = p * P, cols = std::min(P, N - j0);
            std::fill(init, init + P, T(0));
            if (bias) std::copy(bias + j0, bias + j0 + cols, init);
            if (K == 0) {
                for (Index i = 0; i < M; ++i) std::copy(init, init + cols, C + i * ldc + j0);
                continue;
            }
            for (Index k0 = 0; k0 < K; k0 += chunk) {
                const Index depth = std::min(chunk, K - k0);
                pack_transposed(B, ldb, j0, cols, k0, depth, packed, P);
                const bool accumulate = k0 > 0;
                Index i = 0;
                for (; i + R <= M; i += R)
                    micro_kernel<T, R>(A + i * lda + k0, lda, packed, P, depth, C + i * ldc + j0, ldc, cols,
                                       accumulate, init);
                if (i < M)
                    micro_kernel_tail<T>(static_cast<int>(M - i), A + i * lda + k0, lda, packed, depth,
                                         C + i * ldc + j0, ldc, cols, accumulate, init);
            }
        }
    });
}

}  // namespace vit3d::detail
