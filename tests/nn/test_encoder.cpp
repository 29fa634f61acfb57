// EncoderBlock (pre- and post-norm) and Encoder against the composition of their modules.

#include <gtest/gtest.h>

#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace nn = vit3d::nn;

// Fills every parameter with distinct random values (seeded by its position).
template <class Module>
void randomize(Module& m, std::uint64_t seed) {
    m.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.f, 0.2f);
    });
}

nn::EncoderBlockConfig small_config(nn::NormPlacement placement) {
    nn::EncoderBlockConfig c;
    c.dim = 8;
    c.heads = 2;
    c.mlp_dim = 16;
    c.placement = placement;
    c.eps = 1e-5;
    return c;
}

TEST(EncoderBlock, PreNormAddsAttentionAndMlpOfNormalizedInputs) {
    nn::EncoderBlock<float> block(small_config(nn::NormPlacement::pre));
    randomize(block, 1);
    const auto x = Tensor<float>::randn({2, 5, 8}, 100);
    const auto h = x + block.attn.forward(block.norm1.forward(x));
    const auto expected = h + block.mlp.forward(block.norm2.forward(h));
    EXPECT_TENSOR_EQ(block.forward(x), expected);
}

TEST(EncoderBlock, PostNormNormalizesAfterEachResidual) {
    nn::EncoderBlock<float> block(small_config(nn::NormPlacement::post));
    block.mlp.activation = nn::Activation::relu;  // torch.nn.TransformerEncoderLayer's default
    randomize(block, 2);
    const auto x = Tensor<float>::randn({1, 4, 8}, 101);
    const auto h = block.norm1.forward(x + block.attn.forward(x));
    const auto expected = block.norm2.forward(h + block.mlp.forward(h));
    EXPECT_TENSOR_EQ(block.forward(x), expected);
}

TEST(Encoder, StacksBlocksThenTheFinalNormAndReportsHiddenStates) {
    nn::Encoder<float> encoder(3, small_config(nn::NormPlacement::pre));
    randomize(encoder, 3);
    const auto x = Tensor<float>::randn({2, 5, 8}, 102);
    auto expected = x;
    for (const auto& b : encoder.blocks) expected = b.forward(expected);
    std::vector<Tensor<float>> hidden;
    const auto y = encoder.forward(x, {}, &hidden);
    ASSERT_EQ(hidden.size(), 3u);
    EXPECT_TENSOR_EQ(hidden.back(), expected);
    EXPECT_TENSOR_EQ(y, encoder.norm->forward(expected));
    nn::Encoder<float> no_norm(1, small_config(nn::NormPlacement::pre), false);
    EXPECT_FALSE(no_norm.norm.has_value());
}

TEST(Encoder, NamesParametersLikeATimmStateDict) {
    nn::Encoder<float> encoder(2, small_config(nn::NormPlacement::pre));
    std::vector<std::string> names;
    encoder.visit_parameters([&](const std::string& n, const Tensor<float>&) { names.push_back(n); });
    ASSERT_EQ(names.size(), 2u * 12 + 2);
    EXPECT_EQ(names[0], "blocks.0.norm1.weight");
    EXPECT_EQ(names[2], "blocks.0.attn.qkv.weight");
    EXPECT_EQ(names[5], "blocks.0.attn.proj.bias");
    EXPECT_EQ(names[11], "blocks.0.mlp.fc2.bias");
    EXPECT_EQ(names[12], "blocks.1.norm1.weight");
    EXPECT_EQ(names.back(), "norm.bias");
    EXPECT_EQ(nn::count_parameters(encoder),
              2 * (4 * 8 + (24 * 8 + 24) + (8 * 8 + 8) + (16 * 8 + 16) + (8 * 16 + 8)) + 16);
}

}  // namespace
