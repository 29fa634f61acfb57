#pragma once
// The CT encoder's transformer block (pre-norm), each step with a residual connection:
//     x += SliceAwareAttention(norm1(x))
//     x += RegionAwareAttention(norm2(x), region tokens, assignment)     with an anatomical mask only
//     x += Mlp(norm3(x))                                                 MLP ratio 4 by default
// Without region tokens it is a slice-aware ViT block (norm2 and region_attn stay unused). Parameter names:
// norm1, attn (qkv, proj, slice_bias), norm2, region_attn (qkv, proj), norm3, mlp (fc1, fc2).

#include <array>
#include <string>

#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/layer_norm.hpp"
#include "vit3d/nn/mlp.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/region_aware_attention.hpp"
#include "vit3d/nn/slice_aware_attention.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

// The fields' meanings are in list_fields.
struct HybridBlockConfig {
    Index dim = 768;
    Index heads = 12;
    Index mlp_dim = 3072;
    Index levels = 32;
    std::size_t slice_axis = 0;
    double eps = 1e-6;
    bool qkv_bias = true;
    Activation activation = Activation::gelu;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        using Attention = MultiHeadAttentionConfig;
        using SliceAttention = SliceAwareAttentionConfig;
        f(field("dim", c.dim, "token width D").positive().into(&Attention::dim));
        f(field("heads", c.heads, "attention heads").positive().into(&Attention::heads));
        f(field("mlp_dim", c.mlp_dim, "hidden width of the MLP").positive());
        f(field("levels", c.levels, "slice distances with a learned bias per head")
              .positive()
              .into(&SliceAttention::levels));
        f(field("slice_axis", c.slice_axis,
                "the grid axis the slices are cut along (0: z of a (z, y, x) grid)")
              .into(&SliceAttention::slice_axis));
        f(field("eps", c.eps, "epsilon of the LayerNorms").positive());
        f(field("qkv_bias", c.qkv_bias, "the q, k, v projections have a bias").into(&Attention::qkv_bias));
        f(field("activation", c.activation, "activation of the MLP"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    // Of both the slice- and the region-aware attention.
    MultiHeadAttentionConfig attention() const { return sub_config<MultiHeadAttentionConfig>(*this); }
    SliceAwareAttentionConfig slice_attention() const {
        SliceAwareAttentionConfig c = sub_config<SliceAwareAttentionConfig>(*this);
        c.attention = attention();
        return c;
    }
};

template <class T>
struct HybridBlock {
    LayerNorm<T> norm1;
    SliceAwareAttention<T> attn;
    LayerNorm<T> norm2;
    RegionAwareAttention<T> region_attn;
    LayerNorm<T> norm3;
    Mlp<T> mlp;

    HybridBlock() = default;
    explicit HybridBlock(const HybridBlockConfig& c)
        : norm1(c.dim, c.eps),
          attn(c.slice_attention()),
          norm2(c.dim, c.eps),
          region_attn(c.attention()),
          norm3(c.dim, c.eps),
          mlp(c.dim, c.mlp_dim, c.activation) {}

    // x [B, prefix + prod(grid), D] -> the same shape. regions [B, R + 1, D] and assignment [B, N, R + 1]
    // (both or neither) switch the region-aware step on.
    Tensor<T> forward(Tensor<T> x, const std::array<Index, 3>& grid, Index prefix,
                      const Tensor<T>* regions = nullptr, const Tensor<T>* assignment = nullptr) const {
        if ((regions == nullptr) != (assignment == nullptr))
            throw std::invalid_argument(
                "vit3d::nn::HybridBlock::forward: give both the region tokens and the assignment, or "
                "neither");
        x += attn.forward(norm1.forward(x), grid, prefix);
        if (regions) x += region_attn.forward(norm2.forward(x), *regions, *assignment, prefix);
        x += mlp.forward(norm3.forward(x));
        return x;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.norm1.visit_parameters(f, join_name(prefix, "norm1"));
        self.attn.visit_parameters(f, join_name(prefix, "attn"));
        self.norm2.visit_parameters(f, join_name(prefix, "norm2"));
        self.region_attn.visit_parameters(f, join_name(prefix, "region_attn"));
        self.norm3.visit_parameters(f, join_name(prefix, "norm3"));
        self.mlp.visit_parameters(f, join_name(prefix, "mlp"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_HYBRID_BLOCK_INSTANCES(X, T) X(struct vit3d::nn::HybridBlock<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_HYBRID_BLOCK_INSTANCES)
