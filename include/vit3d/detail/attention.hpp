#pragma once
// Runs an AttentionProblem with the kernel the caller chose: the one place that decides between the fused
// and the naive kernel, and what each costs in scratch memory.

#include <algorithm>
#include <stdexcept>
#include <string>

#include "vit3d/core/config.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/fused_attention.hpp"
#include "vit3d/detail/naive_attention.hpp"

namespace vit3d::detail {

// `weights`, when not null, receives the softmax weights [B, H, Nq, Nk] (contiguous) and needs the naive
// kernel, the only one that forms them. `op` names the caller in messages.
template <class T>
void run_attention(const AttentionProblem<T>& problem, AttentionKernel kernel, T* weights, int threads,
                   const char* op) {
    problem.check(op);
    if (weights && kernel == AttentionKernel::fused)
        throw std::invalid_argument(message(op,
                                            ": the fused kernel never forms the attention weights; ask for "
                                            "AttentionKernel::naive or automatic to receive them"));
    if (weights || kernel == AttentionKernel::naive)
        naive_attention(problem, weights, threads);
    else
        fused_attention(problem, threads);
}

// Bytes of scratch memory `kernel` allocates for one call with these sizes on `threads` threads (the naive
// kernel: its scores matrices; the fused kernel: its packed keys, values and tiles).
template <class T>
Index kernel_workspace_bytes(AttentionKernel kernel, Index batch_heads, Index queries, Index keys,
                             Index head_dim, int threads) {
    if (kernel == AttentionKernel::naive)
        return std::max<Index>(1, std::min<Index>(threads, batch_heads)) * queries * keys * Index(sizeof(T));
    const Index tiles = fused_attention_tiles<T>(queries, keys, head_dim, active_isa()).query_tiles;
    const Index used = std::max<Index>(1, std::min<Index>(threads, batch_heads * tiles));
    return fused_attention_workspace_bytes<T>(queries, keys, head_dim, static_cast<int>(used));
}

// The same for this problem, including what its distance bias needs (O(keys), never O(queries x keys)).
template <class T>
Index kernel_workspace_bytes(const AttentionProblem<T>& p, AttentionKernel kernel, int threads) {
    Index bytes =
        kernel_workspace_bytes<T>(kernel, p.batch * p.heads, p.queries, p.keys, p.head_dim, threads);
    if (p.distance_bias && kernel != AttentionKernel::naive)
        bytes += DistanceBiasRuns<T>::bytes(
            p.heads, p.distance_bias->distances, p.keys,
            fused_attention_tiles<T>(p.queries, p.keys, p.head_dim, active_isa()).key_tiles);
    return bytes;
}

}  // namespace vit3d::detail
