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
//   - weights: receives the softmax attention weights [B, heads, Nq, Nk];
//   - distance_bias: a bias described by token coordinates (DistanceBias, e.g. nn::SliceDistanceBias's),
//              which the fused kernel computes tile by tile instead of reading an [Nq, Nk] tensor;
//   - rotary:  rotary position embedding tables (nn/rotary_embedding.hpp) for the tokens after
//              rotary_prefix, applied to queries and keys after their norms (EVA, DINOv3).
// The projections come fused (qkv, the default), fused without a key bias (EVA: qkv without bias plus
// q_bias and v_bias, keys unbiased) or split (q_proj, k_proj, v_proj: EVA's and timm's unfused layouts).
// Split projections may give the keys and values fewer heads (kv_heads, grouped-query attention, as timm's
// AttentionRope and Sapiens2): query head h attends with key/value head h / (heads / kv_heads).
// Optional norms (timm's qk_norm and scale_attn_norm): q_norm and k_norm normalise each head's queries and
// keys over head_dim before the scores; norm normalises the merged heads before the output projection.
// A query row whose keys are all masked attends nothing: its weights are 0 and its output, before the
// output projection, is 0 (torch gives NaN there). Both kernels (AttentionKernel) agree on this.

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/gemm.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/rotary_embedding.hpp"
#include "vit3d/nn/scaled_dot_product_attention.hpp"
#include "vit3d/tensor/ops.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

template <class T>
struct AttentionInputs {
    const Tensor<T>* bias = nullptr;
    const Tensor<std::uint8_t>* allowed = nullptr;
    const Tensor<T>* context = nullptr;
    Tensor<T>* weights = nullptr;
    const DistanceBias<T>* distance_bias = nullptr;  // a bias from token coordinates (nn::SliceDistanceBias)
    const RotaryTables<T>* rotary = nullptr;         // rotary position tables of the patch tokens
    Index rotary_prefix = 0;                         // the tokens before them (class, registers)
};

// The shape of a MultiHeadAttention. Field order suits designated initialisers:
//     MultiHeadAttentionConfig{.dim = 384, .heads = 6, .qkv_bias = false}   (C++20; in C++17 set the fields)
// The fields' meanings are in list_fields.
struct MultiHeadAttentionConfig {
    Index dim = 768;
    Index heads = 12;
    Index head_dim = 0;
    bool qkv_bias = true;
    bool proj_bias = true;
    bool out_proj = true;
    bool qk_norm = false;
    bool out_norm = false;
    NormKind norm_kind = NormKind::layer_norm;
    bool norm_bias = true;
    double eps = 1e-6;
    bool qkv_split = false;
    bool k_bias = true;
    Index kv_heads = 0;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("dim", c.dim, "token width D, of the input and the output").positive());
        f(field("heads", c.heads, "attention heads").positive());
        f(field("head_dim", c.head_dim,
                "width of a head; 0: dim / heads (dim must divide), vit-pytorch's dim_head sets it apart")
              .non_negative());
        f(field("qkv_bias", c.qkv_bias,
                "the q, k, v projection has a bias (torchvision, timm; not vit-pytorch, "
                "MONAI, Reg2RG)"));
        f(field("proj_bias", c.proj_bias, "the output projection has a bias"));
        f(field("out_proj", c.out_proj,
                "an output projection; false: none, heads * head_dim must equal dim (vit-pytorch's "
                "to_out = Identity)"));
        f(field("qk_norm", c.qk_norm,
                "each head's queries and keys are normalised over head_dim (timm's qk_norm)"));
        f(field("out_norm", c.out_norm,
                "the merged heads are normalised before the output projection (timm's scale_attn_norm)"));
        f(field("norm_kind", c.norm_kind, "the kind of those norms"));
        f(field("norm_bias", c.norm_bias, "those norms have a bias (layer_norm)"));
        f(field("eps", c.eps, "those norms' epsilon").positive());
        f(field("qkv_split", c.qkv_split,
                "separate q_proj, k_proj and v_proj layers instead of a fused qkv"));
        f(field("k_bias", c.k_bias,
                "with qkv_bias, the keys have a bias too (false: EVA's q_bias and v_bias, keys unbiased)"));
        f(field("kv_heads", c.kv_heads,
                "heads of the keys and values, dividing heads (grouped-query attention, split projections "
                "only); 0: heads")
              .non_negative());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

template <class T>
struct MultiHeadAttention {
    Linear<T> qkv;                    // [3 * heads * head_dim, dim] ("<prefix>.qkv"); empty when split
    std::optional<Tensor<T>> q_bias;  // [heads * head_dim] ("<prefix>.q_bias"): fused without a key bias
    std::optional<Tensor<T>> v_bias;  // [heads * head_dim] ("<prefix>.v_bias")
    std::optional<Linear<T>> q_proj;  // [heads * head_dim, dim] ("<prefix>.q_proj"): split projections
    std::optional<Linear<T>> k_proj;  // [kv_heads * head_dim, dim], and v_proj
    std::optional<Linear<T>> v_proj;
    std::optional<Linear<T>> proj;  // [dim, heads * head_dim]  ("<prefix>.proj"); absent = identity
    std::optional<Norm<T>> q_norm;  // [head_dim] ("<prefix>.q_norm")
    std::optional<Norm<T>> k_norm;  // [head_dim] ("<prefix>.k_norm")
    std::optional<Norm<T>> norm;    // [heads * head_dim] ("<prefix>.norm"), before proj
    Index heads = 1;
    Index head_dim = 0;
    Index kv_heads = 0;  // heads of the keys and values (grouped-query attention); 0: heads
    // Fused by default; asking for the weights (AttentionInputs::weights) always takes the naive kernel.
    AttentionKernel kernel = AttentionKernel::automatic;

    MultiHeadAttention() = default;
    // Zero parameters of the configured shape, to be filled by a weight loader or by hand.
    explicit MultiHeadAttention(const MultiHeadAttentionConfig& c)
        : heads(c.heads), head_dim(c.head_dim > 0 ? c.head_dim : (c.heads > 0 ? c.dim / c.heads : 0)) {
        const char* op = "vit3d::nn::MultiHeadAttention";
        if (c.dim <= 0 || c.heads <= 0 || c.head_dim < 0 || (c.head_dim == 0 && c.dim % c.heads != 0))
            throw shape_error(message(op,
                                      ": expected dim > 0 divisible by heads > 0 (or head_dim > 0), got dim ",
                                      c.dim, ", ", c.heads, " heads, head_dim ", c.head_dim));
        if (!c.out_proj && inner_dim() != c.dim)
            throw shape_error(message(op, ": without an output projection heads * head_dim must equal dim ",
                                      c.dim, ", got ", c.heads, " * ", head_dim));
        if (c.kv_heads < 0 || (c.kv_heads > 0 && (c.heads % c.kv_heads != 0 || !c.qkv_split)))
            throw config_error(message(op, ": expected kv_heads 0 or a divisor of heads ", c.heads,
                                       " with split projections (qkv_split), got kv_heads ", c.kv_heads,
                                       ", qkv_split ", c.qkv_split));
        kv_heads = c.kv_heads > 0 ? c.kv_heads : c.heads;
        const Index I = inner_dim(), KI = kv_inner_dim();
        if (c.qkv_split) {
            q_proj = Linear<T>(c.dim, I, c.qkv_bias);
            k_proj = Linear<T>(c.dim, KI, c.qkv_bias && c.k_bias);
            v_proj = Linear<T>(c.dim, KI, c.qkv_bias);
        } else {
            qkv = Linear<T>(c.dim, 3 * I, c.qkv_bias && c.k_bias);
            if (c.qkv_bias && !c.k_bias) {
                q_bias = Tensor<T>(Shape{I});
                v_bias = Tensor<T>(Shape{I});
            }
        }
        if (c.out_proj) proj = Linear<T>(inner_dim(), c.dim, c.proj_bias);
        if (c.qk_norm) {
            q_norm = Norm<T>(head_dim, c.eps, c.norm_kind, c.norm_bias);
            k_norm = Norm<T>(head_dim, c.eps, c.norm_kind, c.norm_bias);
        }
        if (c.out_norm) norm = Norm<T>(inner_dim(), c.eps, c.norm_kind, c.norm_bias);
    }

    Index inner_dim() const { return heads * head_dim; }
    // Heads of the keys and values: fewer than heads under grouped-query attention.
    Index key_heads() const { return kv_heads > 0 ? kv_heads : heads; }
    Index kv_inner_dim() const { return key_heads() * head_dim; }
    Index dim() const { return q_proj ? q_proj->in_features() : qkv.in_features(); }
    double scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim)); }

    // x: [B, Nq, D] -> [B, Nq, D]
    Tensor<T> forward(const Tensor<T>& x, const AttentionInputs<T>& in = {}) const {
        const char* op = "vit3d::nn::MultiHeadAttention::forward";
        check_parameters(op);
        const Index I = inner_dim(), KI = kv_inner_dim(), D = dim();
        if (x.rank() != 3 || x.dim(2) != D)
            throw shape_error(message(op, ": expected x [B, N, ", D, "], got ", x.shape()));
        const Index B = x.dim(0), Nq = x.dim(1);
        const Tensor<T>& kv_source = in.context ? *in.context : x;
        if (in.context && (kv_source.rank() != 3 || kv_source.dim(0) != B || kv_source.dim(2) != D))
            throw shape_error(
                message(op, ": expected context [", B, ", Nk, ", D, "], got ", kv_source.shape()));
        const Index Nk = kv_source.dim(1);
        AttentionProblem<T> problem;
        problem.batch = B, problem.heads = heads, problem.queries = Nq, problem.keys = Nk;
        problem.head_dim = head_dim;
        // Checked before the projections run, so that a bad operand costs nothing.
        problem.set_operands(in.bias ? in.bias->data() : nullptr, in.bias ? &in.bias->shape() : nullptr,
                             in.allowed ? in.allowed->data() : nullptr,
                             in.allowed ? &in.allowed->shape() : nullptr, op);
        problem.set_distance_bias(in.distance_bias, op);

        // Projections: one GEMM for q, k and v together when attending to x itself. EVA's q and v biases and
        // the rotary embedding (interleaved pairs, and no q/k norm, which needs whole heads first) are
        // applied by the GEMMs as they finish each block of their output (QkvLayout), not in passes of
        // their own.
        const bool rotary_in_gemm = in.rotary && !in.rotary->rotate_half && !q_norm && !k_norm;
        if (rotary_in_gemm) {  // checked before the projections run, as apply_rotary_embedding would
            check_rotary_embedding<T>({nullptr, B, Nq, heads, head_dim, Nq * I, I}, in.rotary_prefix,
                                      *in.rotary);
            check_rotary_embedding<T>({nullptr, B, Nk, key_heads(), head_dim, Nk * KI, KI}, in.rotary_prefix,
                                      *in.rotary);
        }
        const RotaryTables<T>* rotary = rotary_in_gemm ? in.rotary : nullptr;
        Tensor<T> q_buf, kv_buf, v_buf;
        T *q_base, *k_base, *v_base;  // into the buffers, which the q and k norms rewrite in place
        Index q_stride, kv_stride;
        bool rotated = rotary_in_gemm;
        if (q_proj) {
            const QkvLayout q_layout{nullptr, rotary, in.rotary_prefix, Nq, head_dim, I, I};
            const QkvLayout k_layout{nullptr, rotary, in.rotary_prefix, Nk, head_dim, KI, KI};
            q_buf = q_proj->forward(x, q_layout.epilogue());           // [B, Nq, I]
            kv_buf = k_proj->forward(kv_source, k_layout.epilogue());  // [B, Nk, KI]
            v_buf = v_proj->forward(kv_source);
            q_base = q_buf.data();
            k_base = kv_buf.data();
            v_base = v_buf.data();
            q_stride = I;
            kv_stride = KI;
        } else if (!in.context) {
            const std::vector<T> biases = fused_biases();
            const QkvLayout layout{
                biases.empty() ? nullptr : biases.data(), rotary, in.rotary_prefix, Nq, head_dim, I, 2 * I};
            q_buf = qkv.forward(x, layout.epilogue());  // [B, N, 3I]
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
            rotated = false;
        }

        normalize_heads(q_norm, q_base, B * Nq, q_stride, heads);
        normalize_heads(k_norm, k_base, B * Nk, kv_stride, key_heads());
        if (in.rotary && !rotated) {
            apply_rotary_embedding<T>({q_base, B, Nq, heads, head_dim, Nq * q_stride, q_stride},
                                      in.rotary_prefix, *in.rotary);
            apply_rotary_embedding<T>({k_base, B, Nk, key_heads(), head_dim, Nk * kv_stride, kv_stride},
                                      in.rotary_prefix, *in.rotary);
        }

        Tensor<T> heads_out = Tensor<T>::empty({B, Nq, I});
        const Index group = heads / key_heads();
        problem.q = {q_base, Nq * q_stride, head_dim, q_stride};
        problem.k = {k_base, Nk * kv_stride, head_dim, kv_stride, group};
        problem.v = {v_base, Nk * kv_stride, head_dim, kv_stride, group};
        problem.out = heads_out.data();
        problem.out_batch_stride = Nq * I, problem.out_head_stride = head_dim, problem.out_token_stride = I;
        problem.scale = scale();
        if (in.weights) *in.weights = Tensor<T>::empty({B, heads, Nq, Nk});
        attention(problem, kernel, in.weights ? in.weights->data() : nullptr);
        if (norm) heads_out = norm->forward(heads_out);
        return proj ? proj->forward(heads_out) : heads_out;
    }

    // The softmax weights of one query token over all keys, [B, heads, Nk], as forward(x, in) would form
    // them for row `query` (bias, mask and distance bias included; in.weights is ignored). It costs the key
    // projection and one row of scores, not the Nq x Nk weights: the class-token attention of a 16,385-token
    // volume is 12 x 16,385 values instead of 12.9 GB.
    Tensor<T> query_weights(const Tensor<T>& x, Index query, const AttentionInputs<T>& in = {}) const {
        const char* op = "vit3d::nn::MultiHeadAttention::query_weights";
        check_parameters(op);
        const Index I = inner_dim(), KI = kv_inner_dim(), D = dim();
        const Tensor<T>& kv_source = in.context ? *in.context : x;
        if (x.rank() != 3 || x.dim(2) != D || query < 0 || query >= x.dim(1) || kv_source.rank() != 3 ||
            kv_source.dim(0) != x.dim(0) || kv_source.dim(2) != D)
            throw shape_error(message(op, ": expected x [B, N, ", D,
                                      "], a query in [0, N) and a context [B, Nk, ", D, "], got x ",
                                      x.shape(), ", query ", query, ", context ", kv_source.shape()));
        const Index B = x.dim(0), Nq = x.dim(1), Nk = kv_source.dim(1);
        // The operands' strides for the whole problem, then the problem of row `query` alone.
        AttentionProblem<T> whole;
        whole.batch = B, whole.heads = heads, whole.queries = Nq, whole.keys = Nk, whole.head_dim = head_dim;
        whole.set_operands(in.bias ? in.bias->data() : nullptr, in.bias ? &in.bias->shape() : nullptr,
                           in.allowed ? in.allowed->data() : nullptr,
                           in.allowed ? &in.allowed->shape() : nullptr, op);
        whole.set_distance_bias(in.distance_bias, op);
        AttentionProblem<T> row = whole;
        row.queries = 1;
        if (row.bias) row.bias += query * row.bias_strides[2];
        if (row.allowed) row.allowed += query * row.allowed_strides[2];
        DistanceBias<T> distance;
        if (in.distance_bias) {
            distance = *in.distance_bias;
            if (query < distance.query_prefix) {
                distance.query_prefix = 1;
            } else {
                distance.query_coords += query - distance.query_prefix;
                distance.query_prefix = 0;
            }
            row.distance_bias = &distance;
        }
        Tensor<T> q = project_rows(x.narrow(1, query, 1), 0, I);  // [B, 1, I]
        Tensor<T> k = project_rows(kv_source, I, I);              // [B, Nk, KI]
        normalize_heads(q_norm, q.data(), B, I, heads);
        normalize_heads(k_norm, k.data(), B * Nk, KI, key_heads());
        if (in.rotary) {
            apply_rotary_embedding<T>({k.data(), B, Nk, key_heads(), head_dim, Nk * KI, KI}, in.rotary_prefix,
                                      *in.rotary);
            if (query >= in.rotary_prefix) {  // the query's own row of the tables
                const Index row_of_query = query - in.rotary_prefix;
                const RotaryTables<T> one{in.rotary->sin.narrow(1, row_of_query, 1),
                                          in.rotary->cos.narrow(1, row_of_query, 1), in.rotary->rotate_half};
                apply_rotary_embedding<T>({q.data(), B, 1, heads, head_dim, I, I}, 0, one);
            }
        }
        Tensor<T> unused = Tensor<T>::empty({B, 1, I});
        row.q = {q.data(), I, head_dim, I};
        row.k = row.v = {k.data(), Nk * KI, head_dim, KI, heads / key_heads()};
        row.out = unused.data();
        row.out_batch_stride = I, row.out_head_stride = head_dim, row.out_token_stride = I;
        row.scale = scale();
        Tensor<T> weights = Tensor<T>::empty({B, heads, 1, Nk});
        attention(row, AttentionKernel::naive, weights.data());
        return weights.reshape({B, heads, Nk});
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        if (!self.q_proj) self.qkv.visit_parameters(f, join_name(prefix, "qkv"));
        if (self.q_bias) f(join_name(prefix, "q_bias"), *self.q_bias);
        if (self.v_bias) f(join_name(prefix, "v_bias"), *self.v_bias);
        if (self.q_proj) self.q_proj->visit_parameters(f, join_name(prefix, "q_proj"));
        if (self.k_proj) self.k_proj->visit_parameters(f, join_name(prefix, "k_proj"));
        if (self.v_proj) self.v_proj->visit_parameters(f, join_name(prefix, "v_proj"));
        if (self.q_norm) self.q_norm->visit_parameters(f, join_name(prefix, "q_norm"));
        if (self.k_norm) self.k_norm->visit_parameters(f, join_name(prefix, "k_norm"));
        if (self.norm) self.norm->visit_parameters(f, join_name(prefix, "norm"));
        if (self.proj) self.proj->visit_parameters(f, join_name(prefix, "proj"));
    }

    // Each head's part of `tokens` rows (`stride` elements apart, heads side by side from `base`) through
    // the per-head norm, in place.
    // The q or k norm over each of `count` heads of every token's row.
    void normalize_heads(const std::optional<Norm<T>>& head_norm, T* base, Index tokens, Index stride,
                         Index count) const {
        if (!head_norm) return;
        head_norm->check_parameters();
        if (head_norm->dim() != head_dim)
            throw shape_error(message("vit3d::nn::MultiHeadAttention: a q/k norm of width ", head_norm->dim(),
                                      " for heads of ", head_dim));
        const Isa isa = detail::active_isa();  // outside the region: reading VIT3D_ISA may throw
        detail::parallel_for(tokens, std::max<Index>(1, (Index(1) << 14) / std::max<Index>(1, inner_dim())),
                             [&](Index first, Index last) {
                                 for (Index t = first; t < last; ++t)
                                     head_norm->normalize(base + t * stride, base + t * stride, count, isa);
                             });
    }

    void check_parameters(const char* op) const {
        const Index I = inner_dim(), KI = kv_inner_dim(), D = dim();
        bool ok = heads > 0 && head_dim > 0 && key_heads() > 0 && heads % key_heads() == 0;
        if (q_proj) {
            for (const auto* p : {&q_proj, &k_proj, &v_proj})
                ok = ok && *p && (*p)->weight.rank() == 2 &&
                     (*p)->out_features() == (p == &q_proj ? I : KI) && (*p)->in_features() == D;
        } else {
            ok = ok && key_heads() == heads && qkv.weight.rank() == 2 && qkv.out_features() == 3 * I;
            for (const auto* b : {&q_bias, &v_bias}) ok = ok && (!*b || (*b)->shape() == Shape{I});
            ok = ok && q_bias.has_value() == v_bias.has_value() && !(q_bias && qkv.bias);
        }
        ok = ok && (proj ? proj->in_features() == I && proj->out_features() == D : I == D);
        if (!ok)
            throw shape_error(message(
                op, ": parameters do not fit ", heads, " heads",
                key_heads() != heads ? message(" (", key_heads(), " for keys and values)") : std::string(),
                " of ", head_dim, ": ",
                (q_proj ? message("q_proj weight ", q_proj->weight.shape())
                        : message("qkv weight ", qkv.weight.shape())),
                ", proj weight ", (proj ? shape_to_string(proj->weight.shape()) : std::string("none"))));
    }

    // EVA's query and value biases laid out as the fused output's columns [3I] (its keys have none); empty
    // without them.
    std::vector<T> fused_biases() const {
        if (!q_bias) return {};
        const Index I = inner_dim();
        std::vector<T> biases(static_cast<std::size_t>(3 * I), T(0));
        std::copy(q_bias->data(), q_bias->data() + I, biases.begin());
        std::copy(v_bias->data(), v_bias->data() + I, biases.begin() + 2 * I);
        return biases;
    }

    // What a projection's GEMM does to each finished block of its output [B * tokens, columns]: adds
    // `column_bias` (when not null; after the product, as a separate pass would), then rotates the heads in
    // the first `rotated` columns by `rotary` (when not null; interleaved pairs, whose two elements are
    // adjacent columns and so in one block: the GEMM's panels have an even width and start at even
    // columns). Heads come in groups of `section` columns (q and k of a fused qkv are two groups).
    struct QkvLayout {
        const T* column_bias;
        const RotaryTables<T>* rotary;
        Index prefix, tokens, head_dim, section, rotated;

        detail::GemmEpilogue<T> epilogue() const {
            if (!column_bias && !rotary) return {};
            return {&apply, this, false};
        }

        static void apply(const void* self, T* c, Index ldc, Index row, Index rows, Index col, Index cols) {
            const auto& e = *static_cast<const QkvLayout*>(self);
            for (Index r = 0; r < rows; ++r) {
                T* x = c + r * ldc - col;  // x[j]: column j of the output row
                if (e.column_bias)
                    for (Index j = col; j < col + cols; ++j) x[j] += e.column_bias[j];
                const Index n = (row + r) % e.tokens - e.prefix;  // the patch token; < 0: class, registers
                if (!e.rotary || n < 0) continue;
                for (Index j = col, end = std::min(col + cols, e.rotated); j < end;) {
                    const Index within = j % e.section, head = j - within % e.head_dim;
                    const Index head_end = std::min(end, head + e.head_dim);
                    rotate_head_pairs(x + head, *e.rotary, within / e.head_dim, n, (j - head) / 2,
                                      (head_end - head) / 2);
                    j = head_end;
                }
            }
        }
    };

    // x [B, N, D] projected by rows [first, first + count) of the fused weight, or of the split projections
    // (first and count multiples of I then), with their biases (cross-attention, one query's row).
    Tensor<T> project_rows(const Tensor<T>& x, Index first, Index count) const {
        const Index I = inner_dim();
        if (q_proj || q_bias) {
            std::vector<Tensor<T>> parts;
            for (Index part = first / I; part < (first + count) / I; ++part) {
                if (q_proj) {
                    parts.push_back((part == 0 ? *q_proj : part == 1 ? *k_proj : *v_proj).forward(x));
                    continue;
                }
                Tensor<T> y = project_fused_rows(x, part * I, I);
                if (part != 1) y += part == 0 ? *q_bias : *v_bias;
                parts.push_back(std::move(y));
            }
            return parts.size() == 1 ? parts[0] : concat<T>(parts, -1);
        }
        return project_fused_rows(x, first, count);
    }

    Tensor<T> project_fused_rows(const Tensor<T>& x, Index first, Index count) const {
        Shape out_shape = x.shape();
        out_shape.back() = count;
        Tensor<T> y = Tensor<T>::empty(out_shape);
        if (y.size() == 0) return y;
        const Index D = x.dim(-1);
        detail::gemm_abt(y.size() / count, count, D, x.data(), D, qkv.weight.data() + first * D, D, y.data(),
                         count, qkv.bias ? qkv.bias->data() + first : nullptr);
        return y;
    }
};

}  // namespace vit3d::nn

#define VIT3D_ATTENTION_INSTANCES(X, T) X(struct vit3d::nn::MultiHeadAttention<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_ATTENTION_INSTANCES)
