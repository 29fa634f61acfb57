#pragma once
// What the kernel variants have in common and the dispatching code needs to know about them: the register
// block of a variant (vector width, rows x vectors of accumulators) and the fused attention's tile sizes and
// workspace, which follow from it.

#include <algorithm>

#include "vit3d/core/config.hpp"

namespace vit3d::detail {

inline constexpr Index round_up(Index n, Index multiple) { return (n + multiple - 1) / multiple * multiple; }
inline constexpr Index ceil_div(Index n, Index d) { return (n + d - 1) / d; }
inline constexpr Index cache_line_bytes = 64;

// A register block: `rows` rows of A times `vectors` vectors of `width` elements accumulate in registers, so
// rows * vectors + vectors + 1 registers are live in the inner loop.
struct KernelShape {
    int width, rows, vectors;
    constexpr Index columns() const { return Index(vectors) * width; }
};

// The block of a variant with `registers` vector registers of `width` elements: 6 x 4 (29 of 32 registers)
// with AVX-512 or NEON, 4 x 3 (16 of 16) with AVX2 and SSE2. The 4 x 3 block loads 3 vectors and broadcasts
// 4 scalars per 12 FMAs, within the two load ports' budget of the FMA units.
inline constexpr KernelShape register_block(int width, int registers) {
    return registers >= 32 ? KernelShape{width, 6, 4} : KernelShape{width, 4, 3};
}

// The fused attention's tiles for one problem size and register block.
template <class T>
struct FusedAttentionTiles {
    KernelShape shape;
    Index block_columns = 0, key_tile = 0, max_query_tile = 0;
    Index query_tile = 0, query_tiles = 0, key_tiles = 0, head_dim = 0, padded_dim = 0;

    FusedAttentionTiles(KernelShape block, Index queries, Index keys, Index dim)
        : shape(block), head_dim(dim) {
        block_columns = block.columns();
        // The online softmax pays a fixed cost per row and key tile (two reductions, a rescale of the row's
        // accumulator), so the keys go in as few tiles of at most ~512 as they need (256 measured 3-6% slower
        // than 384 on a two-FMA-port Xeon), and in equal tiles: 1024 keys in 384 + 384 + 256 paid that cost
        // three times, and took 5% longer than in 2 x 512 on AVX2. The scores buffer (query_tile x key_tile,
        // 132-192 KiB) stays in L2.
        const Index key_tiles_needed = std::max<Index>(1, ceil_div(keys, 512));
        key_tile = round_up(std::max<Index>(1, ceil_div(keys, key_tiles_needed)), block_columns);
        max_query_tile = Index(block.rows) * 16;
        // Equal query tiles, so that the last one is not a sliver that costs a full pass over the keys.
        query_tiles = std::max<Index>(1, ceil_div(queries, max_query_tile));
        query_tile = round_up(std::max<Index>(1, ceil_div(queries, query_tiles)), block.rows);
        key_tiles = ceil_div(keys, key_tile);
        padded_dim = round_up(dim, block.width);
    }

    // Per-thread workspace, each part a whole number of cache lines.
    static Index part(Index n) { return round_up(n, Index(64 / sizeof(T)) > 0 ? Index(64 / sizeof(T)) : 1); }
    Index packed_keys_size() const { return part(key_tiles * key_tile * head_dim); }
    Index packed_values_size() const { return part(key_tiles * key_tile * padded_dim); }
    Index queries_size() const { return part(query_tile * head_dim); }
    Index scores_size() const { return part(query_tile * key_tile); }
    Index accumulator_size() const { return part(query_tile * padded_dim); }
    Index thread_workspace() const {
        return packed_keys_size() + packed_values_size() + queries_size() + scores_size() +
               accumulator_size() + 3 * part(query_tile);
    }
};

}  // namespace vit3d::detail

namespace vit3d::detail {

// Work on a block of the GEMM's output done as soon as the block's last chunk of K is in, while it is in L1:
// rows [row, row + rows) and columns [col, col + cols) of C, at `c` with rows `ldc` apart. An activation
// rewrites the block in place. With `replaces_output`, C is not written at all: each thread accumulates its
// blocks in scratch, and `apply` alone writes the result elsewhere (a gated MLP's act(gate) * value, half as
// many columns as the product).
template <class T>
struct GemmEpilogue {
    void (*apply)(const void* context, T* c, Index ldc, Index row, Index rows, Index col,
                  Index cols) = nullptr;
    const void* context = nullptr;
    bool replaces_output = false;

    explicit operator bool() const { return apply != nullptr; }
};

// C [M, N] = A [M, K] * B [N, K]^T + bias [N] for one call of the GEMM, row-major with row strides lda, ldb,
// ldc. `prepacked`, when not null, holds B packed for the variant that runs (GemmWeights), so that B itself
// is not read. K is worked through in chunks of k_chunk.
template <class T>
struct GemmProblem {
    Index M, N, K;
    const T* A;
    Index lda;
    const T* B;
    Index ldb;
    T* C;
    Index ldc;
    const T* bias;
    const T* prepacked;
    Index k_chunk;
    GemmEpilogue<T> epilogue;
};

// The rows of A per pass over B in the GEMM (gemm_panels, detail/isa/kernels.inc). Over a prepacked B:
// about 240, in equal passes, as many as M holds 240s rounded to the nearest (one at least), each rounded up
// to a multiple of the register block's rows R. Each pass streams all of B from memory again (the weights of
// a layer do not stay in cache), so M = 256 goes in one pass of 256 rather than 240 + 16, which read B twice
// for 6% more rows. Without a pack, B's slices are packed per pass: one pass of all M rows.
inline Index gemm_rows_per_pass(Index M, int R, bool prepacked) {
    if (!prepacked) return std::max<Index>(M, 1);
    const Index block = R * (240 / R);
    const Index passes = std::max<Index>(1, (M + block / 2) / block);
    return ceil_div(ceil_div(M, passes), Index(R)) * R;
}

}  // namespace vit3d::detail
