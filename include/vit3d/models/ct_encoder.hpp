#pragma once
// The anatomy-aware 3D CT encoder: a ViT over CT volumes [B, 1, D, H, W] that knows slices and anatomy.
//
//   volume --conv PatchEmbed3d--> patch tokens x [B, N, D] (tokens (z, y, x) row-major) + 3D positions
//   mask (optional, labels 0..R) --AnatomicalEncoder--> assignment A [B, N, R + 1], region tokens G from x
//   [class token | x] --HybridBlock x depth--> (slice-aware attention, region-aware attention with G and A,
//   MLP) --LayerNorm--> outputs at every granularity:
//     global [B, D]      the class token (or the mean of the patch tokens: pool = mean)
//     local  [B, N, D]   the patch tokens
//     region [B, R, D]   AnatomicalEncoder::region_tokens over the final patch tokens, regions 1..R
//     cls    [B, D]      the class token
//     positions [B, N, 3]    each patch token's (z, y, x) on the patch grid
//     assignment [B, N, R]   each patch's fraction of voxels per region 1..R (column 0, background, dropped)
//   and, with projection_dim > 0, Linear heads per granularity (global_head, local_head, region_head).
// The region tokens the blocks attend to are made once, from the embedded patch tokens, before the first
// block. Without a mask the encoder is slice-aware only and returns no region outputs. Positions cover the
// patch tokens; the class token, prepended after them, has none (as in MONAI's ViT).
//
// Parameter names are those of the Python reference (tools/ct_encoder_reference.py), so its
// state_dict loads unchanged (io::key_maps::ct_encoder()). The stages embed() / blocks[i].forward() /
// finish() are public: forward() is exactly their composition, and a caller can time them or keep
// intermediate tokens.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/einops/reduce.hpp"
#include "vit3d/einops/repeat.hpp"
#include "vit3d/models/vision_transformer.hpp"
#include "vit3d/nn/anatomical_encoder.hpp"
#include "vit3d/nn/hybrid_block.hpp"
#include "vit3d/nn/patch_embed.hpp"
#include "vit3d/nn/pos_embed.hpp"

namespace vit3d::models {

// The fields' meanings are in list_fields, which the JSON of a weights file, docs/configs.md and the
// configs of the parts (patch embedding, anatomical encoder, blocks) are made from.
struct CTEncoderConfig {
    std::array<Index, 3> input_size{64, 512, 512};
    std::array<Index, 3> patch_size{4, 16, 16};
    Index channels = 1;
    Index dim = 768;
    Index depth = 12;
    Index heads = 12;
    Index mlp_dim = 3072;
    Index slice_levels = 32;
    Index regions = 20;
    PosEmbedKind pos_embed = PosEmbedKind::factorized3d;
    nn::SinCosVariant sincos = nn::SinCosVariant::mae_monai;
    Pooling pool = Pooling::cls;
    double eps = 1e-6;
    bool qkv_bias = true;
    Index projection_dim = 0;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        using Patch = nn::PatchEmbedConfig<3>;
        using Anatomy = nn::AnatomicalEncoderConfig;
        using Block = nn::HybridBlockConfig;
        f(field("input_size", c.input_size, "D, H, W of the volume").positive());
        f(field("patch_size", c.patch_size, "patch sizes along D, H, W")
              .positive()
              .into(&Patch::patch, &Anatomy::patch));
        f(field("channels", c.channels, "input channels C").positive().into(&Patch::in_channels));
        f(field("dim", c.dim, "token width D").positive().into(&Patch::dim, &Anatomy::dim, &Block::dim));
        f(field("depth", c.depth, "hybrid blocks").non_negative());
        f(field("heads", c.heads, "attention heads").positive().into(&Block::heads));
        f(field("mlp_dim", c.mlp_dim, "hidden width of each block's MLP").positive().into(&Block::mlp_dim));
        f(field("slice_levels", c.slice_levels,
                "slice distances with a learned bias per head (0 .. levels - 1; farther ones share the last)")
              .positive()
              .into(&Block::levels));
        f(field("regions", c.regions, "anatomical regions: mask labels 1 .. regions, 0 is background")
              .positive()
              .into(&Anatomy::regions));
        f(field("pos_embed", c.pos_embed,
                "positions: factorized3d or sincos (the constructor refuses the others)"));
        f(field("sincos", c.sincos, "whose sin-cos table, with pos_embed sincos"));
        f(field("pool", c.pool,
                "the global feature: the class token (cls) or the mean of the patch tokens (mean); none is "
                "refused"));
        f(field("eps", c.eps, "epsilon of every LayerNorm").positive().into(&Block::eps));
        f(field("qkv_bias", c.qkv_bias, "the q, k, v projections have a bias").into(&Block::qkv_bias));
        f(field("projection_dim", c.projection_dim, "width of a Linear head per granularity; 0: no heads")
              .non_negative());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    std::array<Index, 3> grid() const {
        return {input_size[0] / patch_size[0], input_size[1] / patch_size[1], input_size[2] / patch_size[2]};
    }
    Index num_patches() const {
        const auto g = grid();
        return g[0] * g[1] * g[2];
    }
    nn::HybridBlockConfig block() const { return sub_config<nn::HybridBlockConfig>(*this); }
};

template <class T>
struct CTEncoderOutput {
    Tensor<T> global;                // [B, D]
    Tensor<T> local;                 // [B, N, D]
    Tensor<T> region;                // [B, R, D] (empty without a mask)
    Tensor<T> cls;                   // [B, D]
    Tensor<std::int64_t> positions;  // [B, N, 3] (z, y, x)
    Tensor<T> assignment;            // [B, N, R] (empty without a mask)
    Tensor<T> global_projection;     // [B, P] (empty without heads)
    Tensor<T> local_projection;      // [B, N, P]
    Tensor<T> region_projection;     // [B, R, P] (empty without a mask or heads)
};

// What flows between the stages.
template <class T>
struct CTEncoderState {
    Tensor<T> tokens;      // [B, 1 + N, D], class token first
    Tensor<T> regions;     // [B, R + 1, D] region tokens (empty without a mask)
    Tensor<T> assignment;  // [B, N, R + 1] (empty without a mask)
};

template <class T>
struct CTEncoder {
    CTEncoderConfig config;
    nn::PatchEmbed3d<T> patch_embed;
    Tensor<T> cls_token;                               // [1, 1, D]
    nn::FactorizedPosEmbed3d<T> factorized_pos_embed;  // factorized3d ("pos_embed.{row,col,dep}_embed")
    Tensor<T> sincos_table;                            // sincos: [1, N, D], fixed (not a parameter)
    nn::AnatomicalEncoder<T> anatomy;
    std::vector<nn::HybridBlock<T>> blocks;
    nn::LayerNorm<T> norm;
    std::optional<nn::Linear<T>> global_head, local_head, region_head;

    CTEncoder() = default;
    explicit CTEncoder(const CTEncoderConfig& c) : config(c) {
        const char* op = "vit3d::models::CTEncoder";
        for (std::size_t a = 0; a < 3; ++a)
            if (c.input_size[a] <= 0 || c.patch_size[a] <= 0 || c.input_size[a] % c.patch_size[a] != 0)
                throw config_error(message(op, ": input size ", c.input_size,
                                           " is not a positive multiple of the patch ", c.patch_size));
        if (c.pool != Pooling::cls && c.pool != Pooling::mean)
            throw config_error(message(op, ": the global feature pools by cls or mean, not none"));
        if (c.pos_embed != PosEmbedKind::factorized3d && c.pos_embed != PosEmbedKind::sincos)
            throw config_error(message(op, ": positions are factorized3d or sincos"));
        if (c.pos_embed == PosEmbedKind::factorized3d && c.dim % 3 != 0)
            throw config_error(message(op, ": factorized 3D positions need dim divisible by 3, got ", c.dim));
        if (c.depth < 0 || c.projection_dim < 0)
            throw config_error(message(op, ": expected depth >= 0 and projection_dim >= 0, got ", c.depth,
                                       " and ", c.projection_dim));
        patch_embed = nn::PatchEmbed3d<T>(sub_config<nn::PatchEmbedConfig<3>>(c));
        cls_token = Tensor<T>(Shape{1, 1, c.dim});
        if (c.pos_embed == PosEmbedKind::factorized3d)
            factorized_pos_embed = nn::FactorizedPosEmbed3d<T>(c.dim / 3, c.grid());
        else
            sincos_table = nn::sincos_position_embedding<T, 3>(c.grid(), c.dim, c.sincos);
        anatomy = nn::AnatomicalEncoder<T>(sub_config<nn::AnatomicalEncoderConfig>(c));
        // Each block built in place: its zeroed parameters stay untouched pages until written (a copy of one
        // prototype block would write them all).
        blocks.reserve(static_cast<std::size_t>(c.depth));
        for (Index i = 0; i < c.depth; ++i) blocks.emplace_back(c.block());
        norm = nn::LayerNorm<T>(c.dim, c.eps);
        if (c.projection_dim > 0) {
            global_head = nn::Linear<T>(c.dim, c.projection_dim);
            local_head = nn::Linear<T>(c.dim, c.projection_dim);
            region_head = nn::Linear<T>(c.dim, c.projection_dim);
        }
    }

    // volume [B, C, D, H, W] of the configured size.
    CTEncoderOutput<T> forward(const Tensor<T>& volume) const { return forward_stages(embed(volume)); }

    // volume [B, C, D, H, W] and its label mask [B, 1, D, H, W] (integers 0..regions).
    template <class Label>
    CTEncoderOutput<T> forward(const Tensor<T>& volume, const Tensor<Label>& mask) const {
        return forward_stages(embed(volume, &mask));
    }

    // Stage 1: patch tokens with positions and the class token; with a mask, the assignment and the region
    // tokens.
    template <class Label = std::uint8_t>
    CTEncoderState<T> embed(const Tensor<T>& volume, const Tensor<Label>* mask = nullptr) const {
        const auto grid = patch_embed.grid(volume.shape());
        if (grid != config.grid())
            throw shape_error(message("vit3d::models::CTEncoder::forward: expected a volume [B, ",
                                      config.channels, ", ", config.input_size[0], ", ", config.input_size[1],
                                      ", ", config.input_size[2], "], got ", volume.shape()));
        CTEncoderState<T> state;
        if (mask) state.assignment = anatomy.assignment(*mask, volume.shape());  // checked before the work
        Tensor<T> patches = patch_embed.forward(volume);                         // [B, N, D]
        if (config.pos_embed == PosEmbedKind::factorized3d)
            patches += factorized_pos_embed.embedding(grid);
        else
            patches += sincos_table;
        if (mask) state.regions = anatomy.region_tokens(patches, state.assignment);
        const Index B = volume.dim(0);
        state.tokens = concat<T>({repeat(cls_token, "1 1 d -> b 1 d", {{"b", B}}), patches}, 1);
        return state;
    }

    // Stage 2: block i on the state's tokens.
    void run_block(std::size_t i, CTEncoderState<T>& state) const {
        const bool regions = state.regions.size() > 0;
        state.tokens =
            blocks.at(i).forward(std::move(state.tokens), config.grid(), 1,
                                 regions ? &state.regions : nullptr, regions ? &state.assignment : nullptr);
    }

    // Stage 3: the final norm and every output.
    CTEncoderOutput<T> finish(CTEncoderState<T> state) const {
        const Tensor<T> tokens = norm.forward(state.tokens);
        const Index B = tokens.dim(0), N = config.num_patches();
        CTEncoderOutput<T> out;
        out.cls = tokens.select(1, 0);
        out.local = tokens.narrow(1, 1, N);
        out.global =
            config.pool == Pooling::cls ? out.cls : reduce(out.local, "b n d -> b d", Reduction::mean);
        out.positions = patch_positions(B);
        if (state.regions.size() > 0) {
            out.region = anatomy.region_tokens(out.local, state.assignment).narrow(1, 1, anatomy.regions());
            out.assignment = state.assignment.narrow(2, 1, anatomy.regions());
        }
        if (global_head) {
            out.global_projection = global_head->forward(out.global);
            out.local_projection = local_head->forward(out.local);
            if (out.region.size() > 0) out.region_projection = region_head->forward(out.region);
        }
        return out;
    }

    // [B, N, 3]: each patch token's (z, y, x) on the grid.
    Tensor<std::int64_t> patch_positions(Index batch) const {
        const auto g = config.grid();
        const Index N = config.num_patches();
        Tensor<std::int64_t> positions = Tensor<std::int64_t>::empty({batch, N, 3});
        for (Index b = 0; b < batch; ++b)
            for (Index t = 0; t < N; ++t) {
                std::int64_t* p = positions.data() + (b * N + t) * 3;
                p[0] = t / (g[1] * g[2]);
                p[1] = (t / g[2]) % g[1];
                p[2] = t % g[2];
            }
        return positions;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    CTEncoderOutput<T> forward_stages(CTEncoderState<T> state) const {
        for (std::size_t i = 0; i < blocks.size(); ++i) run_block(i, state);
        return finish(std::move(state));
    }

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.patch_embed.visit_parameters(f, nn::join_name(prefix, "patch_embed"));
        f(nn::join_name(prefix, "cls_token"), self.cls_token);
        if (self.config.pos_embed == PosEmbedKind::factorized3d)
            self.factorized_pos_embed.visit_parameters(f, nn::join_name(prefix, "pos_embed"));
        self.anatomy.visit_parameters(f, nn::join_name(prefix, "anatomy"));
        for (std::size_t i = 0; i < self.blocks.size(); ++i)
            self.blocks[i].visit_parameters(f, nn::join_name(prefix, "blocks." + std::to_string(i)));
        self.norm.visit_parameters(f, nn::join_name(prefix, "norm"));
        if (self.global_head) self.global_head->visit_parameters(f, nn::join_name(prefix, "global_head"));
        if (self.local_head) self.local_head->visit_parameters(f, nn::join_name(prefix, "local_head"));
        if (self.region_head) self.region_head->visit_parameters(f, nn::join_name(prefix, "region_head"));
    }
};

}  // namespace vit3d::models

#define VIT3D_CT_ENCODER_INSTANCES(X, T) X(struct vit3d::models::CTEncoder<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_CT_ENCODER_INSTANCES)
