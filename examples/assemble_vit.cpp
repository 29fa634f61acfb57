// Assemble a 2D ViT and a 3D ViT from vit3d modules and run them on random inputs.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target assemble_vit
//   ./build/examples/assemble_vit
//
// Real weights come from safetensors files exported from PyTorch; here every parameter is random.

#include <cstdio>
#include <vit3d.hpp>

namespace {

template <class Model>
void random_weights(Model& model) {
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string&, vit3d::Tensor<float>& p) {
        p = vit3d::Tensor<float>::randn(p.shape(), seed++, 0.0f, 0.02f);
    });
}

}  // namespace

int main() {
    using vit3d::Tensor;
    namespace nn = vit3d::nn;
    namespace models = vit3d::models;

    // 1. A 2D ViT by hand, module by module: 64x64 RGB images, 16x16 patches, 4 blocks of width 192.
    const auto patch_embed = nn::PatchEmbed2d<float>::conv(/*in_channels=*/3, /*dim=*/192, {16, 16});
    nn::EncoderBlockConfig block;
    block.dim = 192;
    block.heads = 3;
    block.mlp_dim = 768;
    block.eps = 1e-6;
    nn::Encoder<float> encoder(/*depth=*/4, block);
    nn::LearnedPosEmbed<float> positions{Tensor<float>::randn({1, 1 + 16, 192}, 7, 0.0f, 0.02f)};
    const auto cls = Tensor<float>::randn({1, 1, 192}, 8, 0.0f, 0.02f);
    random_weights(encoder);

    const auto images = Tensor<float>::randn({2, 3, 64, 64}, 42);
    auto tokens = patch_embed.forward(images);  // [2, 16, 192]
    tokens =
        vit3d::concat<float>({vit3d::repeat(cls, "1 1 d -> b 1 d", {{"b", 2}}), tokens}, 1);  // [2, 17, 192]
    tokens = encoder.forward(positions.forward(tokens));
    const auto features = tokens.select(1, 0);  // the class token: [2, 192]
    std::printf("2D ViT by hand:  images %s -> tokens %s -> features %s\n",
                vit3d::shape_to_string(images.shape()).c_str(),
                vit3d::shape_to_string(tokens.shape()).c_str(),
                vit3d::shape_to_string(features.shape()).c_str());

    // 2. The same family from a config: a 3D ViT on [B, 1, 32, 64, 64] CT volumes (depth first), with
    //    4x16x16 patches, mean pooling and a 2-class head.
    models::VisionTransformerConfig<3> config;
    config.input_size = {32, 64, 64};
    config.patch_size = {4, 16, 16};
    config.channels = 1;
    config.dim = 96;
    config.depth = 2;
    config.heads = 4;
    config.mlp_dim = 384;
    config.num_classes = 2;
    config.pool = models::Pooling::mean;
    models::ViT3D<float> vit3d_model(config);
    random_weights(vit3d_model);
    const auto volumes = Tensor<float>::randn({1, 1, 32, 64, 64}, 43);
    const auto out = vit3d_model.forward(volumes);
    const auto grid = vit3d_model.patch_grid(out.tokens);  // [1, 96, 8, 4, 4] for a dense head
    std::printf(
        "3D ViT (config): volume %s -> tokens %s -> logits %s, patch grid %s, %lld parameters\n",
        vit3d::shape_to_string(volumes.shape()).c_str(), vit3d::shape_to_string(out.tokens.shape()).c_str(),
        vit3d::shape_to_string(out.logits.shape()).c_str(), vit3d::shape_to_string(grid.shape()).c_str(),
        static_cast<long long>(nn::count_parameters(vit3d_model)));
    return 0;
}
