#pragma once
// The one memory-movement kernel behind permute, slicing, concat and einops rearrange / repeat: copy a
// strided view of one buffer into a strided view of another in a single pass, after fusing axes that
// stay contiguous so that the inner loop is as long as the layouts allow.

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/shape.hpp"

namespace vit3d::detail {

// One loop nest over `dims` that addresses two buffers, each through its own element strides.
struct LoopNest {
    Shape dims;
    Shape dst_strides;
    Shape src_strides;
};

// Drops axes of length 1 and fuses each axis into its inner neighbour where both buffers step over the
// pair as over one axis. Returns false when the nest has no positions (some length is 0).
inline bool simplify(LoopNest& nest) {
    LoopNest fused;  // built innermost axis first
    for (std::size_t i = nest.dims.size(); i-- > 0;) {
        const Index len = nest.dims[i];
        if (len == 0) return false;
        if (len == 1) continue;
        if (!fused.dims.empty()) {
            Index& inner_len = fused.dims.back();
            if (nest.dst_strides[i] == fused.dst_strides.back() * inner_len &&
                nest.src_strides[i] == fused.src_strides.back() * inner_len) {
                inner_len *= len;
                continue;
            }
        }
        fused.dims.push_back(len);
        fused.dst_strides.push_back(nest.dst_strides[i]);
        fused.src_strides.push_back(nest.src_strides[i]);
    }
    std::reverse(fused.dims.begin(), fused.dims.end());
    std::reverse(fused.dst_strides.begin(), fused.dst_strides.end());
    std::reverse(fused.src_strides.begin(), fused.src_strides.end());
    nest = std::move(fused);
    return true;
}

// Removes axis `axis` from the nest (its loop is then run by the caller's body).
inline void drop_axis(LoopNest& nest, std::size_t axis) {
    nest.dims.erase(nest.dims.begin() + static_cast<std::ptrdiff_t>(axis));
    nest.dst_strides.erase(nest.dst_strides.begin() + static_cast<std::ptrdiff_t>(axis));
    nest.src_strides.erase(nest.src_strides.begin() + static_cast<std::ptrdiff_t>(axis));
}

// Calls body(dst_offset, src_offset) for the row-major positions [begin, end) of the nest.
template <class Body>
void for_each_position(const LoopNest& nest, Index begin, Index end, Body&& body) {
    const std::size_t rank = nest.dims.size();
    if (begin >= end) return;
    Shape index(rank, 0);
    Index dst = 0, src = 0;
    for (std::size_t i = rank, rest = static_cast<std::size_t>(begin); i-- > 0;) {
        index[i] = static_cast<Index>(rest % static_cast<std::size_t>(nest.dims[i]));
        rest /= static_cast<std::size_t>(nest.dims[i]);
        dst += index[i] * nest.dst_strides[i];
        src += index[i] * nest.src_strides[i];
    }
    for (Index position = begin; position < end; ++position) {
        body(dst, src);
        for (std::size_t i = rank; i-- > 0;) {
            if (++index[i] < nest.dims[i]) {
                dst += nest.dst_strides[i];
                src += nest.src_strides[i];
                break;
            }
            dst -= (nest.dims[i] - 1) * nest.dst_strides[i];
            src -= (nest.dims[i] - 1) * nest.src_strides[i];
            index[i] = 0;
        }
    }
}

// Below this many elements of work a parallel region costs more than it saves.
inline constexpr Index kParallelWorkThreshold = Index(1) << 17;

// Runs body over every position of the nest, split into contiguous ranges over vit3d::num_threads()
// threads when the work is large enough. `work_per_position` is the element count one body call moves.
template <class Body>
void run_nest(const LoopNest& nest, Index work_per_position, Body body) {
    Index count = 1;
    for (Index len : nest.dims) count *= len;
#ifdef _OPENMP
    const int threads = static_cast<int>(std::min<Index>(num_threads(), count));
    if (threads > 1 && count * work_per_position >= kParallelWorkThreshold && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const Index team = omp_get_num_threads(), me = omp_get_thread_num();
            for_each_position(nest, count * me / team, count * (me + 1) / team, body);
        }
        return;
    }
#else
    (void)work_per_position;
#endif
    for_each_position(nest, 0, count, body);
}

// dst[j * dst_stride] = src[j * src_stride] for j < n.
template <class T>
inline void copy_run(T* dst, Index dst_stride, const T* src, Index src_stride, Index n) {
    if (dst_stride == 1 && src_stride == 1) {
        if (n >= 256) {
            std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
        } else {
            for (Index j = 0; j < n; ++j) dst[j] = src[j];
        }
    } else if (dst_stride == 1 && src_stride == 0) {
        std::fill_n(dst, n, *src);
    } else {
        for (Index j = 0; j < n; ++j) dst[j * dst_stride] = src[j * src_stride];
    }
}

// Copies a block of rows x n elements whose rows are contiguous runs on both sides.
template <class T, Index N>
inline void copy_rows_fixed(T* dst, Index dst_row, const T* src, Index src_row, Index rows) {
    for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < N; ++j) dst[i * dst_row + j] = src[i * src_row + j];
}

template <class T>
inline void copy_rows(T* dst, Index dst_row, Index dst_step, const T* src, Index src_row, Index src_step,
                      Index rows, Index n) {
    if (dst_step == 1 && src_step == 1) {
        // Short runs are common in patchify layouts (4 frames, 16 pixels): unroll them at compile time.
        switch (n) {
            case 2:
                return copy_rows_fixed<T, 2>(dst, dst_row, src, src_row, rows);
            case 4:
                return copy_rows_fixed<T, 4>(dst, dst_row, src, src_row, rows);
            case 8:
                return copy_rows_fixed<T, 8>(dst, dst_row, src, src_row, rows);
            case 16:
                return copy_rows_fixed<T, 16>(dst, dst_row, src, src_row, rows);
            default:
                break;
        }
    }
    for (Index i = 0; i < rows; ++i) copy_run(dst + i * dst_row, dst_step, src + i * src_row, src_step, n);
}

// Interleaves N planes, `blocks` times: dst[b * dst_block + a * N + j] = src[b * src_block + a + j * plane]
// (e.g. the channels of an image row into patch vectors).
template <class T, Index N>
inline void interleave(T* __restrict dst, Index dst_block, const T* __restrict src, Index src_block,
                       Index plane, Index m, Index blocks) {
    for (Index b = 0; b < blocks; ++b)
        for (Index a = 0; a < m; ++a)
            for (Index j = 0; j < N; ++j) dst[b * dst_block + a * N + j] = src[b * src_block + a + j * plane];
}

// Splits N interleaved planes, `blocks` times: dst[b * dst_block + a * row + j] = src[b * src_block + j * N +
// a] (the inverse of interleave).
template <class T, Index N>
inline void deinterleave(T* __restrict dst, Index dst_block, Index row, const T* __restrict src,
                         Index src_block, Index n, Index blocks) {
    for (Index b = 0; b < blocks; ++b)
        for (Index j = 0; j < n; ++j)
            for (Index a = 0; a < N; ++a) dst[b * dst_block + a * row + j] = src[b * src_block + j * N + a];
}

// dst[b * dst_block + a * dst_row + j] = src[b * src_block + a + j * src_step] for a < m, j < n, b < blocks:
// a transpose between dst's inner axis (j) and src's (a), repeated over blocks. Few planes (channels)
// get unrolled kernels the compiler vectorizes; otherwise tiles of 16 keep both sides' cache lines in
// use instead of touching a new src line per element.
template <class T>
inline void copy_transposed(T* dst, Index dst_block, Index dst_row, const T* src, Index src_block,
                            Index src_step, Index m, Index n, Index blocks) {
    if (dst_row == n && n <= 4) {
        switch (n) {
            case 2:
                return interleave<T, 2>(dst, dst_block, src, src_block, src_step, m, blocks);
            case 3:
                return interleave<T, 3>(dst, dst_block, src, src_block, src_step, m, blocks);
            case 4:
                return interleave<T, 4>(dst, dst_block, src, src_block, src_step, m, blocks);
            default:
                break;
        }
    }
    if (src_step == m && m <= 4) {
        switch (m) {
            case 2:
                return deinterleave<T, 2>(dst, dst_block, dst_row, src, src_block, n, blocks);
            case 3:
                return deinterleave<T, 3>(dst, dst_block, dst_row, src, src_block, n, blocks);
            case 4:
                return deinterleave<T, 4>(dst, dst_block, dst_row, src, src_block, n, blocks);
            default:
                break;
        }
    }
    constexpr Index tile = 16;
    for (Index b = 0; b < blocks; ++b)
        for (Index j0 = 0; j0 < n; j0 += tile) {
            const Index j1 = std::min(n, j0 + tile);
            for (Index a = 0; a < m; ++a) {
                T* drow = dst + b * dst_block + a * dst_row;
                const T* scol = src + b * src_block + a;
                for (Index j = j0; j < j1; ++j) drow[j] = scol[j * src_step];
            }
        }
}

// How many interleaved sequential streams the `dst_strides` side of a nest walks in its first positions,
// when the inner loop copies runs of `run` elements: a run that starts where an earlier one ended
// continues that stream. Few streams suit the hardware prefetchers; dozens defeat them.
inline Index count_streams(const LoopNest& nest, const Shape& side, Index run) {
    constexpr Index window = 128;
    Index count = 1;
    for (Index len : nest.dims) count *= len;
    LoopNest probe{nest.dims, side, side};
    std::vector<Index> ends;
    for_each_position(probe, 0, std::min(count, window), [&](Index offset, Index) {
        auto it = std::find(ends.begin(), ends.end(), offset);
        if (it != ends.end()) {
            *it = offset + run;
        } else {
            ends.push_back(offset + run);
        }
    });
    return static_cast<Index>(ends.size());
}

// For large copies of contiguous runs: walks the outer axes in source memory order instead of
// destination order when the destination order would read more interleaved streams than the source
// order writes. Both orders give the same result; on the 3D ViT patchify the source order reads each
// input row once, front to back, and runs about twice as fast.
inline void prefer_sequential_reads(LoopNest& outer_and_inner, Index run) {
    LoopNest& nest = outer_and_inner;
    if (nest.dims.size() < 3) return;
    Index total = 1;
    for (Index len : nest.dims) total *= len;
    if (total < (Index(1) << 20)) return;  // the probe costs microseconds: only worth it for big copies
    LoopNest outer = nest, by_source;
    drop_axis(outer, outer.dims.size() - 1);
    std::vector<std::size_t> order(outer.dims.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return outer.src_strides[a] > outer.src_strides[b];
    });
    for (std::size_t i : order) {
        by_source.dims.push_back(outer.dims[i]);
        by_source.dst_strides.push_back(outer.dst_strides[i]);
        by_source.src_strides.push_back(outer.src_strides[i]);
    }
    if (count_streams(by_source, by_source.dst_strides, run) >= count_streams(outer, outer.src_strides, run))
        return;
    by_source.dims.push_back(nest.dims.back());
    by_source.dst_strides.push_back(nest.dst_strides.back());
    by_source.src_strides.push_back(nest.src_strides.back());
    nest = std::move(by_source);
}

// Copies the strided view (nest.dims, nest.src_strides) of src onto the strided view (nest.dims,
// nest.dst_strides) of dst. The views must not overlap. Stride 0 in src broadcasts.
template <class T>
void copy_strided(T* dst, const T* src, LoopNest nest) {
    if (!simplify(nest)) return;
    if (nest.dims.empty()) {
        *dst = *src;
        return;
    }
    const std::size_t inner = nest.dims.size() - 1;
    const Index n = nest.dims[inner], dst_step = nest.dst_strides[inner], src_step = nest.src_strides[inner];

    // A transpose: dst runs along the inner axis, src along another one.
    if (dst_step == 1 && src_step != 1 && src_step != 0) {
        std::size_t along = inner;
        for (std::size_t k = 0; k < inner; ++k)
            if (nest.src_strides[k] == 1) along = k;
        if (along != inner) {
            const Index m = nest.dims[along], dst_row = nest.dst_strides[along];
            drop_axis(nest, inner);
            drop_axis(nest, along);
            // One more axis runs inside the body, so that loop bookkeeping is paid once per block.
            Index blocks = 1, dst_block = 0, src_block = 0;
            if (!nest.dims.empty()) {
                blocks = nest.dims.back();
                dst_block = nest.dst_strides.back();
                src_block = nest.src_strides.back();
                drop_axis(nest, nest.dims.size() - 1);
            }
            run_nest(nest, n * m * blocks, [&](Index dst_offset, Index src_offset) {
                copy_transposed(dst + dst_offset, dst_block, dst_row, src + src_offset, src_block, src_step,
                                m, n, blocks);
            });
            return;
        }
    }
    if (dst_step == 1 && src_step == 1) prefer_sequential_reads(nest, n);

    // Otherwise each call of the body copies a block of the three innermost axes, so that the loop
    // bookkeeping is paid once per block rather than once per (possibly short) run.
    if (inner == 0) {
        copy_run(dst, dst_step, src, src_step, n);
        return;
    }
    const std::size_t outer = inner - 1;
    const Index rows = nest.dims[outer], dst_row = nest.dst_strides[outer], src_row = nest.src_strides[outer];
    drop_axis(nest, inner);
    drop_axis(nest, outer);
    Index planes = 1, dst_plane = 0, src_plane = 0;
    if (!nest.dims.empty()) {
        planes = nest.dims.back();
        dst_plane = nest.dst_strides.back();
        src_plane = nest.src_strides.back();
        drop_axis(nest, nest.dims.size() - 1);
    }
    run_nest(nest, n * rows * planes, [&](Index dst_offset, Index src_offset) {
        for (Index p = 0; p < planes; ++p)
            copy_rows(dst + dst_offset + p * dst_plane, dst_row, dst_step, src + src_offset + p * src_plane,
                      src_row, src_step, rows, n);
    });
}

}  // namespace vit3d::detail
