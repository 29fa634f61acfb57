#pragma once
// Patch embedding of images [B, C, H, W] (PatchEmbed2d) and volumes (PatchEmbed3d): cut the input into
// non-overlapping patches and project each to a token of width D.
//
// Two projections, the same linear map in two weight layouts:
//   - conv:   weight [D, C, k1, ..., kN] as torch Conv2d/Conv3d with stride = kernel (torchvision, timm,
//             MONAI proj_type="conv"); computed as unfold + one GEMM, not as a convolution loop;
//   - unfold: einops patchify + Linear [D, patch_dim] (vit-pytorch, MONAI "perceptron", Reg2RG), with
//             vit-pytorch's optional LayerNorm before (over patch_dim) and after (over D) the Linear.
//             Patch features are ordered spatial axes then channel, "(p1 p2 [p3] c)", unless
//             FeatureOrder::channel_then_spatial is chosen.
// to_unfold() and to_conv() convert between them exactly (Wlin = Wconv.permute(0, 2, ..., N+1, 1)).
// Either may be followed by a norm of the tokens (timm's embed_norm_layer, "<prefix>.norm").
//
// Axis order is the input's own: patch[i] cuts input axis 2 + i, and tokens enumerate the patch grid
// row-major in that order. So a [B, C, D, H, W] volume (torch Conv3d, vit-pytorch) takes patch {pd, ph,
// pw} and gives tokens (d h w), and a [B, C, H, W, D] volume (MONAI, Reg2RG) takes {ph, pw, pd} and gives
// tokens (h w d), each exactly as its reference does. Sizes the patch does not divide are an error (a
// strided torch conv would silently drop the remainder), unless drop_remainder asks for what the conv does:
// the last size % patch elements of each axis are left out (timm's SigLIP so400m/14 at 384 pixels).

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/einops/rearrange.hpp"
#include "vit3d/nn/layer_norm.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/nn/parameters.hpp"

namespace vit3d::nn {

enum class PatchProjection { conv, unfold };
enum class FeatureOrder { spatial_then_channel, channel_then_spatial };

constexpr auto enum_names(PatchProjection) {
    return enum_table<PatchProjection>(
        {{PatchProjection::conv, "conv"}, {PatchProjection::unfold, "unfold"}});
}
constexpr auto enum_names(FeatureOrder) {
    return enum_table<FeatureOrder>({{FeatureOrder::spatial_then_channel, "spatial_then_channel"},
                                     {FeatureOrder::channel_then_spatial, "channel_then_spatial"}});
}

// The shape of a PatchEmbed. Field order suits designated initialisers (C++20):
//     PatchEmbedConfig<3>{.in_channels = 1, .dim = 768, .patch = {4, 16, 16}}
// The fields' meanings are in list_fields.
template <std::size_t SpatialDims>
struct PatchEmbedConfig {
    Index in_channels = 3;
    Index dim = 768;
    std::array<Index, SpatialDims> patch{};
    PatchProjection projection = PatchProjection::conv;
    bool bias = true;
    bool norms = false;
    FeatureOrder feature_order = FeatureOrder::spatial_then_channel;
    double eps = 1e-5;
    bool norm = false;
    NormKind norm_kind = NormKind::layer_norm;
    bool norm_bias = true;
    bool drop_remainder = false;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("in_channels", c.in_channels, "input channels C").positive());
        f(field("dim", c.dim, "token width D").positive());
        f(field("patch", c.patch, "patch sizes, in the input's axis order").positive());
        f(field("projection", c.projection, "a strided convolution, or unfold and Linear"));
        f(field("bias", c.bias, "the projection has a bias"));
        f(field("norms", c.norms,
                "unfold only: vit-pytorch's LayerNorm(patch_dim) before and LayerNorm(D) after the Linear"));
        f(field("feature_order", c.feature_order, "unfold only: the order of a patch's features"));
        f(field("eps", c.eps, "epsilon of those LayerNorms and of norm").positive());
        f(field("norm", c.norm, "a norm of the tokens after the projection (timm's embed_norm_layer)"));
        f(field("norm_kind", c.norm_kind, "that norm's kind"));
        f(field("norm_bias", c.norm_bias, "that norm has a bias (layer_norm)"));
        f(field("drop_remainder", c.drop_remainder,
                "sizes the patch does not divide lose their last elements, as a strided conv's input does"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

template <class T, std::size_t SpatialDims>
struct PatchEmbed {
    static_assert(SpatialDims >= 1 && SpatialDims <= 3, "PatchEmbed cuts 1 to 3 spatial axes");

    std::array<Index, SpatialDims> patch{};
    PatchProjection projection = PatchProjection::conv;
    FeatureOrder feature_order = FeatureOrder::spatial_then_channel;  // unfold only
    bool drop_remainder = false;
    Tensor<T> weight;               // conv: [D, C, k...]; unfold: [D, patch_dim] ("<prefix>.proj.weight")
    std::optional<Tensor<T>> bias;  // [D] ("<prefix>.proj.bias")
    std::optional<LayerNorm<T>> norm_in;   // unfold only: LayerNorm(patch_dim) ("<prefix>.norm_in")
    std::optional<LayerNorm<T>> norm_out;  // unfold only: LayerNorm(D) ("<prefix>.norm_out")
    std::optional<Norm<T>> norm;           // the tokens' norm over D ("<prefix>.norm")

    PatchEmbed() = default;

    // Zero parameters of the configured shape: conv weight [D, C, k...] or unfold weight [D, patch_dim],
    // bias [D]. A config that contradicts itself (LayerNorms or a feature order with a conv projection, a
    // non-positive size) is a shape_error here.
    explicit PatchEmbed(const PatchEmbedConfig<SpatialDims>& c)
        : patch(c.patch),
          projection(c.projection),
          feature_order(c.feature_order),
          drop_remainder(c.drop_remainder) {
        const char* op = "vit3d::nn::PatchEmbed";
        bool sizes_ok = c.in_channels > 0 && c.dim > 0;
        Index patch_dim = c.in_channels;
        for (Index k : c.patch) sizes_ok = sizes_ok && k > 0, patch_dim *= k;
        if (!sizes_ok)
            throw shape_error(message(op, ": expected positive in_channels, dim and patch sizes, got ",
                                      c.in_channels, ", ", c.dim, " and patch ", c.patch));
        if (c.projection == PatchProjection::conv &&
            (c.norms || c.feature_order != FeatureOrder::spatial_then_channel))
            throw shape_error(
                message(op,
                        ": LayerNorms and the feature order belong to the unfold projection; a conv "
                        "projection orders its weight [D, C, k...] and has no LayerNorms"));
        Shape w{c.dim};
        if (c.projection == PatchProjection::conv) {
            w.push_back(c.in_channels);
            for (Index k : c.patch) w.push_back(k);
        } else {
            w.push_back(patch_dim);
        }
        weight = Tensor<T>(w);
        if (c.bias) bias = Tensor<T>(Shape{c.dim});
        if (c.norms) {
            norm_in = LayerNorm<T>(patch_dim, c.eps);
            norm_out = LayerNorm<T>(c.dim, c.eps);
        }
        if (c.norm) norm = Norm<T>(c.dim, c.eps, c.norm_kind, c.norm_bias);
    }

    // The common cases: with bias, no LayerNorms, features (spatial..., channel) for unfold.
    static PatchEmbed conv(Index in_channels, Index dim, std::array<Index, SpatialDims> patch_size) {
        return PatchEmbed({in_channels, dim, patch_size, PatchProjection::conv});
    }
    static PatchEmbed unfold(Index in_channels, Index dim, std::array<Index, SpatialDims> patch_size) {
        return PatchEmbed({in_channels, dim, patch_size, PatchProjection::unfold});
    }

    Index dim() const { return weight.dim(0); }
    Index in_channels() const {
        if (projection == PatchProjection::conv) return weight.dim(1);
        Index per_channel = 1;
        for (Index k : patch) per_channel *= k;
        return weight.dim(1) / per_channel;
    }

    // The patch grid of an input shape [B, C, S1, ..., SN]: {S1 / k1, ..., SN / kN}. Throws unless the input
    // has this module's channel count and the patch divides every spatial size.
    std::array<Index, SpatialDims> grid(const Shape& input) const {
        const char* op = "vit3d::nn::PatchEmbed::forward";
        const Index C = in_channels();
        if (input.size() != SpatialDims + 2 || input[1] != C)
            throw shape_error(message(op, ": expected input [B, ", C, expected_spatial(), "], got ", input));
        std::array<Index, SpatialDims> g{};
        for (std::size_t i = 0; i < SpatialDims; ++i) {
            if (patch[i] <= 0 || input[2 + i] < patch[i] || (input[2 + i] % patch[i] != 0 && !drop_remainder))
                throw shape_error(message(op, ": input axis ", 2 + i, " has length ", input[2 + i], ", not ",
                                          (drop_remainder ? "at least" : "divisible by"), " the patch size ",
                                          patch[i], " (input ", input, ")"));
            g[i] = input[2 + i] / patch[i];
        }
        return g;
    }

    // x: [B, C, S1, ..., SN] -> tokens [B, prod(grid), D]
    Tensor<T> forward(const Tensor<T>& x) const {
        check_parameters();
        const auto g = grid(x.shape());
        const bool channel_first =
            projection == PatchProjection::conv || feature_order == FeatureOrder::channel_then_spatial;
        Tensor<T> covered = x;  // the elements the patches cover: all of x unless a remainder is dropped
        for (std::size_t i = 0; i < SpatialDims; ++i)
            if (g[i] * patch[i] != covered.dim(static_cast<Index>(2 + i)))
                covered = covered.narrow(static_cast<Index>(2 + i), 0, g[i] * patch[i]);
        Tensor<T> patches = rearrange(covered, patchify_pattern(channel_first), patch_lengths());
        if (norm_in) patches = norm_in->forward(patches);
        Tensor<T> tokens =
            affine(patches, weight.data(), dim(), weight.size() / dim(), bias ? &*bias : nullptr);
        if (norm_out) tokens = norm_out->forward(tokens);
        return norm ? norm->forward(tokens) : tokens;
    }

    // The same map as an unfold projection with features (spatial..., channel): exact weight permutation.
    PatchEmbed to_unfold() const {
        check_parameters();
        if (projection == PatchProjection::unfold) return *this;
        PatchEmbed p = *this;
        p.projection = PatchProjection::unfold;
        p.feature_order = FeatureOrder::spatial_then_channel;
        std::vector<Index> order{0};
        for (std::size_t i = 0; i < SpatialDims; ++i) order.push_back(static_cast<Index>(2 + i));
        order.push_back(1);
        p.weight = weight.permute(order).reshape({dim(), -1});
        return p;
    }

    // The same map as a conv projection. Throws when LayerNorms surround the Linear: they act on the raw
    // patch vector and have no conv equivalent.
    PatchEmbed to_conv() const {
        check_parameters();
        if (projection == PatchProjection::conv) return *this;
        if (norm_in || norm_out)
            throw shape_error(
                "vit3d::nn::PatchEmbed::to_conv: an unfold projection with LayerNorms has no conv form");
        PatchEmbed p = *this;
        p.projection = PatchProjection::conv;
        const Index C = in_channels();
        Shape unfolded{dim()};
        std::vector<Index> order{0};
        if (feature_order == FeatureOrder::channel_then_spatial) {
            unfolded.push_back(C);
            for (Index k : patch) unfolded.push_back(k);
            p.weight = weight.reshape(unfolded);
            return p;
        }
        for (Index k : patch) unfolded.push_back(k);
        unfolded.push_back(C);
        order.push_back(static_cast<Index>(SpatialDims + 1));
        for (std::size_t i = 0; i < SpatialDims; ++i) order.push_back(static_cast<Index>(1 + i));
        p.weight = weight.reshape(unfolded).permute(order);
        return p;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        if (self.norm_in) self.norm_in->visit_parameters(f, join_name(prefix, "norm_in"));
        f(join_name(prefix, "proj.weight"), self.weight);
        if (self.bias) f(join_name(prefix, "proj.bias"), *self.bias);
        if (self.norm_out) self.norm_out->visit_parameters(f, join_name(prefix, "norm_out"));
        if (self.norm) self.norm->visit_parameters(f, join_name(prefix, "norm"));
    }

    std::string expected_spatial() const {
        std::string s;
        for (Index k : patch) s += message(", k*", k);
        return s;
    }

    // "b c (g0 k0) (g1 k1) -> b (g0 g1) (k0 k1 c)" or "... (c k0 k1)".
    static std::string patchify_pattern(bool channel_first) {
        std::string left = "b c", grid_axes, kernel_axes;
        for (std::size_t i = 0; i < SpatialDims; ++i) {
            const std::string g = "g" + std::to_string(i), k = "k" + std::to_string(i);
            left += " (" + g + " " + k + ")";
            grid_axes += (i ? " " : "") + g;
            kernel_axes += (i ? " " : "") + k;
        }
        const std::string features = channel_first ? "c " + kernel_axes : kernel_axes + " c";
        return left + " -> b (" + grid_axes + ") (" + features + ")";
    }

    AxisLengths patch_lengths() const {
        AxisLengths lengths;
        for (std::size_t i = 0; i < SpatialDims; ++i) lengths.emplace_back("k" + std::to_string(i), patch[i]);
        return lengths;
    }

    void check_parameters() const {
        const char* op = "vit3d::nn::PatchEmbed";
        Index per_channel = 1;
        for (Index k : patch) per_channel *= k;
        bool ok = per_channel > 0 && weight.rank() >= 2;
        if (ok && projection == PatchProjection::conv) {
            ok = weight.rank() == static_cast<Index>(SpatialDims + 2);
            for (std::size_t i = 0; ok && i < SpatialDims; ++i)
                ok = weight.dim(static_cast<Index>(2 + i)) == patch[i];
        } else if (ok) {
            ok = weight.rank() == 2 && weight.dim(1) % per_channel == 0;
            if (ok && norm_in) ok = norm_in->dim() == weight.dim(1);
            if (ok && norm_out) ok = norm_out->dim() == weight.dim(0);
        }
        if (ok && bias) ok = bias->rank() == 1 && bias->dim(0) == weight.dim(0);
        if (!ok)
            throw shape_error(message(op, ": parameters do not fit a ", projection, " projection with patch",
                                      expected_spatial(), ": weight ", weight.shape(), ", bias ",
                                      (bias ? shape_to_string(bias->shape()) : std::string("none"))));
    }
};

template <class T>
using PatchEmbed2d = PatchEmbed<T, 2>;
template <class T>
using PatchEmbed3d = PatchEmbed<T, 3>;

}  // namespace vit3d::nn

#define VIT3D_PATCH_EMBED_INSTANCES(X, T) \
    X(struct vit3d::nn::PatchEmbed<T, 2>) \
    X(struct vit3d::nn::PatchEmbed<T, 3>)
VIT3D_EXTERN_INSTANCES(VIT3D_PATCH_EMBED_INSTANCES)
