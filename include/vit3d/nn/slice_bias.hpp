#pragma once
// A learned attention bias from the distance between the slices two tokens lie in, for slice-aware
// attention over 3D volumes: bias[h, i, j] = table[h, min(|s(i) - s(j)|, max_distance)], where s(t) is
// token t's coordinate along the slice axis of the patch grid (tokens row-major over the grid, after
// `prefix` tokens such as a class token, which get bias 0). The result [1, heads, N, N] goes to
// MultiHeadAttention as AttentionInputs::bias, shared by the batch.

#include <array>
#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

template <class T>
struct SliceDistanceBias {
    Tensor<T> table;             // [heads, max_distance + 1] ("<prefix>.table")
    std::size_t slice_axis = 0;  // which grid axis the slices are cut along

    SliceDistanceBias() = default;
    SliceDistanceBias(Index heads, Index max_distance, std::size_t axis)
        : table(Shape{heads, max_distance + 1}), slice_axis(axis) {}

    // The bias [1, heads, prefix + prod(grid), prefix + prod(grid)] for a 3D patch grid.
    Tensor<T> bias(const std::array<Index, 3>& grid, Index prefix = 0) const {
        const char* op = "vit3d::nn::SliceDistanceBias::bias";
        if (table.rank() != 2 || table.dim(1) < 1 || slice_axis > 2 || prefix < 0)
            throw shape_error(std::string(op) +
                              ": expected a table [heads, max_distance + 1] and slice axis 0-2, got " +
                              shape_to_string(table.shape()) + " and axis " + std::to_string(slice_axis));
        const Index heads = table.dim(0), max_distance = table.dim(1) - 1;
        Index tokens = 1, inner = 1;
        for (std::size_t a = 0; a < 3; ++a) {
            tokens *= grid[a];
            if (a > slice_axis) inner *= grid[a];
        }
        const Index N = prefix + tokens;
        Tensor<T> out({1, heads, N, N});
        for (Index h = 0; h < heads; ++h)
            for (Index i = 0; i < tokens; ++i) {
                const Index si = (i / inner) % grid[slice_axis];
                T* row = out.data() + (h * N + prefix + i) * N + prefix;
                for (Index j = 0; j < tokens; ++j) {
                    const Index sj = (j / inner) % grid[slice_axis];
                    const Index d = si > sj ? si - sj : sj - si;
                    row[j] = table(h, d < max_distance ? d : max_distance);
                }
            }
        return out;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "table"), self.table);
    }
};

}  // namespace vit3d::nn
