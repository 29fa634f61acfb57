#pragma once
// softmax(Q K^T * scale + bias) V over strided views of existing buffers: the interface between the
// attention modules (nn::MultiHeadAttention, nn::scaled_dot_product_attention) and the kernels below them,
// so that no kernel copies its operands into a layout of its own before it starts. The public names are
// nn::AttentionProblem, nn::AttentionView and nn::AttentionKernel (nn/scaled_dot_product_attention.hpp).
//
// Every view addresses element k of head h, token n, batch b at
//     data + b * batch_stride + (h / head_group) * head_stride + n * token_stride + k  (k < head_dim
//     contiguous)
// which covers the fused qkv output [B, N, 3, H, d], the merged heads [B, N, H, d] and [B, H, N, d].

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"

namespace vit3d::detail {

// Which algorithm computes the attention.
//   fused: tiled over queries and keys with an online softmax (FlashAttention); never forms the Nq x Nk
//          scores, works in O(tile^2 + Nk * head_dim) memory per thread. The default.
//   naive: the scores of one (batch, head) as a matrix, softmax, then one product with V. The reference in
//          tests, and the kernel that can return the attention weights.
//   automatic: fused, unless the caller asks for the weights.
enum class AttentionKernel { automatic, fused, naive };

// head_group: query heads per head of this view (grouped-query attention: keys and values have fewer heads
// than queries, and query head h reads key/value head h / head_group); 1 otherwise.
template <class T>
struct AttentionView {
    const T* data = nullptr;
    Index batch_stride = 0, head_stride = 0, token_stride = 0;
    Index head_group = 1;
    const T* at(Index b, Index h, Index n) const {
        return data + b * batch_stride + (h / head_group) * head_stride + n * token_stride;
    }
};

// A bias described by token coordinates rather than stored per (query, key), so that no Nq x Nk tensor is
// ever formed. For head h, query i and key j:
//     bias = query_prefix_bias[h]   if i < query_prefix            (the row of a prefix token, e.g. a class
//     token)
//            key_prefix_bias[h]     else if j < key_prefix         (the column of a prefix token)
//            by_distance[h * distances + |query_coords[i - query_prefix] - key_coords[j - key_prefix]|]
// A prefix token has no coordinate; a null prefix bias counts as 0. by_distance holds a value for every
// distance that occurs, so the caller decides how distances map onto its learned levels (clamped to the
// last one, bucketed, ...), and any integer coordinate works: a slice index, a row, a time step.
// nn::SliceDistanceBias builds one from the slice indices of a 3D patch grid.
template <class T>
struct DistanceBias {
    Index heads = 0, distances = 0;
    const T* by_distance = nullptr;       // [heads, distances]
    const Index* query_coords = nullptr;  // [queries - query_prefix]
    const Index* key_coords = nullptr;    // [keys - key_prefix]
    Index query_prefix = 0, key_prefix = 0;
    const T* query_prefix_bias = nullptr;  // [heads], or null
    const T* key_prefix_bias = nullptr;    // [heads], or null

    T at(Index h, Index i, Index j) const {
        if (i < query_prefix) return query_prefix_bias ? query_prefix_bias[h] : T(0);
        if (j < key_prefix) return key_prefix_bias ? key_prefix_bias[h] : T(0);
        const Index d = query_coords[i - query_prefix] - key_coords[j - key_prefix];
        return by_distance[h * distances + (d < 0 ? -d : d)];
    }
};

template <class T>
struct AttentionProblem {
    Index batch = 0, heads = 0, queries = 0, keys = 0, head_dim = 0;
    AttentionView<T> q, k, v;
    T* out = nullptr;  // [.., queries, .., head_dim] with the strides below; fully overwritten
    Index out_batch_stride = 0, out_head_stride = 0, out_token_stride = 0;
    double scale = 1.0;
    // Optional additive bias and 0/1 mask (1 = may attend), indexed [b, h, i, j] by these element strides
    // (0 along broadcast axes).
    const T* bias = nullptr;
    std::array<Index, 4> bias_strides{};
    const std::uint8_t* allowed = nullptr;
    std::array<Index, 4> allowed_strides{};
    // Optional bias from token coordinates, added on top of `bias` (see DistanceBias).
    const DistanceBias<T>* distance_bias = nullptr;

    T* out_at(Index b, Index h, Index n) const {
        return out + b * out_batch_stride + h * out_head_stride + n * out_token_stride;
    }
    T bias_at(Index b, Index h, Index i, Index j) const {
        return bias[b * bias_strides[0] + h * bias_strides[1] + i * bias_strides[2] + j * bias_strides[3]];
    }
    bool is_allowed(Index b, Index h, Index i, Index j) const {
        return allowed[b * allowed_strides[0] + h * allowed_strides[1] + i * allowed_strides[2] +
                       j * allowed_strides[3]] != 0;
    }

    // Attaches the optional bias and mask (null: absent), checking that their shapes broadcast to the scores
    // [batch, heads, queries, keys]; a shape_error names op, the operand and both shapes otherwise.
    void set_operands(const T* bias_data, const Shape* bias_shape, const std::uint8_t* allowed_data,
                      const Shape* allowed_shape, const char* op) {
        const Shape scores{batch, heads, queries, keys};
        if (bias_data) bias = bias_data, bias_strides = operand_strides(*bias_shape, scores, "bias", op);
        if (allowed_data)
            allowed = allowed_data, allowed_strides = operand_strides(*allowed_shape, scores, "allowed", op);
    }

    // Attaches a distance bias (null: none), checking it against the problem: its head count, its prefix
    // lengths, and that every coordinate distance that occurs has a value.
    void set_distance_bias(const DistanceBias<T>* d, const char* op) {
        distance_bias = d;
        if (!d) return;
        const std::string where = message(op, ": distance bias: ");
        if (d->heads != heads || d->distances < 0 || d->query_prefix < 0 || d->query_prefix > queries ||
            d->key_prefix < 0 || d->key_prefix > keys)
            throw shape_error(message(where, "expected ", heads, " heads and prefixes of at most ", queries,
                                      " queries and ", keys, " keys, got ", d->heads, " heads, prefixes ",
                                      d->query_prefix, " and ", d->key_prefix));
        const Index nq = queries - d->query_prefix, nk = keys - d->key_prefix;
        if ((nq > 0 && !d->query_coords) || (nk > 0 && !d->key_coords) ||
            (nq > 0 && nk > 0 && heads > 0 && !d->by_distance))
            throw shape_error(message(where, "expected coordinates for ", nq, " queries and ", nk,
                                      " keys and a table [heads, distances], got null pointers"));
        if (nq == 0 || nk == 0) return;
        const auto [q_lo, q_hi] = std::minmax_element(d->query_coords, d->query_coords + nq);
        const auto [k_lo, k_hi] = std::minmax_element(d->key_coords, d->key_coords + nk);
        const Index farthest = std::max(*q_hi - *k_lo, *k_hi - *q_lo);
        if (farthest >= d->distances)
            throw shape_error(message(where, "coordinates lie up to ", farthest,
                                      " apart, but the table holds distances 0 to ", d->distances - 1));
    }

    void check(const char* op) const {
        if (batch < 0 || heads < 0 || queries < 0 || keys < 0 || head_dim <= 0 ||
            (batch * heads * queries > 0 && (!out || !q.data || (keys > 0 && (!k.data || !v.data)))))
            throw shape_error(message(op, ": incomplete attention problem: batch ", batch, ", heads ", heads,
                                      ", queries ", queries, ", keys ", keys, ", head_dim ", head_dim));
    }

  private:
    static std::array<Index, 4> operand_strides(const Shape& shape, const Shape& scores, const char* name,
                                                const char* op) {
        bool fits = shape.size() <= scores.size();
        for (std::size_t i = 0; fits && i < shape.size(); ++i) {
            const Index len = shape[shape.size() - 1 - i];
            fits = len == 1 || len == scores[scores.size() - 1 - i];
        }
        if (!fits)
            throw shape_error(
                message(op, ": ", name, " of shape ", shape, " does not broadcast to the scores ", scores));
        const Shape s = broadcast_strides(shape, scores);
        return {s[0], s[1], s[2], s[3]};
    }
};

}  // namespace vit3d::detail
