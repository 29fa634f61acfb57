// Layers and blocks against PyTorch's own modules (fixtures from tests/fixtures/make_fixtures.py), in
// float32 and float64.

#include <gtest/gtest.h>

#include <vit3d.hpp>
#include <vit3d/io/state_dict.hpp>

#include "support/fixtures.hpp"

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::test::Fixture;
namespace nn = vit3d::nn;
namespace io = vit3d::io;

template <class T>
class Parity : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Parity, Types);

TYPED_TEST(Parity, LinearMatchesTorchWithAndWithoutBias) {
    using T = TypeParam;
    Fixture<T> f("linear");
    nn::Linear<T> lin(5, 7);
    io::load_state_dict<T>(lin, f.file, io::key_maps::vit3d(), "param.");
    EXPECT_MATCHES_REFERENCE(lin.forward(f.in("x")), f.out("y"));
    Fixture<T> g("linear_nobias");
    nn::Linear<T> nobias(5, 7, false);
    io::load_state_dict<T>(nobias, g.file, io::key_maps::vit3d(), "param.");
    EXPECT_MATCHES_REFERENCE(nobias.forward(g.in("x")), g.out("y"));
}

TYPED_TEST(Parity, LayerNormMatchesTorchAtBothEpsilons) {
    using T = TypeParam;
    for (const auto& [name, eps] : {std::pair<std::string, double>{"layer_norm_eps1e-06", 1e-6},
                                    std::pair<std::string, double>{"layer_norm_eps1e-05", 1e-5}}) {
        Fixture<T> f(name);
        nn::LayerNorm<T> ln(12, eps);
        io::load_state_dict<T>(ln, f.file, io::key_maps::vit3d(), "param.");
        EXPECT_MATCHES_REFERENCE(ln.forward(f.in("x")), f.out("y")) << name;
    }
}

TYPED_TEST(Parity, ActivationsMatchTorch) {
    using T = TypeParam;
    Fixture<T> f("activations");
    const auto x = f.in("x");
    EXPECT_MATCHES_REFERENCE(nn::activate(x, nn::Activation::gelu), f.out("gelu"));
    EXPECT_MATCHES_REFERENCE(nn::activate(x, nn::Activation::gelu_tanh), f.out("gelu_tanh"));
    EXPECT_MATCHES_REFERENCE(nn::activate(x, nn::Activation::relu), f.out("relu"));
}

TYPED_TEST(Parity, MultiHeadAttentionMatchesTorchMhaWithMasksBiasAndCrossAttention) {
    using T = TypeParam;
    Fixture<T> f("mha_torch");
    nn::MultiHeadAttentionConfig mha_config;
    mha_config.dim = 16;
    mha_config.heads = 4;
    nn::MultiHeadAttention<T> mha(mha_config);
    io::load_state_dict<T>(mha, f.file, io::key_maps::torch_mha(), "param.");
    const auto x = f.in("x");
    Tensor<T> weights;
    nn::AttentionInputs<T> in;
    in.weights = &weights;
    EXPECT_MATCHES_REFERENCE(mha.forward(x, in), f.out("y"));
    EXPECT_MATCHES_REFERENCE(weights, f.out("weights"));

    // torch's key_padding_mask is True where a key is ignored; vit3d's `allowed` is the opposite.
    const auto padding = f.in("key_padding_mask");
    Tensor<std::uint8_t> allowed({x.dim(0), 1, 1, x.dim(1)});
    for (Index b = 0; b < x.dim(0); ++b)
        for (Index j = 0; j < x.dim(1); ++j) allowed(b, 0, 0, j) = padding(b, j) == T(0);
    nn::AttentionInputs<T> masked;
    masked.allowed = &allowed;
    masked.weights = &weights;
    EXPECT_MATCHES_REFERENCE(mha.forward(x, masked), f.out("y_padded"));
    EXPECT_MATCHES_REFERENCE(weights, f.out("weights_padded"));

    const auto bias = f.in("bias").unsqueeze(0);  // [1, heads, N, N], shared by the batch
    nn::AttentionInputs<T> biased;
    biased.bias = &bias;
    EXPECT_MATCHES_REFERENCE(mha.forward(x, biased), f.out("y_bias"));

    const auto ctx = f.in("context");
    nn::AttentionInputs<T> cross;
    cross.context = &ctx;
    cross.weights = &weights;
    EXPECT_MATCHES_REFERENCE(mha.forward(x, cross), f.out("y_cross"));
    EXPECT_MATCHES_REFERENCE(weights, f.out("weights_cross"));
}

TYPED_TEST(Parity, MultiHeadAttentionMatchesTimmAttention) {
    using T = TypeParam;
    Fixture<T> f("attention_timm");
    nn::MultiHeadAttentionConfig att_config;
    att_config.dim = 16;
    att_config.heads = 4;
    nn::MultiHeadAttention<T> att(att_config);
    io::load_state_dict<T>(att, f.file, io::key_maps::timm(), "param.");
    EXPECT_MATCHES_REFERENCE(att.forward(f.in("x")), f.out("y"));
}

TYPED_TEST(Parity, SliceDistanceBiasFeedsAttentionAsTorchsFloatMask) {
    using T = TypeParam;
    Fixture<T> f("slice_distance_bias");  // grid 2 x 3 x 2 after one class token, slices along axis 1
    nn::SliceDistanceBiasConfig slice_config;
    slice_config.heads = 2;
    slice_config.levels = 2;
    slice_config.slice_axis = 1;
    nn::SliceDistanceBias<T> slices(slice_config);
    io::load_state_dict<T>(slices, f.file, io::key_maps::vit3d(), "param.bias.");
    const auto bias = slices.bias({2, 3, 2}, 1);
    EXPECT_MATCHES_REFERENCE(bias, f.out("bias"));
    nn::MultiHeadAttentionConfig mha_config;
    mha_config.dim = 8;
    mha_config.heads = 2;
    nn::MultiHeadAttention<T> mha(mha_config);
    io::load_state_dict<T>(mha, f.file, io::key_maps::torch_mha(), "param.mha.");
    nn::AttentionInputs<T> in;
    in.bias = &bias;
    EXPECT_MATCHES_REFERENCE(mha.forward(f.in("x"), in), f.out("y"));
}

TYPED_TEST(Parity, LayerNormThenAttentionMatchesVitPytorchAttention) {
    using T = TypeParam;
    Fixture<T> f("attention_vit_pytorch");  // its Attention owns a LayerNorm; inner dim 2 x 6 != 16
    nn::LayerNorm<T> norm(16, 1e-5);
    norm.weight = f.param("norm.weight");
    norm.bias = f.param("norm.bias");
    nn::MultiHeadAttentionConfig att_config;
    att_config.dim = 16;
    att_config.heads = 2;
    att_config.head_dim = 6;
    att_config.qkv_bias = false;
    att_config.proj_bias = true;
    nn::MultiHeadAttention<T> att(att_config);
    att.qkv.weight = f.param("to_qkv.weight");
    att.proj->weight = f.param("to_out.0.weight");
    att.proj->bias = f.param("to_out.0.bias");
    EXPECT_MATCHES_REFERENCE(att.forward(norm.forward(f.in("x"))), f.out("y"));
}

TYPED_TEST(Parity, EncoderBlocksMatchTorchTransformerEncoderLayer) {
    using T = TypeParam;
    {
        Fixture<T> f("tel_post_relu");
        nn::EncoderBlockConfig c;
        c.dim = 16;
        c.heads = 4;
        c.mlp_dim = 32;
        c.eps = 1e-5;
        c.activation = nn::Activation::relu;
        c.placement = nn::NormPlacement::post;
        nn::EncoderBlock<T> block(c);
        io::load_state_dict<T>(block, f.file, io::key_maps::torch_encoder_layer(), "param.");
        EXPECT_MATCHES_REFERENCE(block.forward(f.in("x")), f.out("y"));
    }
    {
        Fixture<T> f("tel_pre_gelu");
        nn::EncoderBlockConfig c;
        c.dim = 16;
        c.heads = 4;
        c.mlp_dim = 32;
        c.eps = 1e-6;
        nn::EncoderBlock<T> block(c);
        io::load_state_dict<T>(block, f.file, io::key_maps::torch_encoder_layer(), "param.");
        EXPECT_MATCHES_REFERENCE(block.forward(f.in("x")), f.out("y"));
    }
}

TYPED_TEST(Parity, MonaiPatchEmbeddingConvAndPerceptron) {
    using T = TypeParam;
    for (const char* proj : {"conv", "perceptron"}) {
        Fixture<T> f(std::string("monai_patch_embedding_") + proj);
        auto pe = std::string(proj) == "conv" ? nn::PatchEmbed3d<T>::conv(2, 12, {4, 4, 3})
                                              : nn::PatchEmbed3d<T>::unfold(2, 12, {4, 4, 3});
        pe.weight =
            f.param(std::string(proj) == "conv" ? "patch_embeddings.weight" : "patch_embeddings.1.weight");
        pe.bias = f.param(std::string(proj) == "conv" ? "patch_embeddings.bias" : "patch_embeddings.1.bias");
        const nn::LearnedPosEmbed<T> pos{f.param("position_embeddings")};
        EXPECT_MATCHES_REFERENCE(pos.forward(pe.forward(f.in("x"))), f.out("y")) << proj;
    }
}

TYPED_TEST(Parity, SinCosTablesMatchMonaiAndVitPytorch) {
    // Both references compute their tables in float32 (the float64 fixture holds the same float32 values), so
    // both precisions are held to float32 accuracy here; vit3d computes in double and rounds once.
    using T = TypeParam;
    Fixture<T> f("sincos_tables");
    using V = nn::SinCosVariant;
    auto expect_close = [](const Tensor<T>& actual, const Tensor<T>& reference, const char* what) {
        ASSERT_EQ(actual.shape(), reference.shape()) << what;
        for (Index i = 0; i < actual.size(); ++i)
            ASSERT_NEAR(actual.data()[i], reference.data()[i], 1e-6) << what << " at flat index " << i;
    };
    expect_close(nn::sincos_position_embedding<T, 2>({3, 5}, 16, V::mae_monai), f.out("monai_3x5"),
                 "monai 2D");
    expect_close(nn::sincos_position_embedding<T, 3>({2, 3, 4}, 24, V::mae_monai), f.out("monai_2x3x4"),
                 "monai 3D");
    expect_close(nn::sincos_position_embedding<T, 2>({3, 5}, 16, V::vit_pytorch), f.out("vit_pytorch_3x5"),
                 "vit-pytorch 2D");
    expect_close(nn::sincos_position_embedding<T, 3>({2, 3, 4}, 20, V::vit_pytorch),
                 f.out("vit_pytorch_2x3x4"), "vit-pytorch 3D");
}

TYPED_TEST(Parity, PositionTableResamplingMatchesTorchvisionTimmMaeAndTrilinear) {
    using T = TypeParam;
    Fixture<T> f("resample");
    const auto table = f.in("table");
    for (const auto& [tag, grid] : {std::pair<std::string, std::array<Index, 2>>{"6x7", {6, 7}},
                                    std::pair<std::string, std::array<Index, 2>>{"3x3", {3, 3}}}) {
        auto resample = [&](nn::Interpolation mode) {
            return nn::resample_pos_embed<T, 2>(table, {4, 4}, grid, 1, mode);
        };
        EXPECT_MATCHES_REFERENCE(resample(nn::Interpolation::bicubic_align_corners),
                                 f.out("torchvision_" + tag));
        EXPECT_MATCHES_REFERENCE(resample(nn::Interpolation::bicubic), f.out("mae_" + tag));
        // timm resamples in float32 whatever the table's type: compare at float tolerance.
        const auto timm = resample(nn::Interpolation::bicubic_antialias);
        const auto timm_ref = f.out("timm_" + tag);
        for (Index i = 0; i < timm.size(); ++i)
            ASSERT_NEAR(timm.data()[i], timm_ref.data()[i], 1e-5 * 4) << "timm " << tag << " at " << i;
    }
    EXPECT_MATCHES_REFERENCE(
        (nn::resample_pos_embed<T, 3>(f.in("table3"), {2, 3, 4}, {3, 5, 2}, 0, nn::Interpolation::linear)),
        f.out("trilinear_3x5x2"));
}

}  // namespace
