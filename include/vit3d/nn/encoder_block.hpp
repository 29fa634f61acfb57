#pragma once
// A transformer encoder layer and a stack of them.
//
// Pre-norm (ViT: torchvision, timm, vit-pytorch, MONAI):  x = x + ls1 * attn(norm1(x));  x = x + ls2 *
// mlp(norm2(x)) Post-norm (torch nn.TransformerEncoderLayer default):    x = norm1(x + attn(x));  x = norm2(x
// + mlp(x)) Residual post-norm (timm's ResPostBlock, Swin-v2 style): x = x + norm1(attn(x));  x = x +
// norm2(mlp(x)) ls1 and ls2 are LayerScale's per-channel factors (timm's init_values; DINOv2, DeiT-3, CaiT),
// present with layer_scale and folded into the residual add. Parameter names follow timm: norm1,
// attn.{qkv,q_norm,k_norm, norm,proj}, ls1.gamma, norm2, mlp.{fc1,fc1_g,fc1_x,norm,fc2}, ls2.gamma; an
// Encoder names its layers blocks.{i} and its final norm "norm". Dropout and drop-path are identities at
// inference.

#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/attention.hpp"
#include "vit3d/nn/mlp.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

enum class NormPlacement { pre, post, res_post };

constexpr auto enum_names(NormPlacement) {
    return enum_table<NormPlacement>(
        {{NormPlacement::pre, "pre"}, {NormPlacement::post, "post"}, {NormPlacement::res_post, "res_post"}});
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
    NormKind norm = NormKind::layer_norm;
    bool norm_bias = true;
    bool layer_scale = false;
    bool qk_norm = false;
    bool attn_norm = false;
    MlpKind mlp = MlpKind::mlp;
    bool mlp_bias = true;
    bool mlp_norm = false;
    bool qkv_split = false;
    bool k_bias = true;
    Index kv_heads = 0;
    bool mlp_layer_scale = true;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        using Attention = MultiHeadAttentionConfig;
        f(field("dim", c.dim, "token width D").positive().into(&Attention::dim, &MlpConfig::dim));
        f(field("heads", c.heads, "attention heads").positive().into(&Attention::heads));
        f(field("mlp_dim", c.mlp_dim, "hidden width of the MLP (what its fc2 reads)")
              .positive()
              .into(&MlpConfig::hidden));
        f(field("head_dim", c.head_dim, "width of an attention head; 0: dim / heads")
              .non_negative()
              .into(&Attention::head_dim));
        f(field("qkv_bias", c.qkv_bias, "the q, k, v projection has a bias").into(&Attention::qkv_bias));
        f(field("proj_bias", c.proj_bias, "the attention's output projection has a bias")
              .into(&Attention::proj_bias));
        f(field("eps", c.eps, "epsilon of every norm").positive().into(&Attention::eps, &MlpConfig::eps));
        f(field("activation", c.activation, "activation of the MLP").into(&MlpConfig::activation));
        f(field("placement", c.placement,
                "the norms before the branches (pre), after the residual adds (post), or on the branches "
                "before their residual adds (res_post)"));
        f(field("norm", c.norm, "the kind of every norm").into(&Attention::norm_kind, &MlpConfig::norm_kind));
        f(field("norm_bias", c.norm_bias, "layer norms have a bias")
              .into(&Attention::norm_bias, &MlpConfig::norm_bias));
        f(field("layer_scale", c.layer_scale, "LayerScale: learned per-channel factors on both branches"));
        f(field("qk_norm", c.qk_norm, "queries and keys normalised per head").into(&Attention::qk_norm));
        f(field("attn_norm", c.attn_norm, "the merged heads normalised before the output projection")
              .into(&Attention::out_norm));
        f(field("mlp", c.mlp, "the MLP's kind").into(&MlpConfig::kind));
        f(field("mlp_bias", c.mlp_bias, "the MLP's Linear layers have biases").into(&MlpConfig::bias));
        f(field("mlp_norm", c.mlp_norm, "the MLP's hidden features normalised before fc2")
              .into(&MlpConfig::norm));
        f(field("qkv_split", c.qkv_split, "separate q, k and v projections").into(&Attention::qkv_split));
        f(field("k_bias", c.k_bias, "with qkv_bias, the keys have a bias too").into(&Attention::k_bias));
        f(field("kv_heads", c.kv_heads, "heads of the keys and values (grouped-query attention); 0: heads")
              .non_negative()
              .into(&Attention::kv_heads));
        f(field("mlp_layer_scale", c.mlp_layer_scale,
                "with layer_scale, the MLP branch has its factors too (false: the attention's only, timm's "
                "attn_only_layer_scale)"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    MultiHeadAttentionConfig attention() const { return sub_config<MultiHeadAttentionConfig>(*this); }
    MlpConfig mlp_config() const { return sub_config<MlpConfig>(*this); }
};

template <class T>
struct EncoderBlock {
    Norm<T> norm1;
    MultiHeadAttention<T> attn;
    std::optional<Tensor<T>> ls1;  // [D] ("<prefix>.ls1.gamma")
    Norm<T> norm2;
    Mlp<T> mlp;
    std::optional<Tensor<T>> ls2;  // [D] ("<prefix>.ls2.gamma")
    NormPlacement placement = NormPlacement::pre;

    EncoderBlock() = default;
    explicit EncoderBlock(const EncoderBlockConfig& c)
        : norm1(c.dim, c.eps, c.norm, c.norm_bias),
          attn(c.attention()),
          norm2(c.dim, c.eps, c.norm, c.norm_bias),
          mlp(c.mlp_config()),
          placement(c.placement) {
        if (c.layer_scale) {
            if (c.placement != NormPlacement::pre)
                throw config_error(
                    message("vit3d::nn::EncoderBlock: LayerScale needs pre-norm blocks, got ", c.placement));
            ls1 = Tensor<T>::ones({c.dim});
            if (c.mlp_layer_scale) ls2 = Tensor<T>::ones({c.dim});
        }
    }

    // What the attention reads: norm1(x) before a pre-norm block's attention, x itself otherwise.
    Tensor<T> attention_input(const Tensor<T>& x) const {
        return placement == NormPlacement::pre ? norm1.forward(x) : x;
    }

    // x: [B, N, D] -> [B, N, D]; `in` passes masks, biases, context and weights to the attention. The
    // residuals are added into the branch outputs (a + x is x + a exactly), not into fresh tensors.
    Tensor<T> forward(const Tensor<T>& x, const AttentionInputs<T>& in = {}) const {
        if (placement == NormPlacement::pre) {
            Tensor<T> h = attn.forward(norm1.forward(x), in);
            add_residual(h, x, ls1);
            Tensor<T> y = mlp.forward(norm2.forward(h));
            add_residual(y, h, ls2);
            return y;
        }
        if (placement == NormPlacement::res_post) {
            Tensor<T> h = norm1.forward(attn.forward(x, in));
            h += x;
            Tensor<T> y = norm2.forward(mlp.forward(h));
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
    // branch = x + gamma * branch (gamma per channel), or x + branch without LayerScale.
    static void add_residual(Tensor<T>& branch, const Tensor<T>& x, const std::optional<Tensor<T>>& gamma) {
        if (!gamma) {
            branch += x;
            return;
        }
        const Index D = gamma->size();
        if (gamma->rank() != 1 || branch.shape() != x.shape() || branch.dim(-1) != D)
            throw shape_error(message("vit3d::nn::EncoderBlock: LayerScale [", D, "] on a branch ",
                                      branch.shape(), " with residual ", x.shape()));
        T* b = branch.data();
        const T* r = x.data();
        const T* g = gamma->data();
        detail::parallel_for(branch.size() / D, std::max<Index>(1, (Index(1) << 15) / D),
                             [&](Index first, Index last) {
                                 for (Index row = first; row < last; ++row)
                                     for (Index j = 0; j < D; ++j)
                                         b[row * D + j] = r[row * D + j] + g[j] * b[row * D + j];
                             });
    }

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.norm1.visit_parameters(f, join_name(prefix, "norm1"));
        self.attn.visit_parameters(f, join_name(prefix, "attn"));
        if (self.ls1) f(join_name(prefix, "ls1.gamma"), *self.ls1);
        self.norm2.visit_parameters(f, join_name(prefix, "norm2"));
        self.mlp.visit_parameters(f, join_name(prefix, "mlp"));
        if (self.ls2) f(join_name(prefix, "ls2.gamma"), *self.ls2);
    }
};

// A stack of encoder blocks with an optional final LayerNorm (absent in vit-pytorch's 3D ViT and the
// Reg2RG encoder).
template <class T>
struct Encoder {
    std::vector<EncoderBlock<T>> blocks;
    std::optional<Norm<T>> norm;

    Encoder() = default;
    // Each block is built in place rather than copied from a prototype: a copy would write every
    // parameter's zeros, while a freshly built block's zeros are untouched pages until a loader fills them.
    // kv_heads: each block's key/value heads (grouped-query attention), or empty for c.kv_heads in all.
    Encoder(Index depth, const EncoderBlockConfig& c, bool final_norm = true,
            const std::vector<Index>& kv_heads = {}) {
        if (depth < 0) throw config_error(message("vit3d::nn::Encoder: expected depth >= 0, got ", depth));
        if (!kv_heads.empty() && static_cast<Index>(kv_heads.size()) != depth)
            throw config_error(message("vit3d::nn::Encoder: expected key/value heads for each of the ", depth,
                                       " blocks, got ", kv_heads.size()));
        blocks.reserve(static_cast<std::size_t>(depth));
        EncoderBlockConfig block = c;
        for (Index i = 0; i < depth; ++i) {
            if (!kv_heads.empty()) block.kv_heads = kv_heads[static_cast<std::size_t>(i)];
            blocks.emplace_back(block);
        }
        if (final_norm) norm = Norm<T>(c.dim, c.eps, c.norm, c.norm_bias);
    }

    // x: [B, N, D] -> [B, N, D]. If `hidden` is given it receives each block's output (before the final
    // norm), as MONAI's ViT returns them. If `class_attention` is given it receives the softmax weights
    // [B, heads, N] of token 0 (the class token) in the last block's attention: one row of scores
    // (MultiHeadAttention::query_weights), not the N x N weights. `rotary` holds the rotary tables of every
    // block (one shared table, or one per block), in.rotary_prefix the tokens before the patch tokens.
    Tensor<T> forward(Tensor<T> x, const AttentionInputs<T>& in = {},
                      std::vector<Tensor<T>>* hidden = nullptr, Tensor<T>* class_attention = nullptr,
                      const std::vector<RotaryTables<T>>* rotary = nullptr) const {
        if (hidden) hidden->clear();
        if (rotary && rotary->size() != 1 && rotary->size() != blocks.size())
            throw shape_error(message("vit3d::nn::Encoder::forward: expected 1 or ", blocks.size(),
                                      " rotary tables, got ", rotary->size()));
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            AttentionInputs<T> block_in = in;
            if (rotary) block_in.rotary = &(*rotary)[rotary->size() == 1 ? 0 : i];
            if (class_attention && i + 1 == blocks.size())
                *class_attention = blocks[i].attn.query_weights(blocks[i].attention_input(x), 0, block_in);
            x = blocks[i].forward(x, block_in);
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
