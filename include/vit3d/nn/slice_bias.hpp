#pragma once
// A learned attention bias from the distance between the slices two tokens lie in, for slice-aware attention
// over 3D volumes (tokens on the same or neighbouring slices attend more strongly):
//     bias[h, i, j] = table[h, min(|s(i) - s(j)|, levels - 1)]
// where s(t) is patch token t's coordinate along the slice axis of the patch grid (tokens row-major over the
// grid, after `prefix` tokens such as a class token). A prefix token has no slice: with prefix_bias, its row
// takes the learned per-head value prefix_row[h] (for every key, the prefix keys included) and its column,
// seen from a patch token, prefix_col[h]; without, both are 0.
//
// describe() gives the bias as nn::DistanceBias, which the fused attention kernel evaluates tile by tile:
// nothing of size N x N exists (at 16,385 tokens and 12 heads the dense bias would be 12.9 GB). bias() builds
// the dense [1, heads, N, N] tensor, the reference in tests.

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/scaled_dot_product_attention.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

struct SliceDistanceBiasConfig {
    Index heads = 12;
    Index levels = 32;           // learned distances 0 .. levels - 1; farther slices share the last level
    std::size_t slice_axis = 0;  // the grid axis the slices are cut along (0: depth of a [D, H, W] grid)
    bool prefix_bias = false;    // learned row / column values for prefix tokens (else 0)
};

// An owned DistanceBias for one grid: the slice index of every patch token and the per-head value of every
// distance that occurs. view() is what AttentionInputs::distance_bias takes; it points into this object.
template <class T>
struct SliceDistanceTables {
    Index heads = 0, distances = 0, prefix = 0;
    std::vector<Index> slices;     // [tokens]: the slice of each patch token
    std::vector<T> by_distance;    // [heads, distances]
    std::vector<T> prefix_row;     // [heads]
    std::vector<T> prefix_column;  // [heads]

    DistanceBias<T> view() const {
        DistanceBias<T> d;
        d.heads = heads;
        d.distances = distances;
        d.by_distance = by_distance.data();
        d.query_coords = d.key_coords = slices.data();
        d.query_prefix = d.key_prefix = prefix;
        d.query_prefix_bias = prefix_row.data();
        d.key_prefix_bias = prefix_column.data();
        return d;
    }
};

template <class T>
struct SliceDistanceBias {
    Tensor<T> table;                      // [heads, levels] ("<prefix>.table")
    std::optional<Tensor<T>> prefix_row;  // [heads] ("<prefix>.prefix_row"), with prefix_bias
    std::optional<Tensor<T>> prefix_col;  // [heads] ("<prefix>.prefix_col"), with prefix_bias
    std::size_t slice_axis = 0;

    SliceDistanceBias() = default;
    // Zero parameters of the configured shape.
    explicit SliceDistanceBias(const SliceDistanceBiasConfig& c) : slice_axis(c.slice_axis) {
        if (c.heads <= 0 || c.levels <= 0 || c.slice_axis > 2)
            throw shape_error(message(
                "vit3d::nn::SliceDistanceBias: expected heads > 0, levels > 0 and a slice axis 0-2, got ",
                c.heads, " heads, ", c.levels, " levels, axis ", c.slice_axis));
        table = Tensor<T>(Shape{c.heads, c.levels});
        if (c.prefix_bias) {
            prefix_row = Tensor<T>(Shape{c.heads});
            prefix_col = Tensor<T>(Shape{c.heads});
        }
    }

    Index heads() const { return table.dim(0); }

    // The bias of a 3D patch grid with `prefix` tokens before the patch tokens, for the attention kernels.
    SliceDistanceTables<T> describe(const std::array<Index, 3>& grid, Index prefix = 0) const {
        const char* op = "vit3d::nn::SliceDistanceBias::describe";
        check(grid, prefix, op);
        const Index H = heads(), levels = table.dim(1);
        SliceDistanceTables<T> t;
        t.heads = H;
        t.prefix = prefix;
        t.distances = grid[slice_axis];  // distances 0 .. grid - 1 occur
        t.slices = slice_indices(grid);
        t.by_distance.resize(static_cast<std::size_t>(H * t.distances));
        for (Index h = 0; h < H; ++h)
            for (Index d = 0; d < t.distances; ++d)
                t.by_distance[static_cast<std::size_t>(h * t.distances + d)] =
                    table(h, std::min(d, levels - 1));
        t.prefix_row.assign(static_cast<std::size_t>(H), T(0));
        t.prefix_column.assign(static_cast<std::size_t>(H), T(0));
        if (prefix_row) std::copy_n(prefix_row->data(), H, t.prefix_row.begin());
        if (prefix_col) std::copy_n(prefix_col->data(), H, t.prefix_column.begin());
        return t;
    }

    // The dense bias [1, heads, prefix + prod(grid), prefix + prod(grid)]: the reference for describe().
    Tensor<T> bias(const std::array<Index, 3>& grid, Index prefix = 0) const {
        const SliceDistanceTables<T> tables = describe(grid, prefix);
        const DistanceBias<T> d = tables.view();
        const Index H = heads(), N = prefix + static_cast<Index>(tables.slices.size());
        Tensor<T> out = Tensor<T>::empty({1, H, N, N});
        for (Index h = 0; h < H; ++h)
            for (Index i = 0; i < N; ++i)
                for (Index j = 0; j < N; ++j) out(0, h, i, j) = d.at(h, i, j);
        return out;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "table"), self.table);
        if (self.prefix_row) f(join_name(prefix, "prefix_row"), *self.prefix_row);
        if (self.prefix_col) f(join_name(prefix, "prefix_col"), *self.prefix_col);
    }

    void check(const std::array<Index, 3>& grid, Index prefix, const char* op) const {
        const bool prefix_ok =
            (!prefix_row && !prefix_col) ||
            (prefix_row && prefix_col && prefix_row->rank() == 1 && prefix_col->rank() == 1 &&
             prefix_row->dim(0) == table.dim(0) && prefix_col->dim(0) == table.dim(0));
        if (table.rank() != 2 || table.dim(0) < 1 || table.dim(1) < 1 || slice_axis > 2 || prefix < 0 ||
            !prefix_ok || grid[0] < 1 || grid[1] < 1 || grid[2] < 1)
            throw shape_error(message(
                op,
                ": expected a table [heads, levels], prefix_row and prefix_col [heads] (both or neither), "
                "slice axis 0-2, a grid of positive sizes and prefix >= 0, got table ",
                table.shape(), ", prefix_row ",
                (prefix_row ? shape_to_string(prefix_row->shape()) : std::string("none")), ", prefix_col ",
                (prefix_col ? shape_to_string(prefix_col->shape()) : std::string("none")), ", axis ",
                slice_axis, ", grid ", grid, ", prefix ", prefix));
    }

    // The slice coordinate of every token of the grid, tokens row-major.
    std::vector<Index> slice_indices(const std::array<Index, 3>& grid) const {
        Index inner = 1;
        for (std::size_t a = slice_axis + 1; a < 3; ++a) inner *= grid[a];
        std::vector<Index> slices(static_cast<std::size_t>(grid[0] * grid[1] * grid[2]));
        for (std::size_t t = 0; t < slices.size(); ++t)
            slices[t] = (static_cast<Index>(t) / inner) % grid[slice_axis];
        return slices;
    }
};

}  // namespace vit3d::nn

#define VIT3D_SLICE_BIAS_INSTANCES(X, T) X(struct vit3d::nn::SliceDistanceBias<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_SLICE_BIAS_INSTANCES)
