// ViT / ViT3D assembled from modules: the forward pipeline against the same steps done by hand, every
// pooling and position-embedding kind, the grid fold for dense heads, presets and errors. Parity with
// torchvision / vit-pytorch / MONAI models comes from the fixture tests.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace models = vit3d::models;
namespace nn = vit3d::nn;

template <class Model>
void randomize(Model& m, std::uint64_t seed) {
    m.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.f, 0.2f);
    });
}

models::VisionTransformerConfig<2> tiny_2d() {
    models::VisionTransformerConfig<2> c;
    c.input_size = {8, 12};
    c.patch_size = {4, 4};
    c.dim = 8;
    c.depth = 2;
    c.heads = 2;
    c.mlp_dim = 16;
    c.num_classes = 3;
    return c;
}

TEST(ViT, ForwardIsPatchEmbedClassTokenPositionsEncoderPoolHead) {
    models::ViT<float> vit(tiny_2d());
    randomize(vit, 1);
    const auto x = Tensor<float>::randn({2, 3, 8, 12}, 50);
    const auto out = vit.forward(x, true);

    auto tokens = vit.patch_embed.forward(x);
    tokens = vit3d::concat<float>({vit3d::repeat(*vit.cls_token, "1 1 d -> b 1 d", {{"b", 2}}), tokens}, 1);
    tokens = tokens + vit.pos_embed.table;
    const auto encoded = vit.encoder.forward(tokens);
    EXPECT_TENSOR_EQ(out.tokens, encoded);
    EXPECT_TENSOR_EQ(out.pooled, encoded.select(1, 0));
    EXPECT_TENSOR_EQ(out.logits, vit.head->forward(encoded.select(1, 0)));
    EXPECT_EQ(out.tokens.shape(), (Shape{2, 1 + 6, 8}));
    EXPECT_EQ(out.hidden.size(), 2u);
}

TEST(ViT, MeanPoolingExcludesOrIncludesTheClassTokenAsConfigured) {
    auto c = tiny_2d();
    c.pool = models::Pooling::mean;
    models::ViT<float> vit(c);
    randomize(vit, 2);
    const auto x = Tensor<float>::randn({1, 3, 8, 12}, 51);
    auto out = vit.forward(x);
    EXPECT_TENSOR_CLOSE(out.pooled,
                        vit3d::reduce(out.tokens.narrow(1, 1, 6), "b n d -> b d", vit3d::Reduction::mean),
                        1e-6, 1e-6);
    vit.config.mean_includes_class_token = true;  // vit-pytorch's vit_3d
    out = vit.forward(x);
    EXPECT_TENSOR_CLOSE(out.pooled, vit3d::reduce(out.tokens, "b n d -> b d", vit3d::Reduction::mean), 1e-6,
                        1e-6);
}

TEST(ViT, MonaiStyleAddsPositionsBeforeTheClassToken) {
    auto c = tiny_2d();
    c.pos_embed_covers_class_token = false;
    models::ViT<float> vit(c);
    randomize(vit, 3);
    ASSERT_EQ(vit.pos_embed.table.shape(), (Shape{1, 6, 8}));
    const auto x = Tensor<float>::randn({1, 3, 8, 12}, 52);
    auto tokens = vit.patch_embed.forward(x) + vit.pos_embed.table;
    tokens = vit3d::concat<float>({*vit.cls_token, tokens}, 1);
    EXPECT_TENSOR_EQ(vit.forward(x).tokens, vit.encoder.forward(tokens));
}

TEST(ViT, SinCosPositionsAreFixedAndNotParameters) {
    auto c = tiny_2d();
    c.pos_embed = models::PosEmbedKind::sincos;
    models::ViT<float> vit(c);
    std::vector<std::string> names;
    vit.visit_parameters([&](const std::string& n, const Tensor<float>&) { names.push_back(n); });
    EXPECT_EQ(std::count(names.begin(), names.end(), "pos_embed"), 0);
    const auto table = nn::sincos_position_embedding<float, 2>({2, 3}, 8, nn::SinCosVariant::mae_monai);
    EXPECT_TENSOR_EQ(vit.pos_embed.table.narrow(1, 1, 6), table);
    EXPECT_TENSOR_EQ(vit.pos_embed.table.narrow(1, 0, 1), Tensor<float>({1, 1, 8}));  // MAE's zero class row
}

TEST(ViT3D, Reg2rgStyleEncoderReturnsTokensAndFoldsThemOntoTheGrid) {
    auto c = models::reg2rg_vit3d();
    c.input_size = {16, 16, 8};
    c.patch_size = {8, 8, 4};
    c.channels = 1;
    c.dim = 12;
    c.depth = 1;
    c.heads = 2;
    c.head_dim = 4;
    c.mlp_dim = 16;
    models::ViT3D<float> vit(c);
    randomize(vit, 4);
    const auto x = Tensor<float>::randn({2, 1, 16, 16, 8}, 53);
    const auto out = vit.forward(x);
    ASSERT_EQ(out.tokens.shape(), (Shape{2, 8, 12}));
    EXPECT_EQ(out.pooled.size(), 0);
    EXPECT_EQ(out.logits.size(), 0);
    const auto expected =
        vit.encoder.forward(vit.factorized_pos_embed.forward(vit.patch_embed.forward(x), {2, 2, 2}));
    EXPECT_TENSOR_EQ(out.tokens, expected);
    const auto grid = vit.patch_grid(out.tokens);
    ASSERT_EQ(grid.shape(), (Shape{2, 12, 2, 2, 2}));
    EXPECT_EQ(grid(1, 5, 1, 0, 1), out.tokens(1, (1 * 2 + 0) * 2 + 1, 5));
}

TEST(ViT, ForwardIsReentrantAcrossThreads) {
    models::ViT<float> vit(tiny_2d());
    randomize(vit, 5);
    const auto x = Tensor<float>::randn({2, 3, 8, 12}, 54);
    const auto expected = vit.forward(x).logits;
    std::vector<int> same(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            bool all = true;
            for (int i = 0; i < 10; ++i) all = all && vit.forward(x).logits == expected;
            same[t] = all;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(same, std::vector<int>(4, 1));
}

TEST(Presets, MatchTheReferenceArchitectures) {
    const auto b16 = models::vit_b_16();
    EXPECT_EQ(b16.num_patches(), 196);
    EXPECT_EQ(models::vit_b_32().num_patches(), 49);
    EXPECT_EQ(models::vit_l_16().depth, 24);
    const auto reg2rg = models::reg2rg_vit3d();
    EXPECT_EQ(reg2rg.num_patches(), 4096);
    // The parameter count of torchvision's vit_b_16 (86,567,656) follows from the config alone.
    models::ViT<float> vit(b16);
    EXPECT_EQ(nn::count_parameters(vit), 86567656);
}

TEST(ViT, RejectsWrongInputsAndImpossibleConfigs) {
    models::ViT<float> vit(tiny_2d());
    EXPECT_THAT(
        [&] {
            vit.forward(Tensor<float>({1, 3, 8, 16}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("expected spatial size [8, 12]")));
    EXPECT_THROW(vit.forward(Tensor<float>({1, 3, 8, 13})), vit3d::shape_error);
    auto c = tiny_2d();
    c.input_size = {9, 12};
    EXPECT_THROW(models::ViT<float>{c}, vit3d::shape_error);
    auto no_cls = tiny_2d();
    no_cls.class_token = false;
    // Contradictory configs are refused by the constructor, before any parameter exists.
    EXPECT_THAT([&] { models::ViT<float>{no_cls}; },
                ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr("cls pooling needs a class token")));
    auto head_without_pooling = tiny_2d();
    head_without_pooling.pool = models::Pooling::none;
    EXPECT_THAT([&] { models::ViT<float>{head_without_pooling}; },
                ::testing::ThrowsMessage<vit3d::config_error>(
                    HasSubstr("needs a pooled feature, but pooling is none")));
    auto conv_with_norms = tiny_2d();
    conv_with_norms.patch_norms = true;
    EXPECT_THAT([&] { models::ViT<float>{conv_with_norms}; },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("belong to the unfold projection")));
    models::VisionTransformerConfig<3> rope_3d;
    rope_3d.input_size = {8, 8, 8};
    rope_3d.patch_size = {4, 4, 4};
    rope_3d.rope = true;
    using ViT3d = models::VisionTransformer<float, 3>;
    EXPECT_THAT([&] { ViT3d{rope_3d}; }, ::testing::ThrowsMessage<vit3d::config_error>(
                                             HasSubstr("rotary position embeddings need 2 spatial axes")));
    auto rope_odd_heads = tiny_2d();
    rope_odd_heads.rope = true;
    rope_odd_heads.head_dim = 6;  // rotated in pairs of the two coordinate channels: divisible by 4
    EXPECT_THROW(models::ViT<float>{rope_odd_heads}, vit3d::config_error);
    // A model edited after construction into an impossible state still fails cleanly in forward.
    auto edited_config = tiny_2d();
    edited_config.pos_embed = models::PosEmbedKind::none;
    models::ViT<float> edited(edited_config);
    edited.cls_token.reset();
    EXPECT_THAT(
        [&] {
            edited.forward(Tensor<float>({1, 3, 8, 12}));
        },
        ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr("cls pooling needs a class token")));
    EXPECT_THROW(vit.patch_grid(Tensor<float>({1, 5, 8})), vit3d::shape_error);
}

}  // namespace
