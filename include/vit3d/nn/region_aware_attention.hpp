#pragma once
// Region-aware attention: cross-attention from the patch tokens (queries) to the region tokens of
// nn::AnatomicalEncoder (keys and values; R + 1 of them, background first), weighted and gated by each
// patch's own soft assignment a_n = A[b, n, :] (which sums to 1 over labels 0..R):
//     w[h, n, r] = softmax_r(q_n . k_r / sqrt(d) + log a_nr)         a_nr = 0: patch n ignores region r
//     y_n        = (1 - a_n0) (W_o concat_h(sum_r w[h, n, r] v_r) + b_o)
// so a patch draws on the regions its voxels belong to, in proportion to their share, and a pure background
// patch receives nothing. Prefix tokens (the class token) have no assignment: their output is 0. The
// weighting is an [Nq, R + 1] additive bias of the fused kernel, small next to the tokens.
// Parameter names: qkv (fused [q | k | v] rows), proj.

#include <cmath>
#include <limits>
#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/attention.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

// Its shape is a MultiHeadAttention's (head_dim: dim / heads; out_proj: true).
using RegionAwareAttentionConfig = MultiHeadAttentionConfig;

template <class T>
struct RegionAwareAttention {
    MultiHeadAttention<T> attention;  // "<prefix>.qkv", "<prefix>.proj"

    RegionAwareAttention() = default;
    explicit RegionAwareAttention(const RegionAwareAttentionConfig& c) : attention(c) {}

    // x [B, prefix + N, D], region tokens [B, R + 1, D], assignment A [B, N, R + 1] -> [B, prefix + N, D].
    Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& regions, const Tensor<T>& assignment,
                      Index prefix) const {
        const char* op = "vit3d::nn::RegionAwareAttention::forward";
        if (x.rank() != 3 || regions.rank() != 3 || assignment.rank() != 3 || prefix < 0 ||
            x.dim(0) != regions.dim(0) || assignment.dim(0) != x.dim(0) ||
            assignment.dim(1) != x.dim(1) - prefix || assignment.dim(2) != regions.dim(1))
            throw shape_error(
                message(op, ": expected x [B, ", prefix,
                        " + N, D], regions [B, R + 1, D] and an assignment [B, N, R + 1], got x ", x.shape(),
                        ", regions ", regions.shape(), ", assignment ", assignment.shape()));
        const Index B = x.dim(0), tokens = x.dim(1), N = tokens - prefix, labels = regions.dim(1);
        // log a as the attention bias [B, 1, prefix + N, R + 1]; prefix rows attend evenly (their output is
        // gated to 0 below, but the row must not be all -inf); the gate [B, prefix + N, 1].
        Tensor<T> bias = Tensor<T>::zeros({B, 1, tokens, labels});
        Tensor<T> gate = Tensor<T>::zeros({B, tokens, 1});
        const T neg_inf = -std::numeric_limits<T>::infinity();
        for (Index b = 0; b < B; ++b)
            for (Index n = 0; n < N; ++n) {
                const T* a = assignment.data() + (b * N + n) * labels;
                T* row = bias.data() + (b * tokens + prefix + n) * labels;
                for (Index r = 0; r < labels; ++r) row[r] = a[r] > T(0) ? std::log(a[r]) : neg_inf;
                gate.data()[b * tokens + prefix + n] = T(1) - a[0];
            }
        AttentionInputs<T> in;
        in.context = &regions;
        in.bias = &bias;
        Tensor<T> y = attention.forward(x, in);
        y *= gate;
        return y;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.attention.visit_parameters(f, prefix);
    }
};

}  // namespace vit3d::nn

#define VIT3D_REGION_AWARE_ATTENTION_INSTANCES(X, T) X(struct vit3d::nn::RegionAwareAttention<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_REGION_AWARE_ATTENTION_INSTANCES)
