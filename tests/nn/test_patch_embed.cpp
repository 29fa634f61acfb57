// PatchEmbed2d / PatchEmbed3d: the conv projection against a direct strided convolution, the exact
// conv <-> unfold weight conversion in both 3D layouts, vit-pytorch's LayerNorm/Linear/LayerNorm form,
// and the errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace nn = vit3d::nn;

template <class Module>
void randomize(Module& m, std::uint64_t seed) {
    m.visit_parameters([&](const std::string&, auto& t) {
        using T = typename std::decay_t<decltype(t)>::value_type;
        t = Tensor<T>::randn(t.shape(), seed++, T(0), T(0.3));
    });
}

// Conv3d with kernel = stride over [B, C, S0, S1, S2], tokens flattened row-major over the grid.
Tensor<double> direct_conv3d(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b) {
    const Index B = x.dim(0), C = x.dim(1), D = w.dim(0), k0 = w.dim(2), k1 = w.dim(3), k2 = w.dim(4);
    const Index g0 = x.dim(2) / k0, g1 = x.dim(3) / k1, g2 = x.dim(4) / k2;
    Tensor<double> y({B, g0 * g1 * g2, D});
    for (Index n = 0; n < B; ++n)
        for (Index a = 0; a < g0; ++a)
            for (Index c1 = 0; c1 < g1; ++c1)
                for (Index e = 0; e < g2; ++e)
                    for (Index d = 0; d < D; ++d) {
                        double s = b(d);
                        for (Index c = 0; c < C; ++c)
                            for (Index i = 0; i < k0; ++i)
                                for (Index j = 0; j < k1; ++j)
                                    for (Index k = 0; k < k2; ++k)
                                        s += w(d, c, i, j, k) * x(n, c, a * k0 + i, c1 * k1 + j, e * k2 + k);
                        y(n, (a * g1 + c1) * g2 + e, d) = s;
                    }
    return y;
}

TEST(PatchEmbed3d, ConvProjectionIsAStridedConvolution) {
    auto pe = nn::PatchEmbed3d<double>::conv(2, 5, {2, 4, 3});
    randomize(pe, 1);
    const auto x = Tensor<double>::randn({2, 2, 4, 8, 9}, 10);
    const auto y = pe.forward(x);
    ASSERT_EQ(y.shape(), (Shape{2, 2 * 2 * 3, 5}));
    EXPECT_TENSOR_CLOSE(y, direct_conv3d(x, pe.weight, *pe.bias), 1e-12, 1e-12);
}

TEST(PatchEmbed2d, ConvProjectionMatchesAConv3dWithUnitDepth) {
    auto pe = nn::PatchEmbed2d<double>::conv(3, 4, {4, 2});
    randomize(pe, 2);
    const auto x = Tensor<double>::randn({2, 3, 8, 6}, 11);
    const auto as3d = direct_conv3d(x.unsqueeze(-1), pe.weight.unsqueeze(-1), *pe.bias);
    EXPECT_TENSOR_CLOSE(pe.forward(x), as3d, 1e-12, 1e-12);
}

TEST(PatchEmbed3d, UnfoldAndConvAreTheSameMapInBothVolumeLayouts) {
    // [B, C, D, H, W] with patch (pd, ph, pw) and [B, C, H, W, D] with patch (ph, pw, pd).
    for (const auto& [shape, patch] : {std::pair<Shape, std::array<Index, 3>>{{1, 2, 8, 8, 4}, {4, 4, 2}},
                                       std::pair<Shape, std::array<Index, 3>>{{1, 2, 8, 4, 8}, {2, 4, 4}}}) {
        auto conv = nn::PatchEmbed3d<float>::conv(2, 6, patch);
        randomize(conv, 3);
        const auto x = Tensor<float>::randn(shape, 12);
        const auto unfold = conv.to_unfold();
        EXPECT_EQ(unfold.weight.shape(), (Shape{6, 2 * patch[0] * patch[1] * patch[2]}));
        EXPECT_TENSOR_CLOSE(unfold.forward(x), conv.forward(x), 1e-5, 1e-6);
        EXPECT_TENSOR_EQ(unfold.to_conv().weight, conv.weight);  // the conversion is a permutation: exact
    }
}

TEST(PatchEmbed3d, UnfoldWithNormsIsVitPytorchsPatchEmbedding) {
    // Reg2RG / RadFM: 'b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)', LayerNorm, Linear, LayerNorm.
    auto pe = nn::PatchEmbed3d<float>(
        {2, 6, {4, 4, 2}, nn::PatchProjection::unfold, /*bias=*/true, /*norms=*/true});
    randomize(pe, 4);
    const auto x = Tensor<float>::randn({2, 2, 8, 4, 6}, 13);
    const auto patches = vit3d::rearrange(x, "b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)",
                                          {{"p1", 4}, {"p2", 4}, {"pf", 2}});
    const auto expected =
        pe.norm_out->forward(nn::Linear<float>(pe.weight, pe.bias).forward(pe.norm_in->forward(patches)));
    EXPECT_TENSOR_CLOSE(pe.forward(x), expected, 1e-6, 1e-6);
    EXPECT_THAT([&] { pe.to_conv(); },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("with LayerNorms has no conv form")));
}

TEST(PatchEmbed2d, ChannelFirstFeatureOrderIsTheConvKernelFlattened) {
    auto conv = nn::PatchEmbed2d<float>::conv(3, 4, {2, 2});
    randomize(conv, 5);
    auto unfold = nn::PatchEmbed2d<float>({3,
                                           4,
                                           {2, 2},
                                           nn::PatchProjection::unfold,
                                           /*bias=*/true,
                                           /*norms=*/false,
                                           nn::FeatureOrder::channel_then_spatial});
    unfold.weight = conv.weight.reshape({4, 12});
    unfold.bias = conv.bias;
    const auto x = Tensor<float>::randn({1, 3, 4, 6}, 14);
    EXPECT_TENSOR_CLOSE(unfold.forward(x), conv.forward(x), 1e-6, 1e-6);
    EXPECT_TENSOR_EQ(unfold.to_conv().weight, conv.weight);
}

TEST(PatchEmbed, RejectsInputsThePatchDoesNotFit) {
    const auto pe = nn::PatchEmbed2d<float>::conv(3, 8, {16, 16});
    EXPECT_THAT(
        [&] {
            pe.forward(Tensor<float>({1, 3, 30, 32}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("input axis 2 has length 30, not divisible by the patch size 16")));
    EXPECT_THAT(
        [&] {
            pe.forward(Tensor<float>({1, 1, 32, 32}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected input [B, 3, k*16, k*16], got [1, 1, 32, 32]")));
    EXPECT_THROW(pe.forward(Tensor<float>({3, 32, 32})), vit3d::shape_error);
    auto broken = pe;
    broken.weight = Tensor<float>({8, 3, 16, 8});
    EXPECT_THAT(
        [&] {
            broken.forward(Tensor<float>({1, 3, 32, 32}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("parameters do not fit a conv projection")));
}

TEST(PatchEmbed, ConfigBuildsTheParametersAndRefusesContradictions) {
    nn::PatchEmbedConfig<3> c;
    c.in_channels = 2;
    c.dim = 6;
    c.patch = {4, 2, 2};
    c.bias = false;
    const nn::PatchEmbed3d<float> conv(c);
    EXPECT_EQ(conv.weight.shape(), (Shape{6, 2, 4, 2, 2}));
    EXPECT_FALSE(conv.bias.has_value());
    c.projection = nn::PatchProjection::unfold;
    c.norms = true;
    c.eps = 1e-6;
    const nn::PatchEmbed3d<float> unfold(c);
    EXPECT_EQ(unfold.weight.shape(), (Shape{6, 32}));
    ASSERT_TRUE(unfold.norm_in && unfold.norm_out);
    EXPECT_EQ(unfold.norm_in->dim(), 32);
    EXPECT_EQ(unfold.norm_out->eps, 1e-6);

    c.projection = nn::PatchProjection::conv;
    EXPECT_THAT([&] { nn::PatchEmbed3d<float>{c}; },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("belong to the unfold projection")));
    c.norms = false;
    c.patch = {4, 0, 2};
    EXPECT_THAT([&] { nn::PatchEmbed3d<float>{c}; },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr(
                    "expected positive in_channels, dim and patch sizes, got 2, 6 and patch [4, 0, 2]")));
}

TEST(PatchEmbed, NamesItsParameters) {
    const auto pe = nn::PatchEmbed3d<float>(
        {1, 4, {2, 2, 2}, nn::PatchProjection::unfold, /*bias=*/true, /*norms=*/true});
    std::vector<std::string> names;
    pe.visit_parameters([&](const std::string& n, const Tensor<float>&) { names.push_back(n); },
                        "patch_embed");
    EXPECT_EQ(names, (std::vector<std::string>{"patch_embed.norm_in.weight", "patch_embed.norm_in.bias",
                                               "patch_embed.proj.weight", "patch_embed.proj.bias",
                                               "patch_embed.norm_out.weight", "patch_embed.norm_out.bias"}));
    EXPECT_EQ(pe.in_channels(), 1);
    EXPECT_EQ(pe.grid({2, 1, 4, 6, 8}), (std::array<Index, 3>{2, 3, 4}));
}

}  // namespace
