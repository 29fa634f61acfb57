#pragma once
// Slice-aware self-attention over the tokens of a 3D patch grid: multi-head attention whose scores carry the
// learned slice-distance bias of nn::SliceDistanceBias, so that tokens on the same or neighbouring slices
// attend more strongly. The bias goes to the fused kernel as a DistanceBias (computed tile by tile): at
// 16,385 tokens and 12 heads no 12.9 GB bias tensor exists. Parameter names: qkv, proj (the attention's,
// at this module's level) and slice_bias.{table, prefix_row, prefix_col}.

#include <array>
#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/attention.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/slice_bias.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

struct SliceAwareAttentionConfig {
    MultiHeadAttentionConfig attention;  // dim, heads, qkv bias, ...
    Index levels = 32;           // slice distances 0 .. levels - 1 learned, farther ones share the last
    std::size_t slice_axis = 0;  // grid axis of the slices: 0 = z of a (z, y, x) grid

    SliceDistanceBiasConfig bias() const {
        SliceDistanceBiasConfig c;
        c.heads = attention.heads;
        c.levels = levels;
        c.slice_axis = slice_axis;
        c.prefix_bias = true;  // the class token learns its own row and column values
        return c;
    }
};

template <class T>
struct SliceAwareAttention {
    MultiHeadAttention<T> attention;  // "<prefix>.qkv", "<prefix>.proj"
    SliceDistanceBias<T> slice_bias;  // "<prefix>.slice_bias"

    SliceAwareAttention() = default;
    explicit SliceAwareAttention(const SliceAwareAttentionConfig& c)
        : attention(c.attention), slice_bias(c.bias()) {}

    // x: [B, prefix + prod(grid), D] -> [B, prefix + prod(grid), D]; the tokens after the prefix enumerate
    // the patch grid row-major.
    Tensor<T> forward(const Tensor<T>& x, const std::array<Index, 3>& grid, Index prefix) const {
        Index tokens = prefix;
        tokens += grid[0] * grid[1] * grid[2];
        if (x.rank() != 3 || x.dim(1) != tokens)
            throw shape_error(message("vit3d::nn::SliceAwareAttention::forward: expected x [B, ", tokens,
                                      ", D] for ", prefix, " prefix tokens and grid ", grid, ", got ",
                                      x.shape()));
        const SliceDistanceTables<T> tables = slice_bias.describe(grid, prefix);
        const DistanceBias<T> distance = tables.view();
        AttentionInputs<T> in;
        in.distance_bias = &distance;
        return attention.forward(x, in);
    }

    // The softmax weights of token `query` (0: the class token) over all tokens, [B, heads, prefix + N], with
    // the slice bias: what forward forms for that row, without forming the others.
    Tensor<T> query_weights(const Tensor<T>& x, const std::array<Index, 3>& grid, Index prefix,
                            Index query) const {
        const SliceDistanceTables<T> tables = slice_bias.describe(grid, prefix);
        const DistanceBias<T> distance = tables.view();
        AttentionInputs<T> in;
        in.distance_bias = &distance;
        return attention.query_weights(x, query, in);
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.attention.visit_parameters(f, prefix);
        self.slice_bias.visit_parameters(f, join_name(prefix, "slice_bias"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_SLICE_AWARE_ATTENTION_INSTANCES(X, T) X(struct vit3d::nn::SliceAwareAttention<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_SLICE_AWARE_ATTENTION_INSTANCES)
