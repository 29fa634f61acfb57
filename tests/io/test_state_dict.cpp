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
    EXPECT_EQ(
        io::key_maps::torchvision().rename("encoder.layers.encoder_layer_11.self_attention.in_proj_weight"),
        "blocks.11.attn.qkv.weight");
    EXPECT_EQ(io::key_maps::torchvision().rename("encoder.layers.encoder_layer_0.mlp.3.bias"),
              "blocks.0.mlp.fc2.bias");
    EXPECT_EQ(io::key_maps::torchvision().rename("conv_proj.weight"), "patch_embed.proj.weight");
    EXPECT_EQ(io::key_maps::torchvision().rename("heads.head.weight"), "head.weight");
    EXPECT_EQ(io::key_maps::timm().rename("blocks.3.attn.qkv.bias"), "blocks.3.attn.qkv.bias");
    EXPECT_EQ(io::key_maps::timm().rename("fc_norm.weight"), "head_norm.weight");
    EXPECT_EQ(io::key_maps::vit_pytorch().rename("transformer.layers.2.0.to_out.0.weight"),
              "blocks.2.attn.proj.weight");
    EXPECT_EQ(io::key_maps::vit_pytorch().rename("transformer.layers.2.0.to_out.weight"),
              "blocks.2.attn.proj.weight");
    EXPECT_EQ(io::key_maps::vit_pytorch().rename("transformer.layers.1.1.net.3.weight"),
              "blocks.1.mlp.fc2.weight");
    EXPECT_EQ(io::key_maps::vit_pytorch().rename("mlp_head.0.weight"), "head_norm.weight");
    EXPECT_EQ(io::key_maps::vit_pytorch().rename("mlp_head.weight"), "head.weight");
    EXPECT_EQ(io::key_maps::reg2rg().rename("transformer.layers.5.1.fn.net.3.bias"), "blocks.5.mlp.fc2.bias");
    EXPECT_EQ(io::key_maps::reg2rg().rename("pos_embedding.dep_embed.weight"), "pos_embed.dep_embed.weight");
    EXPECT_EQ(io::key_maps::monai().rename("patch_embedding.patch_embeddings.1.weight"),
              "patch_embed.proj.weight");
    EXPECT_EQ(io::key_maps::monai().rename("blocks.0.norm_cross_attn.weight"), "");
    EXPECT_EQ(io::key_maps::torch_mha().rename("in_proj_weight"), "qkv.weight");
    EXPECT_EQ(io::key_maps::torch_encoder_layer().rename("self_attn.out_proj.bias"), "attn.proj.bias");
}

TEST(StateDict, AFamilyOfItsOwnIsAKeyMapOfItsOwn) {
    // A new model family brings its table without touching the built-in ones: rules apply in order, the
    // first match wins, "" skips the tensor, an unmatched key keeps its name.
    const io::KeyMap mine(
        "mine", {{R"(^layers\.0\.)", "fc1."}, {R"(^layers\.(2)\.)", "fc$1."}, {R"(^layers\.)", ""}});
    EXPECT_EQ(mine.name(), "mine");
    EXPECT_EQ(mine.rename("layers.0.weight"), "fc1.weight");
    EXPECT_EQ(mine.rename("layers.2.bias"), "fc2.bias");
    EXPECT_EQ(mine.rename("layers.1.running_mean"), "");
    EXPECT_EQ(mine.rename("head.bias"), "head.bias");

    nn::Mlp<float> mlp(3, 4);
    const auto w1 = Tensor<float>::randn({4, 3}, 4), b1 = Tensor<float>::randn({4}, 5);
    const auto w2 = Tensor<float>::randn({3, 4}, 6), b2 = Tensor<float>::randn({3}, 7);
    const auto file = in_memory({{"layers.0.weight", w1},
                                 {"layers.0.bias", b1},
                                 {"layers.1.running_mean", b1},
                                 {"layers.2.weight", w2},
                                 {"layers.2.bias", b2}});
    const auto report = io::load_state_dict<float>(mlp, file, mine);
    EXPECT_EQ(report.skipped, std::vector<std::string>{"layers.1.running_mean"});
    EXPECT_TENSOR_EQ(mlp.fc1.weight, w1);
    EXPECT_TENSOR_EQ(*mlp.fc2.bias, b2);
}

TEST(StateDict, BuiltInKeyMapsAreCompiledOnceAndShared) {
    EXPECT_EQ(&io::key_maps::torchvision(), &io::key_maps::torchvision());
    EXPECT_EQ(io::key_maps::torchvision().name(), "torchvision");
    EXPECT_EQ(io::key_maps::vit3d().rename("blocks.0.attn.qkv.weight"), "blocks.0.attn.qkv.weight");
}

TEST(StateDict, LoadsAndReshapesAcrossUnitAxes) {
    nn::LearnedPosEmbed<float> pos{Tensor<float>({1, 3, 2})};
    const auto table = Tensor<float>::randn({3, 2}, 1);  // vit-pytorch >= 1.16 stores [N, D]
    const auto file = in_memory({{"pos_embed", table}});
    const auto report = io::load_state_dict<float>(pos, file, io::key_maps::vit3d());
    EXPECT_EQ(report.loaded, std::vector<std::string>{"pos_embed"});
    EXPECT_TENSOR_EQ(pos.table, table.reshape({1, 3, 2}));
}

TEST(StateDict, NamesTheMissingTensor) {
    nn::Linear<float> lin(3, 2);
    const auto file = in_memory({{"weight", Tensor<float>({2, 3})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(lin, file, io::key_maps::vit3d()); },
                ::testing::ThrowsMessage<vit3d::io_error>(
                    HasSubstr("missing tensor for parameter \"bias\" of shape [2]")));
}

TEST(StateDict, NamesBothShapesOnAMismatch) {
    nn::Linear<float> lin(3, 2);
    const auto file = in_memory({{"w.weight", Tensor<float>({2, 4})}, {"w.bias", Tensor<float>({2})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(lin, file, io::key_maps::vit3d(), "w."); },
                ::testing::ThrowsMessage<vit3d::io_error>(
                    HasSubstr("tensor \"w.weight\" has shape [2, 4], parameter \"weight\" expects [2, 3]")));
}

TEST(StateDict, StrictModeRejectsUnusedTensorsAndLenientModeSkipsThem) {
    nn::Linear<float> lin(3, 2, false);
    const auto file = in_memory({{"weight", Tensor<float>({2, 3})}, {"extra", Tensor<float>({1})}});
    EXPECT_THAT(
        [&] { io::load_state_dict<float>(lin, file, io::key_maps::vit3d()); },
        ::testing::ThrowsMessage<vit3d::io_error>(HasSubstr("tensors not used by the model: \"extra\"")));
    EXPECT_NO_THROW(io::load_state_dict<float>(lin, file, io::key_maps::vit3d(), "", /*strict=*/false));
}

// vit-pytorch keeps a [0, dim] cls_token under mean pooling: an empty tensor holds no weights to lose.
TEST(StateDict, StrictModeSkipsUnusedTensorsWithoutElements) {
    nn::Linear<float> lin(3, 2, false);
    const auto file = in_memory({{"weight", Tensor<float>({2, 3})}, {"cls_token", Tensor<float>({0, 3})}});
    const auto report = io::load_state_dict<float>(lin, file, io::key_maps::vit3d());
    EXPECT_EQ(report.skipped, std::vector<std::string>{"cls_token"});
    EXPECT_EQ(report.loaded, std::vector<std::string>{"weight"});
}

TEST(StateDict, RejectsTwoTensorsMappingToOneParameter) {
    nn::LayerNorm<float> ln(2);
    const auto file =
        in_memory({{"fc_norm.weight", Tensor<float>({2})}, {"head_norm.weight", Tensor<float>({2})}});
    EXPECT_THAT([&] { io::load_state_dict<float>(ln, file, io::key_maps::timm()); },
                ::testing::ThrowsMessage<vit3d::io_error>(HasSubstr("both map to \"head_norm.weight\"")));
}

}  // namespace
