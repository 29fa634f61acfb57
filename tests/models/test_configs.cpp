// The configs' field lists (core/fields.hpp): each names every member of its struct, and the configs of the
// parts a model builds (patch embedding, encoder blocks, attention, anatomical encoder) take the model's
// fields that name them.

#include <gtest/gtest.h>

#include <vit3d.hpp>

namespace {

namespace models = vit3d::models;
namespace nn = vit3d::nn;
using vit3d::listed_field_count;
using vit3d::member_count;

template <class Config>
void expect_every_member_listed() {
    EXPECT_EQ(listed_field_count<Config>(), member_count<Config>());
}

TEST(Configs, EveryListNamesEveryMember) {
    expect_every_member_listed<models::VisionTransformerConfig<2>>();
    expect_every_member_listed<models::VisionTransformerConfig<3>>();
    expect_every_member_listed<models::CTEncoderConfig>();
    expect_every_member_listed<nn::EncoderBlockConfig>();
    expect_every_member_listed<nn::HybridBlockConfig>();
    expect_every_member_listed<nn::MultiHeadAttentionConfig>();
    expect_every_member_listed<nn::MlpConfig>();
    expect_every_member_listed<nn::AttentionPoolConfig>();
    expect_every_member_listed<nn::PatchEmbedConfig<2>>();
    expect_every_member_listed<nn::PatchEmbedConfig<3>>();
    expect_every_member_listed<nn::AnatomicalEncoderConfig>();
}

// A struct with a member its list leaves out is caught.
struct Unlisted {
    vit3d::Index listed = 1;
    vit3d::Index forgotten = 2;
    std::array<vit3d::Index, 3> sizes{};
    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(vit3d::field("listed", c.listed, "listed"));
        f(vit3d::field("sizes", c.sizes, "sizes"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

TEST(Configs, MemberCountCountsArraysAsOneMember) {
    EXPECT_EQ(member_count<Unlisted>(), 3u);
    EXPECT_EQ(listed_field_count<Unlisted>(), 2u);
}

TEST(Configs, AVisionTransformersPartsTakeItsFields) {
    models::VisionTransformerConfig<3> c;
    c.input_size = {8, 16, 16};
    c.patch_size = {2, 4, 4};
    c.channels = 2;
    c.dim = 24;
    c.heads = 4;
    c.head_dim = 5;
    c.mlp_dim = 7;
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.norm_placement = nn::NormPlacement::post;
    c.activation = nn::Activation::relu;
    c.eps = 1e-3;
    c.qkv_bias = false;
    c.proj_bias = false;

    const auto patch = vit3d::sub_config<nn::PatchEmbedConfig<3>>(c);
    EXPECT_EQ(patch.in_channels, 2);
    EXPECT_EQ(patch.dim, 24);
    EXPECT_EQ(patch.patch, (std::array<vit3d::Index, 3>{2, 4, 4}));
    EXPECT_EQ(patch.projection, nn::PatchProjection::unfold);
    EXPECT_TRUE(patch.norms);
    EXPECT_EQ(patch.eps, 1e-3);
    EXPECT_TRUE(patch.bias);  // not a field of the model: the part's default
    EXPECT_EQ(patch.feature_order, nn::FeatureOrder::spatial_then_channel);

    const auto block = vit3d::sub_config<nn::EncoderBlockConfig>(c);
    EXPECT_EQ(block.dim, 24);
    EXPECT_EQ(block.heads, 4);
    EXPECT_EQ(block.head_dim, 5);
    EXPECT_EQ(block.mlp_dim, 7);
    EXPECT_FALSE(block.qkv_bias);
    EXPECT_FALSE(block.proj_bias);
    EXPECT_EQ(block.eps, 1e-3);
    EXPECT_EQ(block.activation, nn::Activation::relu);
    EXPECT_EQ(block.placement, nn::NormPlacement::post);

    const nn::MultiHeadAttentionConfig attention = block.attention();
    EXPECT_EQ(attention.dim, 24);
    EXPECT_EQ(attention.heads, 4);
    EXPECT_EQ(attention.head_dim, 5);
    EXPECT_FALSE(attention.qkv_bias);
    EXPECT_FALSE(attention.proj_bias);
    EXPECT_TRUE(attention.out_proj);
}

TEST(Configs, TheCtEncodersPartsTakeItsFields) {
    models::CTEncoderConfig c;
    c.patch_size = {2, 8, 8};
    c.channels = 2;
    c.dim = 24;
    c.heads = 4;
    c.mlp_dim = 7;
    c.slice_levels = 5;
    c.regions = 6;
    c.eps = 1e-3;
    c.qkv_bias = false;

    const auto patch = vit3d::sub_config<nn::PatchEmbedConfig<3>>(c);
    EXPECT_EQ(patch.in_channels, 2);
    EXPECT_EQ(patch.dim, 24);
    EXPECT_EQ(patch.patch, (std::array<vit3d::Index, 3>{2, 8, 8}));
    EXPECT_EQ(patch.projection, nn::PatchProjection::conv);
    EXPECT_EQ(patch.eps, nn::PatchEmbedConfig<3>{}.eps);  // a conv projection has no LayerNorms to take eps

    const auto anatomy = vit3d::sub_config<nn::AnatomicalEncoderConfig>(c);
    EXPECT_EQ(anatomy.dim, 24);
    EXPECT_EQ(anatomy.regions, 6);
    EXPECT_EQ(anatomy.patch, (std::array<vit3d::Index, 3>{2, 8, 8}));

    const nn::HybridBlockConfig block = c.block();
    EXPECT_EQ(block.dim, 24);
    EXPECT_EQ(block.heads, 4);
    EXPECT_EQ(block.mlp_dim, 7);
    EXPECT_EQ(block.levels, 5);
    EXPECT_EQ(block.slice_axis, 0u);
    EXPECT_EQ(block.eps, 1e-3);
    EXPECT_FALSE(block.qkv_bias);
    EXPECT_EQ(block.activation, nn::Activation::gelu);

    const nn::SliceAwareAttentionConfig slice = block.slice_attention();
    EXPECT_EQ(slice.levels, 5);
    EXPECT_EQ(slice.slice_axis, 0u);
    EXPECT_EQ(slice.attention.dim, 24);
    EXPECT_EQ(slice.attention.heads, 4);
    EXPECT_FALSE(slice.attention.qkv_bias);
    EXPECT_EQ(slice.attention.head_dim, 0);
}

}  // namespace
