#pragma once
// Vision Transformers assembled from vit3d::nn modules: ViT (2D images [B, C, H, W]) and ViT3D (volumes,
// in either layout [B, C, D, H, W] or [B, C, H, W, D]: sizes and patch are given in the input's axis
// order). One template serves both; presets in presets.hpp reproduce the reference architectures.
//
// forward: patch embedding -> [prefix tokens: class, distillation, registers] -> positional embedding ->
// [norm_pre] -> encoder (-> final norm) -> pooling -> [norm] -> [pre_logits] -> head. All intermediate
// products the user may want are returned: every token, the pooled feature, the logits, and the patch tokens
// folded back to their grid for dense heads. The features of timm's VisionTransformer and DeiT are fields of
// the config, each with timm's semantics (docs/configs.md).

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/einops/reduce.hpp"
#include "vit3d/einops/repeat.hpp"
#include "vit3d/nn/attention_pool.hpp"
#include "vit3d/nn/encoder_block.hpp"
#include "vit3d/nn/grid_cache.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/nn/patch_embed.hpp"
#include "vit3d/nn/pos_embed.hpp"
#include "vit3d/nn/resample.hpp"
#include "vit3d/nn/rotary_embedding.hpp"

namespace vit3d::models {

enum class Pooling { cls, mean, max, mean_max, attention, none };
enum class PosEmbedKind { learned, factorized3d, sincos, none };

constexpr auto enum_names(Pooling) {
    return enum_table<Pooling>({{Pooling::cls, "cls"},
                                {Pooling::mean, "mean"},
                                {Pooling::max, "max"},
                                {Pooling::mean_max, "mean_max"},
                                {Pooling::attention, "attention"},
                                {Pooling::none, "none"}});
}
constexpr auto enum_names(PosEmbedKind) {
    return enum_table<PosEmbedKind>({{PosEmbedKind::learned, "learned"},
                                     {PosEmbedKind::factorized3d, "factorized3d"},
                                     {PosEmbedKind::sincos, "sincos"},
                                     {PosEmbedKind::none, "none"}});
}

// The fields' meanings are in list_fields, which the JSON of a weights file, docs/configs.md and the
// configs of the patch embedding and the encoder blocks are made from.
template <std::size_t SpatialDims>
struct VisionTransformerConfig {
    std::array<Index, SpatialDims> input_size{};
    std::array<Index, SpatialDims> patch_size{};
    Index channels = 3;
    Index dim = 768;
    Index depth = 12;
    Index heads = 12;
    Index head_dim = 0;
    Index mlp_dim = 3072;
    Index num_classes = 1000;
    bool class_token = true;
    Pooling pool = Pooling::cls;
    bool mean_includes_class_token = false;
    PosEmbedKind pos_embed = PosEmbedKind::learned;
    nn::SinCosVariant sincos = nn::SinCosVariant::mae_monai;
    bool pos_embed_covers_class_token = true;
    nn::PatchProjection projection = nn::PatchProjection::conv;
    bool patch_norms = false;
    nn::NormPlacement norm_placement = nn::NormPlacement::pre;
    nn::Activation activation = nn::Activation::gelu;
    double eps = 1e-6;
    bool qkv_bias = true;
    bool proj_bias = true;
    bool final_norm = true;
    bool head_norm = false;
    nn::Activation head_activation = nn::Activation::identity;
    Index reg_tokens = 0;
    bool distillation_token = false;
    bool pre_norm = false;
    bool patch_bias = true;
    bool patch_norm = false;
    nn::NormKind norm = nn::NormKind::layer_norm;
    bool norm_bias = true;
    bool layer_scale = false;
    bool qk_norm = false;
    bool attn_norm = false;
    nn::MlpKind mlp = nn::MlpKind::mlp;
    bool mlp_bias = true;
    bool mlp_norm = false;
    Index pool_mlp_dim = 0;
    Index pool_heads = 0;
    bool drop_remainder = false;
    bool qkv_split = false;
    bool k_bias = true;
    bool rope = false;
    nn::RotaryVariant rope_variant = nn::RotaryVariant::cat;
    double rope_temperature = 10000.0;
    nn::GridIndexing rope_grid_indexing = nn::GridIndexing::ij;
    double rope_grid_offset = 0.0;
    std::array<Index, 2> rope_ref_feat_shape{0, 0};
    bool rope_rotate_half = false;
    bool dynamic_size = false;
    nn::Interpolation pos_embed_interpolation = nn::Interpolation::bicubic_antialias;
    bool mlp_layer_scale = true;
    std::vector<Index> block_kv_heads;
    bool pos_embed_covers_registers = true;
    Index pre_logits_dim = 0;
    nn::Activation pre_logits_activation = nn::Activation::tanh;
    bool head_bias = true;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        using Patch = nn::PatchEmbedConfig<SpatialDims>;
        using Block = nn::EncoderBlockConfig;
        f(field("input_size", c.input_size, "spatial sizes of the input, in its axis order").positive());
        f(field("patch_size", c.patch_size, "patch sizes, in the input's axis order")
              .positive()
              .into(&Patch::patch));
        f(field("channels", c.channels, "input channels C").positive().into(&Patch::in_channels));
        f(field("dim", c.dim, "token width D").positive().into(&Patch::dim, &Block::dim));
        f(field("depth", c.depth, "encoder blocks").non_negative());
        f(field("heads", c.heads, "attention heads").positive().into(&Block::heads));
        f(field("head_dim", c.head_dim, "width of an attention head; 0: dim / heads")
              .non_negative()
              .into(&Block::head_dim));
        f(field("mlp_dim", c.mlp_dim, "hidden width of each block's MLP").positive().into(&Block::mlp_dim));
        f(field("num_classes", c.num_classes, "outputs of the classification head; 0: no head")
              .non_negative());
        f(field("class_token", c.class_token, "a learned class token comes before the patch tokens"));
        f(field("pool", c.pool,
                "the pooled feature: the class token, the mean, max or (mean + max) / 2 of the patch tokens, "
                "a latent query's attention (timm's map), or none"));
        f(field("mean_includes_class_token", c.mean_includes_class_token,
                "mean, max and attention pooling read the prefix tokens too (vit-pytorch's vit_3d, timm's "
                "pool_include_prefix)"));
        f(field("pos_embed", c.pos_embed,
                "positions: learned, factorized over 3 axes (Reg2RG), a fixed sin-cos table, or none"));
        f(field("sincos", c.sincos, "whose sin-cos table, with pos_embed sincos"));
        f(field("pos_embed_covers_class_token", c.pos_embed_covers_class_token,
                "positions are added after the class token is prepended; false: before (MONAI)"));
        f(field("projection", c.projection,
                "the patch projection: a strided convolution, or unfold and Linear")
              .into(&Patch::projection));
        f(field("patch_norms", c.patch_norms, "LayerNorms before and after the patch Linear (vit-pytorch)")
              .into(&Patch::norms));
        f(field("norm_placement", c.norm_placement,
                "each block's LayerNorms before (pre) or after (post) its branches")
              .into(&Block::placement));
        f(field("activation", c.activation, "activation of the blocks' MLPs (and of the attention pool's)")
              .into(&Block::activation));
        f(field("eps", c.eps, "epsilon of every norm").positive().into(&Patch::eps, &Block::eps));
        f(field("qkv_bias", c.qkv_bias, "the q, k, v projection has a bias").into(&Block::qkv_bias));
        f(field("proj_bias", c.proj_bias, "the attention's output projection has a bias")
              .into(&Block::proj_bias));
        f(field("final_norm", c.final_norm, "a LayerNorm after the last block"));
        f(field(
            "head_norm", c.head_norm,
            "a norm of the pooled feature, before the head (timm's fc_norm, vit-pytorch's vit_3d mlp_head)"));
        f(field("head_activation", c.head_activation,
                "activation after the head (MONAI's classification head ends in tanh)"));
        f(field("reg_tokens", c.reg_tokens, "learned register tokens after the class token (DINOv2)")
              .non_negative()
              .may_be_absent());
        f(field("distillation_token", c.distillation_token,
                "DeiT's distillation token after the class token, with its own head; pooled and logits "
                "average the two")
              .may_be_absent());
        f(field("pre_norm", c.pre_norm, "a norm of the tokens before the blocks (CLIP's ln_pre)")
              .may_be_absent());
        f(field("patch_bias", c.patch_bias, "the patch projection has a bias")
              .into(&Patch::bias)
              .may_be_absent());
        f(field("patch_norm", c.patch_norm, "a norm of the patch tokens after the projection (AIMv2)")
              .into(&Patch::norm)
              .may_be_absent());
        f(field("norm", c.norm, "the kind of every norm but the unfold projection's")
              .into(&Patch::norm_kind, &Block::norm)
              .may_be_absent());
        f(field("norm_bias", c.norm_bias, "layer norms have a bias")
              .into(&Patch::norm_bias, &Block::norm_bias)
              .may_be_absent());
        f(field("layer_scale", c.layer_scale,
                "LayerScale on both branches of every block (timm's init_values)")
              .into(&Block::layer_scale)
              .may_be_absent());
        f(field("qk_norm", c.qk_norm, "queries and keys normalised per head")
              .into(&Block::qk_norm)
              .may_be_absent());
        f(field("attn_norm", c.attn_norm, "the merged heads normalised before the attention's projection")
              .into(&Block::attn_norm)
              .may_be_absent());
        f(field("mlp", c.mlp, "the kind of the blocks' MLPs").into(&Block::mlp).may_be_absent());
        f(field("mlp_bias", c.mlp_bias, "the blocks' MLPs have biases")
              .into(&Block::mlp_bias)
              .may_be_absent());
        f(field("mlp_norm", c.mlp_norm, "the MLPs' hidden features normalised before fc2")
              .into(&Block::mlp_norm)
              .may_be_absent());
        f(field("pool_mlp_dim", c.pool_mlp_dim, "hidden width of the attention pool's MLP; 0: mlp_dim")
              .non_negative()
              .may_be_absent());
        f(field("pool_heads", c.pool_heads, "attention heads of the attention pool; 0: heads")
              .non_negative()
              .may_be_absent());
        f(field("drop_remainder", c.drop_remainder,
                "input sizes the patch does not divide lose their last pixels, as timm's strided conv drops "
                "them")
              .into(&Patch::drop_remainder)
              .may_be_absent());
        using Rope = nn::RotaryEmbeddingConfig;
        f(field("qkv_split", c.qkv_split, "separate q, k and v projections in the blocks' attention")
              .into(&Block::qkv_split)
              .may_be_absent());
        f(field("k_bias", c.k_bias, "with qkv_bias, the keys have a bias too (false: EVA)")
              .into(&Block::k_bias)
              .may_be_absent());
        f(field("rope", c.rope, "rotary position embeddings on the patch tokens' queries and keys (2D only)")
              .may_be_absent());
        f(field("rope_variant", c.rope_variant, "timm's rope_type").into(&Rope::variant).may_be_absent());
        f(field("rope_temperature", c.rope_temperature, "timm's rope_temperature")
              .positive()
              .into(&Rope::temperature)
              .may_be_absent());
        f(field("rope_grid_indexing", c.rope_grid_indexing, "timm's rope_grid_indexing")
              .into(&Rope::grid_indexing)
              .may_be_absent());
        f(field("rope_grid_offset", c.rope_grid_offset, "timm's rope_grid_offset")
              .into(&Rope::grid_offset)
              .may_be_absent());
        f(field("rope_ref_feat_shape", c.rope_ref_feat_shape,
                "timm's ref_feat_shape (cat): the grid the coordinates are scaled to; [0, 0]: none")
              .non_negative()
              .into(&Rope::ref_feat_shape)
              .may_be_absent());
        f(field("rope_rotate_half", c.rope_rotate_half, "timm's rope_rotate_half: pairs (x[p], x[p + d/2])")
              .into(&Rope::rotate_half)
              .may_be_absent());
        f(field("mlp_layer_scale", c.mlp_layer_scale,
                "with layer_scale, the MLP branches have their factors too (false: timm's "
                "attn_only_layer_scale, Sapiens2)")
              .into(&Block::mlp_layer_scale)
              .may_be_absent());
        f(field("block_kv_heads", c.block_kv_heads,
                "heads of the keys and values in each block (grouped-query attention, qkv_split only; "
                "Sapiens2); empty: heads in every block")
              .non_negative()
              .may_be_absent());
        f(field("dynamic_size", c.dynamic_size,
                "inputs of other sizes the patches divide run too (timm's dynamic_img_size): the learned "
                "position table is resampled to their grid, the rotary tables made for it; false: input_size "
                "only")
              .may_be_absent());
        f(field("pos_embed_interpolation", c.pos_embed_interpolation,
                "how dynamic_size resamples the learned position table: bicubic_antialias (timm's "
                "resample_abs_pos_embed), bicubic (MAE, transformers' interpolate_pos_encoding), "
                "bicubic_align_corners (torchvision) or linear")
              .may_be_absent());
        f(field("pos_embed_covers_registers", c.pos_embed_covers_registers,
                "with pos_embed_covers_class_token, the position table covers the register tokens too; "
                "false: the registers join after the positions are added (Hugging Face's "
                "Dinov2WithRegisters)")
              .may_be_absent());
        f(field("pre_logits_dim", c.pre_logits_dim,
                "a Linear of this width and pre_logits_activation on the pooled feature, before the head "
                "(the pooler of Hugging Face's ViTModel and DeiTModel); 0: none")
              .non_negative()
              .may_be_absent());
        f(field("pre_logits_activation", c.pre_logits_activation, "activation after the pre_logits Linear")
              .may_be_absent());
        f(field("head_bias", c.head_bias, "the head has a bias (false: CLIP's visual projection)")
              .may_be_absent());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    std::array<Index, SpatialDims> grid() const {
        std::array<Index, SpatialDims> g{};
        for (std::size_t i = 0; i < SpatialDims; ++i)
            g[i] = patch_size[i] > 0 ? input_size[i] / patch_size[i] : 0;
        return g;
    }
    Index num_patches() const {
        Index n = 1;
        for (Index g : grid()) n *= g;
        return n;
    }
    // The tokens before the patch tokens: class, distillation, registers.
    Index prefix_tokens() const { return (class_token ? 1 : 0) + (distillation_token ? 1 : 0) + reg_tokens; }
};

template <class T>
struct VisionTransformerOutput {
    Tensor<T> tokens;               // [B, prefix + N, D] after the encoder (and its final norm)
    Tensor<T> pooled;               // [B, D] (empty when pooling is none), after head_norm and pre_logits
                                    // ([B, pre_logits_dim] then): what the head reads (timm's pre_logits);
                                    // with a distillation token the mean of the class and distillation
                                    // tokens
    Tensor<T> logits;               // [B, classes] (empty without a head)
    std::vector<Tensor<T>> hidden;  // each block's output, when requested
    Tensor<T> class_attention;      // [B, heads, N]: the class token's attention weights in the last block,
                                    // when requested
};

template <class T, std::size_t SpatialDims>
struct VisionTransformer {
    using Config = VisionTransformerConfig<SpatialDims>;
    Config config;
    nn::PatchEmbed<T, SpatialDims> patch_embed;
    std::optional<Tensor<T>> cls_token;   // [1, 1, D]
    std::optional<Tensor<T>> dist_token;  // [1, 1, D]
    std::optional<Tensor<T>> reg_token;   // [1, registers, D]
    nn::LearnedPosEmbed<T> pos_embed;     // learned: [1, (prefix +) N, D]; sincos: the fixed table
    nn::FactorizedPosEmbed3d<T> factorized_pos_embed;  // factorized3d only
    std::optional<nn::Norm<T>> norm_pre;
    std::optional<nn::RotaryEmbeddingMixed<T>> rope;  // the learned frequencies of rope_variant mixed
    nn::Encoder<T> encoder;
    std::optional<nn::AttentionPool<T>> attn_pool;
    std::optional<nn::Norm<T>> head_norm;
    std::optional<nn::Linear<T>> pre_logits;
    std::optional<nn::Linear<T>> head;
    std::optional<nn::Linear<T>> head_dist;

    VisionTransformer() = default;
    explicit VisionTransformer(const Config& c) : config(c) {
        const char* op = "vit3d::models::VisionTransformer";
        for (std::size_t i = 0; i < SpatialDims; ++i)
            if (c.patch_size[i] <= 0 || c.input_size[i] < c.patch_size[i] ||
                (c.input_size[i] % c.patch_size[i] != 0 && !c.drop_remainder))
                throw shape_error(message(op, ": input size ", c.input_size[i], " on axis ", i,
                                          " is not a positive multiple of the patch size ", c.patch_size[i],
                                          " (drop_remainder: leave the last pixels out, as a strided conv)"));
        // Contradictions that forward() would otherwise meet later, or never report.
        if (c.pool == Pooling::cls && !c.class_token)
            throw config_error(message(op, ": cls pooling needs a class token (class_token = false)"));
        if (c.distillation_token && (!c.class_token || c.pool != Pooling::cls || c.head_norm))
            throw config_error(message(op,
                                       ": a distillation token reads the class token (class_token true, "
                                       "pool cls, head_norm false), got class_token ",
                                       c.class_token, ", pool ", c.pool, ", head_norm ", c.head_norm));
        if (c.reg_tokens < 0 || c.pool_mlp_dim < 0 || c.pool_heads < 0 || c.pre_logits_dim < 0)
            throw config_error(message(op,
                                       ": expected reg_tokens, pool_mlp_dim, pool_heads and pre_logits_dim "
                                       ">= 0, got ",
                                       c.reg_tokens, ", ", c.pool_mlp_dim, ", ", c.pool_heads, " and ",
                                       c.pre_logits_dim));
        if (c.distillation_token && c.pre_logits_dim > 0)
            throw config_error(message(op, ": a distillation token's heads read the tokens, not pre_logits (",
                                       "pre_logits_dim = ", c.pre_logits_dim, ")"));
        if (c.pool == Pooling::none && (c.num_classes > 0 || c.head_norm || c.pre_logits_dim > 0))
            throw config_error(message(op, ": a head (num_classes = ", c.num_classes,
                                       ", head_norm = ", c.head_norm, ", pre_logits_dim = ", c.pre_logits_dim,
                                       ") needs a pooled feature, but pooling is none"));
        if (c.depth < 0 || c.num_classes < 0)
            throw config_error(message(op, ": expected depth >= 0 and num_classes >= 0, got ", c.depth,
                                       " and ", c.num_classes));
        patch_embed = nn::PatchEmbed<T, SpatialDims>(sub_config<nn::PatchEmbedConfig<SpatialDims>>(c));
        if (c.class_token) cls_token = Tensor<T>(Shape{1, 1, c.dim});
        if (c.distillation_token) dist_token = Tensor<T>(Shape{1, 1, c.dim});
        if (c.reg_tokens > 0) reg_token = Tensor<T>(Shape{1, c.reg_tokens, c.dim});
        const Index prefix = c.pos_embed_covers_class_token ? positioned_prefix_tokens() : 0;
        if (c.pos_embed == PosEmbedKind::learned)
            pos_embed.table = Tensor<T>(Shape{1, prefix + c.num_patches(), c.dim});
        if (c.pos_embed == PosEmbedKind::sincos) {
            if constexpr (SpatialDims == 2 || SpatialDims == 3) {
                Tensor<T> table = nn::sincos_position_embedding<T, SpatialDims>(c.grid(), c.dim, c.sincos);
                pos_embed.table = prefix ? concat<T>({Tensor<T>(Shape{1, 1, c.dim}), table}, 1) : table;
            }
        }
        if (c.pos_embed == PosEmbedKind::factorized3d) {
            if constexpr (SpatialDims == 3) {
                if (c.dim % 3 != 0)
                    throw shape_error(message(
                        op, ": a factorized 3D position embedding needs dim divisible by 3, got ", c.dim));
                factorized_pos_embed = nn::FactorizedPosEmbed3d<T>(c.dim / 3, c.grid());
            } else {
                throw shape_error(message(op, ": a factorized 3D position embedding needs 3 spatial axes"));
            }
        }
        if (c.pre_norm) norm_pre = nn::Norm<T>(c.dim, c.eps, c.norm, c.norm_bias);
        if (c.rope) {
            if (SpatialDims != 2)
                throw config_error(message(op, ": rotary position embeddings need 2 spatial axes"));
            detail::check_rotary_config(op, rope_config());  // the settings checked now, not at the forward
            if (c.rope_variant == nn::RotaryVariant::mixed)
                rope = nn::RotaryEmbeddingMixed<T>(c.depth, c.heads, rope_config().head_dim);
        }
        if (c.dynamic_size &&
            (c.pos_embed == PosEmbedKind::sincos || c.pos_embed == PosEmbedKind::factorized3d))
            throw config_error(
                message(op, ": dynamic_size resamples a learned position table or none, got pos_embed ",
                        c.pos_embed));
        if (!c.block_kv_heads.empty() && static_cast<Index>(c.block_kv_heads.size()) != c.depth)
            throw config_error(message(op, ": expected block_kv_heads for each of the ", c.depth,
                                       " blocks, got ", c.block_kv_heads.size()));
        encoder =
            nn::Encoder<T>(c.depth, sub_config<nn::EncoderBlockConfig>(c), c.final_norm, c.block_kv_heads);
        if (c.pool == Pooling::attention)
            attn_pool = nn::AttentionPool<T>({c.dim, c.pool_heads > 0 ? c.pool_heads : c.heads,
                                              c.pool_mlp_dim > 0 ? c.pool_mlp_dim : c.mlp_dim, c.activation,
                                              c.norm, c.norm_bias, c.eps});
        if (c.head_norm) head_norm = nn::Norm<T>(c.dim, c.eps, c.norm, c.norm_bias);
        if (c.pre_logits_dim > 0) pre_logits = nn::Linear<T>(c.dim, c.pre_logits_dim);
        if (c.num_classes > 0)
            head = nn::Linear<T>(c.pre_logits_dim > 0 ? c.pre_logits_dim : c.dim, c.num_classes, c.head_bias);
        if (c.num_classes > 0 && c.distillation_token) head_dist = nn::Linear<T>(c.dim, c.num_classes);
    }

    Index prefix_tokens() const { return config.prefix_tokens(); }
    // The prefix tokens the position table covers (with pos_embed_covers_class_token).
    Index positioned_prefix_tokens() const {
        return config.prefix_tokens() - (config.pos_embed_covers_registers ? 0 : config.reg_tokens);
    }

    // x: [B, C, S1, ..., SN] with the configured sizes. keep_hidden: also return every block's output;
    // class_attention: also return the class token's softmax weights over all tokens in the last block
    // (one row of scores; the model must have a class token).
    VisionTransformerOutput<T> forward(const Tensor<T>& x, bool keep_hidden = false,
                                       bool class_attention = false) const {
        const auto grid = input_grid(x.shape());
        Tensor<T> tokens = patch_embed.forward(x);
        const Index B = x.dim(0);
        const bool pos_first = !config.pos_embed_covers_class_token;
        if (pos_first) tokens = add_positions(std::move(tokens), grid);
        // Registers join after the positions when the table does not cover them.
        const bool late_registers = reg_token && !pos_first && !config.pos_embed_covers_registers;
        std::vector<Tensor<T>> parts;
        for (const auto* prefix : {&cls_token, &dist_token, &reg_token})
            if (*prefix && !(prefix == &reg_token && late_registers))
                parts.push_back(repeat(**prefix, "1 n d -> b n d", {{"b", B}}));
        if (!parts.empty()) {
            parts.push_back(std::move(tokens));
            tokens = concat<T>(parts, 1);
        }
        if (!pos_first) tokens = add_positions(std::move(tokens), grid);
        if (late_registers) {
            const Index before = positioned_prefix_tokens();  // class and distillation tokens
            tokens = concat<T>({tokens.narrow(1, 0, before), repeat(*reg_token, "1 n d -> b n d", {{"b", B}}),
                                tokens.narrow(1, before, tokens.dim(1) - before)},
                               1);
        }
        if (norm_pre) tokens = norm_pre->forward(tokens);

        VisionTransformerOutput<T> out;
        nn::AttentionInputs<T> in;
        in.rotary_prefix = prefix_tokens();
        const auto rotary = config.rope ? rotary_tables(grid) : nullptr;
        out.tokens = encoder.forward(std::move(tokens), in, keep_hidden ? &out.hidden : nullptr,
                                     class_attention ? &out.class_attention : nullptr, rotary.get());
        if (config.pool == Pooling::none) return out;
        if (dist_token) return distilled_head(std::move(out));
        out.pooled = pool(out.tokens);
        if (head_norm) out.pooled = head_norm->forward(out.pooled);
        if (pre_logits) {
            out.pooled = pre_logits->forward(out.pooled);
            nn::apply_activation(out.pooled, config.pre_logits_activation);
        }
        if (head) {
            out.logits = head->forward(out.pooled);
            nn::apply_activation(out.logits, config.head_activation);
        }
        return out;
    }

    // The patch grid of an input [B, C, spatial...]: config.grid() for input_size, another one for another
    // size with dynamic_size. Throws naming both sizes for a size the model does not run at.
    std::array<Index, SpatialDims> input_grid(const Shape& input) const {
        const auto grid = patch_embed.grid(input);  // throws for a size the patches do not divide
        if (grid != config.grid() && !config.dynamic_size)
            throw shape_error(message("vit3d::models::VisionTransformer::forward: expected spatial size ",
                                      config.input_size, ", got input ", input,
                                      " (the model has no dynamic_size: other sizes need its position table "
                                      "resampled)"));
        return grid;
    }

    // The patch tokens of forward(...).tokens folded back onto their grid: [B, D, g1, ..., gN]; `grid` is
    // the input's (input_grid), config.grid() by default.
    Tensor<T> patch_grid(const Tensor<T>& tokens) const { return patch_grid(tokens, config.grid()); }
    Tensor<T> patch_grid(const Tensor<T>& tokens, const std::array<Index, SpatialDims>& g) const {
        Index N = 1;
        for (Index n : g) N *= n;
        if (tokens.rank() != 3 || tokens.dim(1) != prefix_tokens() + N)
            throw shape_error(message("vit3d::models::VisionTransformer::patch_grid: expected tokens [B, ",
                                      prefix_tokens() + N, ", D], got ", tokens.shape()));
        Shape shape{tokens.dim(0)};
        for (Index n : g) shape.push_back(n);
        shape.push_back(tokens.dim(2));
        const Tensor<T> patches = tokens.narrow(1, prefix_tokens(), N).reshape(shape);
        std::vector<Index> order{0, static_cast<Index>(SpatialDims + 1)};
        for (std::size_t i = 0; i < SpatialDims; ++i) order.push_back(static_cast<Index>(1 + i));
        return patches.permute(order);
    }

    // state_dict names in vit3d's own (timm-like) scheme; io/state_dict.hpp maps the references onto them.
    VIT3D_VISIT_PARAMETERS_WITH(visit)

    // The rotary embedding's settings, for heads of the blocks' width.
    nn::RotaryEmbeddingConfig rope_config() const {
        nn::RotaryEmbeddingConfig r = sub_config<nn::RotaryEmbeddingConfig>(config);
        r.head_dim = config.head_dim > 0 ? config.head_dim : config.dim / config.heads;
        return r;
    }

  private:
    using RotaryTableSet = std::vector<nn::RotaryTables<T>>;

    // The rotary tables of a patch grid, made once per grid (and again after rope.freqs change).
    std::shared_ptr<const RotaryTableSet> rotary_tables(const std::array<Index, SpatialDims>& grid) const {
        std::vector<const Tensor<T>*> sources;
        if (rope) sources.push_back(&rope->freqs);
        return rotary_cache_.get(std::vector<Index>(grid.begin(), grid.end()), sources,
                                 [&] { return make_rotary_tables(grid); });
    }

    // One table for every block, or one per block (mixed).
    RotaryTableSet make_rotary_tables(const std::array<Index, SpatialDims>& grid) const {
        RotaryTableSet tables;
        if constexpr (SpatialDims == 2) {  // rope needs 2 axes (checked at construction)
            const nn::RotaryEmbeddingConfig r = rope_config();
            if (!rope) {
                tables.push_back(nn::rotary_tables<T>(r, grid));
                return tables;
            }
            for (Index block = 0; block < config.depth; ++block)
                tables.push_back(nn::mixed_rotary_tables<T>(r, *rope, block, grid));
        }
        return tables;
    }

    // tokens [B, prefix + N, D] -> [B, D], as config.pool says.
    Tensor<T> pool(const Tensor<T>& tokens) const {
        const char* op = "vit3d::models::VisionTransformer::forward";
        if (config.pool == Pooling::cls) {
            if (!cls_token) throw config_error(message(op, ": cls pooling needs a class token"));
            return tokens.select(1, 0);
        }
        const Index skip = config.mean_includes_class_token ? 0 : prefix_tokens();
        const Tensor<T> patches = tokens.narrow(1, skip, tokens.dim(1) - skip);
        switch (config.pool) {
            case Pooling::mean:
                return reduce(patches, "b n d -> b d", Reduction::mean);
            case Pooling::max:
                return reduce(patches, "b n d -> b d", Reduction::max);
            case Pooling::mean_max: {
                Tensor<T> both = reduce(patches, "b n d -> b d", Reduction::max);
                both += reduce(patches, "b n d -> b d", Reduction::mean);
                both *= T(0.5);
                return both;
            }
            case Pooling::attention:
                return attn_pool->forward(patches);
            case Pooling::cls:
            case Pooling::none:
                break;
        }
        throw config_error(message(op, ": no pooled feature under pool ", config.pool));
    }

    // DeiT's head: the class and distillation tokens through their own heads, averaged.
    VisionTransformerOutput<T> distilled_head(VisionTransformerOutput<T> out) const {
        const Tensor<T> cls = out.tokens.select(1, 0), dist = out.tokens.select(1, 1);
        out.pooled = cls;
        out.pooled += dist;
        out.pooled *= T(0.5);
        if (head && head_dist) {
            out.logits = head->forward(cls);
            out.logits += head_dist->forward(dist);
            out.logits *= T(0.5);
            nn::apply_activation(out.logits, config.head_activation);
        }
        return out;
    }

    Tensor<T> add_positions(Tensor<T> tokens, const std::array<Index, SpatialDims>& grid) const {
        switch (config.pos_embed) {
            case PosEmbedKind::learned:
                if (grid != config.grid())
                    return nn::LearnedPosEmbed<T>::add(tokens, *resampled_positions(grid));
                return pos_embed.forward(tokens);
            case PosEmbedKind::sincos:
                return pos_embed.forward(tokens);
            case PosEmbedKind::factorized3d:
                if constexpr (SpatialDims == 3) return factorized_pos_embed.forward(tokens, config.grid());
                return tokens;
            case PosEmbedKind::none:
                return tokens;
        }
        return tokens;
    }

    // The learned position table resampled from the trained grid to `grid` (dynamic_size), made once per
    // grid (and again after the table changes).
    std::shared_ptr<const Tensor<T>> resampled_positions(const std::array<Index, SpatialDims>& grid) const {
        const Tensor<T>& table = pos_embed.table;
        return positions_cache_.get(std::vector<Index>(grid.begin(), grid.end()), {&table}, [&] {
            const Index prefix = table.rank() == 3 ? table.dim(1) - config.num_patches() : -1;
            return nn::resample_pos_embed<T, SpatialDims>(table, config.grid(), grid, prefix,
                                                          config.pos_embed_interpolation);
        });
    }

    nn::GridCache<T, Tensor<T>> positions_cache_;
    nn::GridCache<T, RotaryTableSet> rotary_cache_;

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.patch_embed.visit_parameters(f, nn::join_name(prefix, "patch_embed"));
        if (self.cls_token) f(nn::join_name(prefix, "cls_token"), *self.cls_token);
        if (self.dist_token) f(nn::join_name(prefix, "dist_token"), *self.dist_token);
        if (self.reg_token) f(nn::join_name(prefix, "reg_token"), *self.reg_token);
        if (self.config.pos_embed == PosEmbedKind::learned)
            self.pos_embed.visit_parameters(f, nn::join_name(prefix, "pos_embed"));
        if (self.config.pos_embed == PosEmbedKind::factorized3d)
            self.factorized_pos_embed.visit_parameters(f, nn::join_name(prefix, "pos_embed"));
        if (self.norm_pre) self.norm_pre->visit_parameters(f, nn::join_name(prefix, "norm_pre"));
        if (self.rope) self.rope->visit_parameters(f, nn::join_name(prefix, "rope"));
        self.encoder.visit_parameters(f, prefix);
        if (self.attn_pool) self.attn_pool->visit_parameters(f, nn::join_name(prefix, "attn_pool"));
        if (self.head_norm) self.head_norm->visit_parameters(f, nn::join_name(prefix, "head_norm"));
        if (self.pre_logits) self.pre_logits->visit_parameters(f, nn::join_name(prefix, "pre_logits.fc"));
        if (self.head) self.head->visit_parameters(f, nn::join_name(prefix, "head"));
        if (self.head_dist) self.head_dist->visit_parameters(f, nn::join_name(prefix, "head_dist"));
    }
};

template <class T>
using ViT = VisionTransformer<T, 2>;
template <class T>
using ViT3D = VisionTransformer<T, 3>;

}  // namespace vit3d::models

#define VIT3D_VISION_TRANSFORMER_INSTANCES(X, T)     \
    X(struct vit3d::models::VisionTransformer<T, 2>) \
    X(struct vit3d::models::VisionTransformer<T, 3>)
VIT3D_EXTERN_INSTANCES(VIT3D_VISION_TRANSFORMER_INSTANCES)
