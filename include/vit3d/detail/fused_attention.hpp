#pragma once
// The fused attention kernel (FlashAttention's algorithm on a CPU). For each (batch, head, query tile) and
// each key tile in turn:
//     S = (Q * scale) K^T + bias, masked keys -inf      [query tile x key tile], in a small buffer
//     m' = max(m, rowmax S);  P = exp(S - m');  l = l e^(m - m') + rowsum P;  O = O e^(m - m') + P V
// (computed in base 2: S and m carry a factor log2(e), and exp(S - m) = 2^(S - m)),
// and finally out = O / l: 0 for a row whose keys are all masked (l = 0), NaN for a row with a NaN score
// (as torch's softmax). The Nq x Nk scores never exist; per thread the memory is one (batch, head)'s keys
// and values, repacked (O(Nk * head_dim)), plus tile-sized buffers. A DistanceBias is computed inside the
// tile loop from the tokens' coordinates (DistanceBiasRuns), so it needs no Nq x Nk buffer either.
//
// Both products run in the GEMM's register-blocked micro-kernel (micro_kernel in detail/isa/kernels.inc,
// where the per-thread worker lives, once per instruction-set level): `rows` query rows times `vectors`
// vectors of columns accumulate in registers, with one operand broadcast from memory. Keys
// are repacked transposed (detail::pack_transposed) so that S is computed a row of packets at a time, values
// padded to whole packets so that any head_dim works; both as panels of the register block's width that
// the micro-kernel reads front to back, as the GEMM reads its packed weights. Work is split over (batch,
// head, query tile) with a static schedule; a query row is always computed by one thread in the same order,
// so the result does not depend on the thread count at all.

#include <algorithm>
#include <optional>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/distance_bias_runs.hpp"
#include "vit3d/detail/isa/dispatch.hpp"
#include "vit3d/detail/isa/kernel_shapes.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

// The tiles of a problem of this size for the variant of `isa`.
template <class T>
FusedAttentionTiles<T> fused_attention_tiles(Index queries, Index keys, Index head_dim, Isa isa) {
    return FusedAttentionTiles<T>(kernel_shape<T>(isa), queries, keys, head_dim);
}

// Bytes of workspace the fused kernel allocates for a problem of this size on `threads` threads.
template <class T>
Index fused_attention_workspace_bytes(Index queries, Index keys, Index head_dim, int threads,
                                      Isa isa = active_isa()) {
    return fused_attention_tiles<T>(queries, keys, head_dim, isa).thread_workspace() * Index(threads) *
           Index(sizeof(T));
}

template <class T>
int fused_attention_threads(const AttentionProblem<T>& p, int requested, Isa isa = active_isa()) {
    const Index items =
        p.batch * p.heads * fused_attention_tiles<T>(p.queries, p.keys, p.head_dim, isa).query_tiles;
    return static_cast<int>(std::max<Index>(1, std::min<Index>(requested, items)));
}

template <class T>
void fused_attention(const AttentionProblem<T>& p, int threads, Isa isa = active_isa()) {
    const FusedAttentionTiles<T> tiles = fused_attention_tiles<T>(p.queries, p.keys, p.head_dim, isa);
    if (p.batch * p.heads * p.queries == 0) return;
    if (p.keys == 0) {  // nothing to attend: every row is fully masked
        for (Index b = 0; b < p.batch; ++b)
            for (Index h = 0; h < p.heads; ++h)
                for (Index i = 0; i < p.queries; ++i) std::fill_n(p.out_at(b, h, i), p.head_dim, T(0));
        return;
    }
    const Index items = p.batch * p.heads * tiles.query_tiles;
    threads = fused_attention_threads(p, threads, isa);
    const Index per_thread = tiles.thread_workspace();
    // Allocated here: nothing may throw in the region.
    AlignedBuffer<T> workspace(per_thread * threads);
    std::optional<DistanceBiasRuns<T>> distance_runs;
    if (p.distance_bias) distance_runs.emplace(*p.distance_bias, p.keys, tiles.key_tile, tiles.key_tiles);
    const DistanceBiasRuns<T>* runs = distance_runs ? &*distance_runs : nullptr;
    with_kernels(isa, [&](auto kernels) {
        parallel_region(threads, [&](int thread, int thread_count) {
            const ItemRange share = static_share(items, thread, thread_count);
            decltype(kernels)::template attention<T>(p, tiles, workspace.data() + per_thread * thread, runs,
                                                     share.begin, share.end);
        });
    });
}

}  // namespace vit3d::detail

#define VIT3D_FUSED_ATTENTION_INSTANCES(X, T) \
    X(void vit3d::detail::fused_attention<T>(const vit3d::detail::AttentionProblem<T>&, int, vit3d::Isa))
VIT3D_EXTERN_INSTANCES(VIT3D_FUSED_ATTENTION_INSTANCES)
