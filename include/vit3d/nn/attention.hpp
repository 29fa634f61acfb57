#pragma once
// Multi-head scaled dot-product attention with a fused q-k-v projection, as torch.nn.MultiheadAttention
// (in_proj_weight), timm (qkv) and vit-pytorch (to_qkv) store it: rows [0, I) project queries, [I, 2I)
// keys, [2I, 3I) values, where I = heads * head_dim, and head h owns rows h*head_dim ... within each
// block. Heads merge head-major ('b h n d -> b n (h d)') before the output projection.
//
// Inputs beyond x, all optional (AttentionInputs):
//   - bias:    additive scores, broadcastable to [B, heads, Nq, Nk] (e.g. a learned per-head distance bias);
//   - allowed: 1 where a query may attend a key, 0 where not, broadcastable to [B, heads, Nq, Nk]
//              (a key-padding mask is [B, 1, 1, Nk]). Note the polarity: torch's MHA masks use True =
//              masked, SDPA and timm True = attend; the model loaders convert to this one.
//   - context: keys and values come from this sequence [B, Nk, D] instead of x (cross-attention);
//   - weights: receives the softmax attention weights [B, heads, Nq, Nk].
// A query row whose keys are all masked attends nothing: its weights are 0 and its output, before the
// output projection, is 0 (torch gives NaN there).

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "vit3d/core/error.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

template <class T>
struct AttentionInputs {
    const Tensor<T>* bias = nullptr;
    const Tensor<std::uint8_t>* allowed = nullptr;
    const Tensor<T>* context = nullptr;
    Tensor<T>* weights = nullptr;
};

template <class T>
struct MultiHeadAttention {
    Linear<T> qkv;                  // [3 * heads * head_dim, dim] ("<prefix>.qkv")
    std::optional<Linear<T>> proj;  // [dim, heads * head_dim]  ("<prefix>.proj"); absent = identity
    Index num_heads = 1;
    Index head_dim = 0;

    MultiHeadAttention() = default;
    // head_dim defaults to dim / heads (dim must divide); vit-pytorch sets it independently.
    MultiHeadAttention(Index dim, Index heads, Index dim_head = 0, bool qkv_bias = true,
                       bool proj_bias = true, bool with_proj = true)
        : num_heads(heads), head_dim(dim_head > 0 ? dim_head : (heads > 0 ? dim / heads : 0)) {
        if (heads <= 0 || (dim_head <= 0 && dim % heads != 0))
            throw shape_error("vit3d::nn::MultiHeadAttention: expected dim divisible by heads, got dim " +
                              std::to_string(dim) + " and " + std::to_string(heads) + " heads");
        qkv = Linear<T>(dim, 3 * inner_dim(), qkv_bias);
        if (with_proj) proj = Linear<T>(inner_dim(), dim, proj_bias);
    }

    Index inner_dim() const { return num_heads * head_dim; }
    Index dim() const { return qkv.in_features(); }
    double scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim)); }

    // x: [B, Nq, D] -> [B, Nq, D]
    Tensor<T> forward(const Tensor<T>& x, const AttentionInputs<T>& in = {}) const {
        const char* op = "vit3d::nn::MultiHeadAttention::forward";
        check_parameters(op);
        const Index I = inner_dim(), D = dim();
        if (x.rank() != 3 || x.dim(2) != D)
            throw shape_error(std::string(op) + ": expected x [B, N, " + std::to_string(D) + "], got " +
                              shape_to_string(x.shape()));
        const Index B = x.dim(0), Nq = x.dim(1);
        const Tensor<T>& kv_source = in.context ? *in.context : x;
        if (in.context && (kv_source.rank() != 3 || kv_source.dim(0) != B || kv_source.dim(2) != D))
            throw shape_error(std::string(op) + ": expected context [" + std::to_string(B) + ", Nk, " +
                              std::to_string(D) + "], got " + shape_to_string(kv_source.shape()));
        const Index Nk = kv_source.dim(1);
        const Shape scores_shape{B, num_heads, Nq, Nk};
        const Shape bias_strides =
            broadcast_operand(in.bias ? &in.bias->shape() : nullptr, scores_shape, "bias", op);
        const Shape allowed_strides =
            broadcast_operand(in.allowed ? &in.allowed->shape() : nullptr, scores_shape, "allowed", op);

        // Projections: one GEMM for q, k and v together when attending to x itself.
        Tensor<T> q_buf, kv_buf;
        const T *q_base, *k_base, *v_base;
        Index q_stride, kv_stride;
        if (!in.context) {
            q_buf = qkv.forward(x);  // [B, N, 3I]
            q_base = q_buf.data();
            k_base = q_base + I;
            v_base = q_base + 2 * I;
            q_stride = kv_stride = 3 * I;
        } else {
            q_buf = project_rows(x, 0, I);               // [B, Nq, I]
            kv_buf = project_rows(kv_source, I, 2 * I);  // [B, Nk, 2I]
            q_base = q_buf.data();
            k_base = kv_buf.data();
            v_base = k_base + I;
            q_stride = I;
            kv_stride = 2 * I;
        }

        using Matrix = typename Tensor<T>::RowMajorMatrix;
        using Strided = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
        using StridedOut = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;
        Tensor<T> heads_out = Tensor<T>::empty({B, Nq, I});
        if (in.weights) *in.weights = Tensor<T>::empty(scores_shape);
        Matrix scores(Nq, Nk);
        const T scale_t = static_cast<T>(scale());
        for (Index b = 0; b < B; ++b) {
            for (Index h = 0; h < num_heads; ++h) {
                const Strided Q(q_base + b * Nq * q_stride + h * head_dim, Nq, head_dim,
                                Eigen::OuterStride<>(q_stride));
                const Strided K(k_base + b * Nk * kv_stride + h * head_dim, Nk, head_dim,
                                Eigen::OuterStride<>(kv_stride));
                const Strided V(v_base + b * Nk * kv_stride + h * head_dim, Nk, head_dim,
                                Eigen::OuterStride<>(kv_stride));
                scores.noalias() = (Q * K.transpose()) * scale_t;
                add_bias_and_mask(scores, in, bias_strides, allowed_strides, b, h);
                softmax_rows(scores);
                StridedOut O(heads_out.data() + b * Nq * I + h * head_dim, Nq, head_dim,
                             Eigen::OuterStride<>(I));
                O.noalias() = scores * V;
                if (in.weights)
                    Eigen::Map<Matrix>(in.weights->data() + (b * num_heads + h) * Nq * Nk, Nq, Nk) = scores;
            }
        }
        return proj ? proj->forward(heads_out) : heads_out;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.qkv.visit_parameters(f, join_name(prefix, "qkv"));
        if (self.proj) self.proj->visit_parameters(f, join_name(prefix, "proj"));
    }

    void check_parameters(const char* op) const {
        const Index I = inner_dim();
        if (num_heads <= 0 || head_dim <= 0 || qkv.weight.rank() != 2 || qkv.out_features() != 3 * I ||
            (proj && (proj->in_features() != I || proj->out_features() != qkv.in_features())) ||
            (!proj && I != qkv.in_features()))
            throw shape_error(std::string(op) + ": parameters do not fit " + std::to_string(num_heads) +
                              " heads of " + std::to_string(head_dim) + ": qkv weight " +
                              shape_to_string(qkv.weight.shape()) + ", proj weight " +
                              (proj ? shape_to_string(proj->weight.shape()) : std::string("none")));
    }

    // x [B, N, D] projected by rows [first, first + count) of the fused weight (cross-attention).
    Tensor<T> project_rows(const Tensor<T>& x, Index first, Index count) const {
        Shape out_shape = x.shape();
        out_shape.back() = count;
        Tensor<T> y = Tensor<T>::empty(out_shape);
        if (y.size() == 0) return y;
        auto Y = y.as_matrix();
        Y.noalias() = x.as_matrix() * qkv.weight.as_matrix().middleRows(first, count).transpose();
        if (qkv.bias) Y.rowwise() += qkv.bias->flat().segment(first, count).transpose();
        return y;
    }

    // Strides of an optional operand broadcast to the scores [B, H, Nq, Nk]; empty when absent.
    static Shape broadcast_operand(const Shape* shape, const Shape& scores, const char* name,
                                   const char* op) {
        if (!shape) return {};
        bool fits = shape->size() <= scores.size();
        for (std::size_t i = 0; fits && i < shape->size(); ++i) {
            const Index len = (*shape)[shape->size() - 1 - i];
            fits = len == 1 || len == scores[scores.size() - 1 - i];
        }
        if (!fits)
            throw shape_error(std::string(op) + ": " + name + " of shape " + shape_to_string(*shape) +
                              " does not broadcast to the scores " + shape_to_string(scores));
        return broadcast_strides(*shape, scores);
    }

    template <class Matrix>
    static void add_bias_and_mask(Matrix& scores, const AttentionInputs<T>& in, const Shape& bias_strides,
                                  const Shape& allowed_strides, Index b, Index h) {
        const Index Nq = scores.rows(), Nk = scores.cols();
        if (in.bias) {
            const T* base = in.bias->data() + b * bias_strides[0] + h * bias_strides[1];
            for (Index i = 0; i < Nq; ++i)
                for (Index j = 0; j < Nk; ++j)
                    scores(i, j) += base[i * bias_strides[2] + j * bias_strides[3]];
        }
        if (in.allowed) {
            const std::uint8_t* base = in.allowed->data() + b * allowed_strides[0] + h * allowed_strides[1];
            for (Index i = 0; i < Nq; ++i)
                for (Index j = 0; j < Nk; ++j)
                    if (!base[i * allowed_strides[2] + j * allowed_strides[3]])
                        scores(i, j) = -std::numeric_limits<T>::infinity();
        }
    }

    // Row-wise softmax in place; a row that is -inf everywhere (all keys masked) becomes 0.
    template <class Matrix>
    static void softmax_rows(Matrix& scores) {
        for (Index i = 0; i < scores.rows(); ++i) {
            auto row = scores.row(i);
            const T max = row.maxCoeff();
            if (max == -std::numeric_limits<T>::infinity()) {
                row.setZero();
                continue;
            }
            // Eigen's vectorised exp clamps its argument (exp(-inf) comes out ~1e-39), so masked scores are
            // zeroed explicitly: a masked key must contribute nothing at all.
            const T neg_inf = -std::numeric_limits<T>::infinity();
            row = (row.array() == neg_inf).select(T(0), (row.array() - max).exp());
            row /= row.sum();
        }
    }
};

}  // namespace vit3d::nn
