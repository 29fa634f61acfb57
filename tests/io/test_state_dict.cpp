// io::load_state_dict and the reference key mappings: renaming rules per library, unit-axis reshapes, and
// the errors for missing, mis-shaped, unused and colliding tensors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <vit3d.hpp>
#include <vit3d/io/state_dict.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace nn = vit3d::nn;

io::Safetensors in_memory(const std::map<std::string, Tensor<float>>& tensors) {
    std::map<std::string, const Tensor<float>*> pointers;
    for (const auto& [name, t] : tensors) pointers[name] = &t;
    return io::Safetensors::parse(io::serialize_safetensors(pointers), "state.safetensors");
}

TEST(StateDict, RenamesEachReferencesKeysToVit3dNames) {
    using S = io::WeightSource;
    EXPECT_EQ(io::vit3d_name(S::torchvision, "encoder.layers.encoder_layer_11.self_attention.in_proj_weight"),
              "blocks.11.attn.qkv.weight");
    EXPECT_EQ(io::vit3d_name(S::torchvision, "encoder.layers.encoder_layer_0.mlp.3.bias"),
              "blocks.0.mlp.fc2.bias");
    EXPECT_EQ(io::vit3d_name(S::torchvision, "conv_proj.weight"), "patch_embed.proj.weight");
    EXPECT_EQ(io::vit3d_name(S::torchvision, "heads.head.weight"), "head.weight");
    EXPECT_EQ(io::vit3d_name(S::timm, "blocks.3.attn.qkv.bias"), "blocks.3.attn.qkv.bias");
    EXPECT_EQ(io::vit3d_name(S::timm, "fc_norm.weight"), "head_norm.weight");
    EXPECT_EQ(io::vit3d_name(S::vit_pytorch, "transformer.layers.2.0.to_out.0.weight"),
              "blocks.2.attn.proj.weight");
    EXPECT_EQ(io::vit3d_name(S::vit_pytorch, "transformer.layers.2.0.to_out.weight"),
              "blocks.2.attn.proj.weight");
    EXPECT_EQ(io::vit3d_name(S::vit_pytorch, "transformer.layers.1.1.net.3.weight"),
              "blocks.1.mlp.fc2.weight");
    EXPECT_EQ(io::vit3d_name(S::vit_pytorch, "mlp_head.0.weight"), "head_norm.weight");
    EXPECT_EQ(io::vit3d_name(S::vit_pytorch, "mlp_head.weight"), "head.weight");
    EXPECT_EQ(io::vit3d_name(S::reg2rg, "transformer.layers.5.1.fn.net.3.bias"), "blocks.5.mlp.fc2.bias");
    EXPECT_EQ(io::vit3d_name(S::reg2rg, "pos_embedding.dep_embed.weight"), "pos_embed.dep_embed.weight");
    EXPECT_EQ(io::vit3d_name(S::monai, "patch_embedding.patch_embeddings.1.weight"),
              "patch_embed.proj.weight");
    EXPECT_EQ(io::vit3d_name(S::monai, "blocks.0.norm_cross_attn.weight"), "");
    EXPECT_EQ(io::vit3d_name(S::torch_mha, "in_proj_weight"), "qkv.weight");
    EXPECT_EQ(io::vit3d_name(S::torch_encoder_layer, "self_attn.out_proj.bias"), "attn.proj.bias");
}

TEST(StateDict, LoadsAndReshapesAcrossUnitAxes) {
    nn::LearnedPosEmbed<float> pos{Tensor<float>({1, 3, 2})};
    const auto table = Tensor<float>::randn({3, 2}, 1);  // vit-pytorch >= 1.16 stores [N, D]
    const auto file = in_memory({{"pos_embed", table}});
    const auto report = io::load_state_dict<float>(pos, file, io::WeightSource::vit3d);
    EXPECT_EQ(report.loaded, std::vector<std::string>{"pos_embed"});
    EXPECT_TENSOR_EQ(pos.table, table.reshape({1, 3, 2}));
}

TEST(StateDict, NamesTheMissingTensor) {
    nn::Linear<float> lin(3, 2);
    const auto file = in_memory({{"weight", Tensor<float>({2, 3})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(lin, file, io::WeightSource::vit3d); },
                ::testing::ThrowsMessage<vit3d::io_error>(
                    HasSubstr("missing tensor for parameter \"bias\" of shape [2]")));
}

TEST(StateDict, NamesBothShapesOnAMismatch) {
    nn::Linear<float> lin(3, 2);
    const auto file = in_memory({{"w.weight", Tensor<float>({2, 4})}, {"w.bias", Tensor<float>({2})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(lin, file, io::WeightSource::vit3d, "w."); },
                ::testing::ThrowsMessage<vit3d::io_error>(
                    HasSubstr("tensor \"w.weight\" has shape [2, 4], parameter \"weight\" expects [2, 3]")));
}

TEST(StateDict, StrictModeRejectsUnusedTensorsAndLenientModeSkipsThem) {
    nn::Linear<float> lin(3, 2, false);
    const auto file = in_memory({{"weight", Tensor<float>({2, 3})}, {"extra", Tensor<float>({1})}});
    EXPECT_THAT(
        [&] { io::load_state_dict<float>(lin, file, io::WeightSource::vit3d); },
        ::testing::ThrowsMessage<vit3d::io_error>(HasSubstr("tensors not used by the model: \"extra\"")));
    EXPECT_NO_THROW(io::load_state_dict<float>(lin, file, io::WeightSource::vit3d, "", /*strict=*/false));
}

TEST(StateDict, RejectsTwoTensorsMappingToOneParameter) {
    nn::LayerNorm<float> ln(2);
    const auto file =
        in_memory({{"fc_norm.weight", Tensor<float>({2})}, {"head_norm.weight", Tensor<float>({2})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(ln, file, io::WeightSource::timm); },
                ::testing::ThrowsMessage<vit3d::io_error>(HasSubstr("both map to \"head_norm.weight\"")));
}

}  // namespace
