#pragma once
// A transformer encoder layer and a stack of them.
//
// Pre-norm (ViT: torchvision, timm, vit-pytorch, MONAI):  x = x + attn(norm1(x));  x = x + mlp(norm2(x))
// Post-norm (torch nn.TransformerEncoderLayer default):    x = norm1(x + attn(x));  x = norm2(x + mlp(x))
// Parameter names follow timm: norm1, attn.{qkv,proj}, norm2, mlp.{fc1,fc2}; an Encoder names its layers
// blocks.{i} and its final norm "norm". Dropout and drop-path are identities at inference.

#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/attention.hpp"
#include "vit3d/nn/layer_norm.hpp"
#include "vit3d/nn/mlp.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

enum class NormPlacement { pre, post };

constexpr auto enum_names(NormPlacement) {
    return enum_table<NormPlacement>({{NormPlacement::pre, "pre"}, {NormPlacement::post, "post"}});
}

// The fields' meanings are in list_fields.
struct EncoderBlockConfig {
    Index dim = 768;
    Index heads = 12;
    Index mlp_dim = 3072;
    Index head_dim = 0;
    bool qkv_bias = true;
    bool proj_bias = true;
    double eps = 1e-6;
    Activation activation = Activation::gelu;
    NormPlacement placement = NormPlacement::pre;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        using Attention = MultiHeadAttentionConfig;
        f(field("dim", c.dim, "token width D").positive().into(&Attention::dim));
        f(field("heads", c.heads, "attention heads").positive().into(&Attention::heads));
        f(field("mlp_dim", c.mlp_dim, "hidden width of the MLP").positive());
        f(field("head_dim", c.head_dim, "width of an attention head; 0: dim / heads")
              .non_negative()
              .into(&Attention::head_dim));
        f(field("qkv_bias", c.qkv_bias, "the q, k, v projection has a bias").into(&Attention::qkv_bias));
        f(field("proj_bias", c.proj_bias, "the attention's output projection has a bias")
              .into(&Attention::proj_bias));
        f(field("eps", c.eps, "epsilon of the LayerNorms").positive());
        f(field("activation", c.activation, "activation of the MLP"));
        f(field("placement", c.placement, "the LayerNorms before (pre) or after (post) the branches"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    MultiHeadAttentionConfig attention() const { return sub_config<MultiHeadAttentionConfig>(*this); }
};

template <class T>
struct EncoderBlock {
    LayerNorm<T> norm1;
    MultiHeadAttention<T> attn;
    LayerNorm<T> norm2;
    Mlp<T> mlp;
    NormPlacement placement = NormPlacement::pre;

    EncoderBlock() = default;
    explicit EncoderBlock(const EncoderBlockConfig& c)
        : norm1(c.dim, c.eps),
          attn(c.attention()),
          norm2(c.dim, c.eps),
          mlp(c.dim, c.mlp_dim, c.activation),
          placement(c.placement) {}

    // What the attention reads: norm1(x) before a pre-norm block's attention, x itself in a post-norm one.
    Tensor<T> attention_input(const Tensor<T>& x) const {
        return placement == NormPlacement::pre ? norm1.forward(x) : x;
    }

    // x: [B, N, D] -> [B, N, D]; `in` passes masks, biases, context and weights to the attention. The
    // residuals are added into the branch outputs (a + x is x + a exactly), not into fresh tensors.
    Tensor<T> forward(const Tensor<T>& x, const AttentionInputs<T>& in = {}) const {
        if (placement == NormPlacement::pre) {
            Tensor<T> h = attn.forward(norm1.forward(x), in);
            h += x;
            Tensor<T> y = mlp.forward(norm2.forward(h));
            y += h;
            return y;
        }
        Tensor<T> a = attn.forward(x, in);
        a += x;
        const Tensor<T> h = norm1.forward(a);
        Tensor<T> m = mlp.forward(h);
        m += h;
        return norm2.forward(m);
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.norm1.visit_parameters(f, join_name(prefix, "norm1"));
        self.attn.visit_parameters(f, join_name(prefix, "attn"));
        self.norm2.visit_parameters(f, join_name(prefix, "norm2"));
        self.mlp.visit_parameters(f, join_name(prefix, "mlp"));
    }
};

// A stack of encoder blocks with an optional final LayerNorm (absent in vit-pytorch's 3D ViT and the
// Reg2RG encoder).
template <class T>
struct Encoder {
    std::vector<EncoderBlock<T>> blocks;
    std::optional<LayerNorm<T>> norm;

    Encoder() = default;
    // Each block is built in place rather than copied from a prototype: a copy would write every
    // parameter's zeros, while a freshly built block's zeros are untouched pages until a loader fills them.
    Encoder(Index depth, const EncoderBlockConfig& c, bool final_norm = true) {
        if (depth < 0) throw config_error(message("vit3d::nn::Encoder: expected depth >= 0, got ", depth));
        blocks.reserve(static_cast<std::size_t>(depth));
        for (Index i = 0; i < depth; ++i) blocks.emplace_back(c);
        if (final_norm) norm = LayerNorm<T>(c.dim, c.eps);
    }

    // x: [B, N, D] -> [B, N, D]. If `hidden` is given it receives each block's output (before the final
    // norm), as MONAI's ViT returns them. If `class_attention` is given it receives the softmax weights
    // [B, heads, N] of token 0 (the class token) in the last block's attention: one row of scores
    // (MultiHeadAttention::query_weights), not the N x N weights.
    Tensor<T> forward(Tensor<T> x, const AttentionInputs<T>& in = {},
                      std::vector<Tensor<T>>* hidden = nullptr, Tensor<T>* class_attention = nullptr) const {
        if (hidden) hidden->clear();
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            if (class_attention && i + 1 == blocks.size())
                *class_attention = blocks[i].attn.query_weights(blocks[i].attention_input(x), 0, in);
            x = blocks[i].forward(x, in);
            if (hidden) hidden->push_back(x);
        }
        return norm ? norm->forward(x) : x;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        for (std::size_t i = 0; i < self.blocks.size(); ++i)
            self.blocks[i].visit_parameters(f, join_name(prefix, "blocks." + std::to_string(i)));
        if (self.norm) self.norm->visit_parameters(f, join_name(prefix, "norm"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_ENCODER_BLOCK_INSTANCES(X, T) \
    X(struct vit3d::nn::EncoderBlock<T>)    \
    X(struct vit3d::nn::Encoder<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_ENCODER_BLOCK_INSTANCES)
