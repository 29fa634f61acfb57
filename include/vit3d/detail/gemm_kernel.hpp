#pragma once
// vit3d's own GEMM for C = A B^T (+ bias) with row-major A [M, K] and B [N, K]: the shape of every linear
// layer, B being the PyTorch weight [out, in]. Per panel of output columns (the register block's width), a
// slice of B is packed transposed (k-major, so a row of the panel is whole vectors; in-register transposes),
// or read from a pack made once (GemmWeights), then every `rows` rows of A stream through a register-blocked
// micro-kernel: rows x vectors accumulators, A broadcast from memory, the panel loaded a row of vectors at a
// time. K is cut into chunks so that a packed slice stays in L2. The kernels exist per instruction-set level
// (detail/isa/kernels.inc) and the best one for this CPU runs (core/cpu.hpp). Threads take contiguous ranges
// of panels (static schedule): every element is computed by one thread in one order, whatever the thread
// count.
//
// Measured against Eigen's GEMM and OpenBLAS on ViT-B's layer shapes in bench/bench_gemm.cpp.

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/isa/dispatch.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

inline constexpr Index gemm_k_chunk = 512;
// From this many rows of A on, a call without a prepacked B packs all of B first (see packed_gemm_abt).
inline constexpr Index gemm_pack_whole_rows = 1024;

// Threads worth using for an M x N x K product split into `panels`: one per panel at most, and none for
// less than ~2 MFLOP of work.
inline int gemm_threads(Index M, Index N, Index K, Index panels, int requested) {
    const Index by_work = std::max<Index>(1, 2 * M * N * std::max<Index>(K, 1) / (Index(2) << 20));
    return static_cast<int>(std::max<Index>(1, std::min<Index>({Index(requested), panels, by_work})));
}

// B [N, K] packed once for the GEMM variant of one instruction-set level (the layout gemm_panels reads).
template <class T>
struct GemmWeights {
    Isa isa = Isa::generic;
    Index N = 0, K = 0;
    AlignedBuffer<T> packed;

    static GemmWeights pack(const T* B, Index ldb, Index N, Index K, Isa isa, int threads) {
        GemmWeights w;
        w.isa = isa;
        w.N = N;
        w.K = K;
        const Index P = kernel_shape<T>(isa).columns();
        const Index panels = (N + P - 1) / P;
        w.packed = AlignedBuffer<T>(std::max<Index>(1, panels * K * P));
        threads = static_cast<int>(std::max<Index>(1, std::min<Index>(threads, panels)));
        with_kernels(isa, [&](auto kernels) {
            parallel_region(threads, [&](int thread, int thread_count) {
                const ItemRange share = static_share(panels, thread, thread_count);
                decltype(kernels)::template pack_weights<T>(B, ldb, N, K, share.begin, share.end,
                                                            w.packed.data());
            });
        });
        return w;
    }

    // The weights of a gated product, act(gate) * value with gate and value [H, K]: each panel holds half a
    // panel of rows of each (pack_gated_gemm_weights), N = H rounded up to whole half-panels, times 2. Only
    // for variants whose panel has an even width (gated_gemm_supported).
    static GemmWeights pack_gated(const T* gate, const T* value, Index ldb, Index H, Index K, Isa isa,
                                  int threads) {
        const Index P = kernel_shape<T>(isa).columns();
        const Index panels = ceil_div(H, P / 2);
        GemmWeights w;
        w.isa = isa;
        w.N = panels * P;
        w.K = K;
        w.packed = AlignedBuffer<T>(std::max<Index>(1, panels * K * P));
        threads = static_cast<int>(std::max<Index>(1, std::min<Index>(threads, panels)));
        with_kernels(isa, [&](auto kernels) {
            parallel_region(threads, [&](int thread, int thread_count) {
                const ItemRange share = static_share(panels, thread, thread_count);
                decltype(kernels)::template pack_gated_weights<T>(gate, value, ldb, H, K, share.begin,
                                                                  share.end, w.packed.data());
            });
        });
        return w;
    }

    Index bytes() const { return static_cast<Index>(packed.size() * sizeof(T)); }

    // Whether this pack holds exactly B (bit for bit, so NaN and -0 count too).
    bool matches(const T* B, Index ldb) const {
        const Index P = kernel_shape<T>(isa).columns();
        for (Index j = 0; j < N; ++j)
            if (!column_holds(j, B + j * ldb, P)) return false;
        return true;
    }

    // The same for a pack_gated one of gate and value [H, K].
    bool matches_gated(const T* gate, const T* value, Index ldb, Index H) const {
        const Index P = kernel_shape<T>(isa).columns(), half = P / 2;
        for (Index j = 0; j < H; ++j)
            if (!column_holds((j / half) * P + j % half, gate + j * ldb, P) ||
                !column_holds((j / half) * P + half + j % half, value + j * ldb, P))
                return false;
        return true;
    }

  private:
    // Whether packed column j holds the K elements of `row`.
    bool column_holds(Index j, const T* row, Index P) const {
        const T* panel = packed.data() + (j / P) * K * P + j % P;
        for (Index k = 0; k < K; ++k)
            if (std::memcmp(panel + k * P, row + k, sizeof(T)) != 0) return false;
        return true;
    }
};

// Whether the variant for `isa` computes gated products (GemmWeights::pack_gated): its panel splits in two.
template <class T>
bool gated_gemm_supported(Isa isa) {
    return kernel_shape<T>(isa).columns() % 2 == 0;
}

// C [M, N] = A [M, K] * B [N, K]^T + bias [N] (bias may be null), on up to `threads` threads, with the
// variant for `isa`; `weights`, when not null, is B packed for that variant. `epilogue` (detail/isa/
// kernel_shapes.hpp) works on each block of C as it is finished; one that replaces the output needs
// `weights` (a gated pack has no unpacked B) and leaves C unwritten.
template <class T>
void packed_gemm_abt(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                     const T* bias, int threads, Isa isa, const GemmWeights<T>* weights = nullptr,
                     const GemmEpilogue<T>& epilogue = {}) {
    if (M <= 0 || N <= 0) return;
    if (weights && (weights->isa != isa || weights->N != N || weights->K != K)) weights = nullptr;
    const bool in_scratch = epilogue && epilogue.replaces_output;
    if (in_scratch && !weights)
        throw std::logic_error(
            "vit3d::detail::packed_gemm_abt: an epilogue that replaces the output needs "
            "weights packed for the variant that runs");
    const Index P = kernel_shape<T>(isa).columns();
    const Index panels = (N + P - 1) / P;
    const Index chunk = std::min<Index>(std::max<Index>(K, 1), gemm_k_chunk);
    threads = gemm_threads(M, N, K, panels, threads);
    // Many rows and no pack: B is packed whole for this call (each thread its own panels), so that the
    // kernel takes A in blocks of rows (gemm_panels); packing costs ~1/M of the product here.
    const bool pack_whole = !weights && M >= gemm_pack_whole_rows && K > 0;
    AlignedBuffer<T> whole(pack_whole ? panels * K * P : 0);
    const bool prepacked = weights || pack_whole;
    const Index scratch = in_scratch ? gemm_rows_per_pass(M, kernel_shape<T>(isa).rows, prepacked) * P : 0;
    const Index per_thread = (prepacked ? 0 : chunk * P) + P + scratch;
    AlignedBuffer<T> workspace(per_thread * threads);
    const T* panels_of_b = weights ? weights->packed.data() : (pack_whole ? whole.data() : nullptr);
    const GemmProblem<T> g{M, N, K, A, lda, B, ldb, C, ldc, bias, panels_of_b, chunk, epilogue};
    with_kernels(isa, [&](auto kernels) {
        parallel_region(threads, [&](int thread, int thread_count) {
            T* packed = workspace.data() + per_thread * thread;
            T* init = packed + (per_thread - P - scratch);
            const ItemRange share = static_share(panels, thread, thread_count);
            if (pack_whole)
                decltype(kernels)::template pack_weights<T>(B, ldb, N, K, share.begin, share.end,
                                                            whole.data());
            decltype(kernels)::template gemm<T>(g, share.begin, share.end, packed, init, init + P);
        });
    });
}

// The same with the variant this CPU runs best.
template <class T>
void packed_gemm_abt(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc,
                     const T* bias, int threads) {
    packed_gemm_abt(M, N, K, A, lda, B, ldb, C, ldc, bias, threads, active_isa());
}

}  // namespace vit3d::detail

#define VIT3D_GEMM_KERNEL_INSTANCES(X, T)                                                             \
    X(struct vit3d::detail::GemmWeights<T>)                                                           \
    X(void vit3d::detail::packed_gemm_abt<T>(                                                         \
        vit3d::Index, vit3d::Index, vit3d::Index, const T*, vit3d::Index, const T*, vit3d::Index, T*, \
        vit3d::Index, const T*, int, vit3d::Isa, const vit3d::detail::GemmWeights<T>*,                \
        const vit3d::detail::GemmEpilogue<T>&))
VIT3D_EXTERN_INSTANCES(VIT3D_GEMM_KERNEL_INSTANCES)
