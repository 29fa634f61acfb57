// Whole models against the reference packages' own models, loaded from their native state_dicts through
// io::load_state_dict (so the key mapping is tested too): torchvision VisionTransformer, timm
// VisionTransformer (token and avg pooling), vit-pytorch ViT / vit_3d.ViT / SimpleViT (3D), MONAI ViT, and
// the Reg2RG 3D ViT. float32 and float64.

#include <gtest/gtest.h>

#include <vit3d.hpp>
#include <vit3d/io/state_dict.hpp>

#include "support/fixtures.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;
using vit3d::test::Fixture;
namespace models = vit3d::models;
namespace nn = vit3d::nn;
namespace io = vit3d::io;

template <class T>
class ModelParity : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ModelParity, Types);

models::VisionTransformerConfig<2> tiny_2d(Index classes = 5) {
    models::VisionTransformerConfig<2> c;
    c.input_size = {32, 32};
    c.patch_size = {8, 8};
    c.dim = 16;
    c.depth = 2;
    c.heads = 2;
    c.mlp_dim = 32;
    c.num_classes = classes;
    return c;
}

TYPED_TEST(ModelParity, TorchvisionVisionTransformer) {
    using T = TypeParam;
    Fixture<T> f("torchvision_vit");
    models::ViT<T> vit(tiny_2d());
    io::load_state_dict<T>(vit, f.file, io::key_maps::torchvision(), "param.");
    const auto out = vit.forward(f.in("x"));
    EXPECT_MATCHES_REFERENCE(out.tokens, f.out("tokens"));
    EXPECT_MATCHES_REFERENCE(out.logits, f.out("logits"));
}

TYPED_TEST(ModelParity, TimmVisionTransformerWithTokenAndAveragePooling) {
    using T = TypeParam;
    {
        Fixture<T> f("timm_vit_token");
        models::ViT<T> vit(tiny_2d());
        io::load_state_dict<T>(vit, f.file, io::key_maps::timm(), "param.");
        const auto out = vit.forward(f.in("x"));
        EXPECT_MATCHES_REFERENCE(out.tokens, f.out("tokens"));
        EXPECT_MATCHES_REFERENCE(out.logits, f.out("logits"));
    }
    {
        // global_pool="avg": mean over patch tokens, then fc_norm (no final norm on the tokens).
        Fixture<T> f("timm_vit_avg");
        auto c = tiny_2d();
        c.pool = models::Pooling::mean;
        c.final_norm = false;
        c.head_norm = true;
        models::ViT<T> vit(c);
        io::load_state_dict<T>(vit, f.file, io::key_maps::timm(), "param.");
        const auto out = vit.forward(f.in("x"));
        EXPECT_MATCHES_REFERENCE(out.tokens, f.out("tokens"));
        EXPECT_MATCHES_REFERENCE(out.logits, f.out("logits"));
    }
}

TYPED_TEST(ModelParity, VitPytorchViT) {
    using T = TypeParam;
    Fixture<T> f("vit_pytorch_vit");
    auto c = tiny_2d();
    c.head_dim = 6;  // inner 2 x 6 = 12 != 16
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.eps = 1e-5;
    c.qkv_bias = false;
    models::ViT<T> vit(c);
    io::load_state_dict<T>(vit, f.file, io::key_maps::vit_pytorch(), "param.");
    EXPECT_MATCHES_REFERENCE(vit.forward(f.in("x")).logits, f.out("logits"));
}

TYPED_TEST(ModelParity, VitPytorchViT3dWithMeanPoolingOverAllTokens) {
    using T = TypeParam;
    Fixture<T> f("vit_pytorch_vit3d");
    models::VisionTransformerConfig<3> c;  // [B, C, F, H, W]
    c.input_size = {8, 16, 16};
    c.patch_size = {4, 8, 8};
    c.channels = 1;
    c.dim = 18;
    c.depth = 2;
    c.heads = 3;
    c.head_dim = 6;
    c.mlp_dim = 24;
    c.num_classes = 3;
    c.pool = models::Pooling::mean;
    c.mean_includes_class_token = true;
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.eps = 1e-5;
    c.qkv_bias = false;
    c.final_norm = false;
    c.head_norm = true;
    models::ViT3D<T> vit(c);
    io::load_state_dict<T>(vit, f.file, io::key_maps::vit_pytorch(), "param.");
    EXPECT_MATCHES_REFERENCE(vit.forward(f.in("x")).logits, f.out("logits"));
}

TYPED_TEST(ModelParity, VitPytorchSimpleViT3dWithSinCosPositions) {
    using T = TypeParam;
    Fixture<T> f("vit_pytorch_simple_vit3d");
    models::VisionTransformerConfig<3> c;
    c.input_size = {8, 16, 16};
    c.patch_size = {4, 8, 8};
    c.channels = 1;
    c.dim = 24;
    c.depth = 2;
    c.heads = 3;
    c.head_dim = 8;
    c.mlp_dim = 32;
    c.num_classes = 3;
    c.class_token = false;
    c.pool = models::Pooling::mean;
    c.pos_embed = models::PosEmbedKind::sincos;
    c.sincos = nn::SinCosVariant::vit_pytorch;
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.eps = 1e-5;
    c.qkv_bias = false;
    c.proj_bias = false;
    models::ViT3D<T> vit(c);
    io::load_state_dict<T>(vit, f.file, io::key_maps::vit_pytorch(), "param.");
    // The reference's sin-cos table is float32 even in float64 (see test_parity_layers): float tolerance.
    const auto logits = vit.forward(f.in("x")).logits;
    const auto reference = f.out("logits");
    for (Index i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits.data()[i], reference.data()[i], 1e-5);
}

TYPED_TEST(ModelParity, MonaiViT) {
    using T = TypeParam;
    Fixture<T> f("monai_vit");
    models::VisionTransformerConfig<3> c;  // [B, C, H, W, D]
    c.input_size = {16, 16, 8};
    c.patch_size = {8, 8, 4};
    c.channels = 1;
    c.dim = 24;
    c.depth = 2;
    c.heads = 2;
    c.mlp_dim = 48;
    c.num_classes = 3;
    c.pos_embed_covers_class_token = false;
    c.eps = 1e-5;
    c.qkv_bias = false;
    c.head_activation = nn::Activation::tanh;
    models::ViT3D<T> vit(c);
    const auto report = io::load_state_dict<T>(vit, f.file, io::key_maps::monai(), "param.");
    EXPECT_EQ(report.skipped.size(), 4u);  // norm_cross_attn of both blocks: unused without cross-attention
    const auto out = vit.forward(f.in("x"), true);
    EXPECT_MATCHES_REFERENCE(out.logits, f.out("logits"));
    EXPECT_MATCHES_REFERENCE(out.hidden.back(), f.out("hidden_last"));
}

TYPED_TEST(ModelParity, Reg2rgViT3d) {
    using T = TypeParam;
    Fixture<T> f("reg2rg_vit3d");
    auto c = models::reg2rg_vit3d();
    c.input_size = {16, 16, 8};
    c.patch_size = {8, 8, 4};
    c.channels = 1;
    c.dim = 12;
    c.depth = 2;
    c.heads = 2;
    c.head_dim = 4;
    c.mlp_dim = 16;
    models::ViT3D<T> vit(c);
    io::load_state_dict<T>(vit, f.file, io::key_maps::reg2rg(), "param.");
    EXPECT_MATCHES_REFERENCE(vit.factorized_pos_embed.embedding({2, 2, 2}), f.out("pos").narrow(0, 0, 1));
    EXPECT_MATCHES_REFERENCE(vit.forward(f.in("x")).tokens, f.out("tokens"));
}

}  // namespace
