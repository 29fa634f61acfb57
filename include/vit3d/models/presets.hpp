#pragma once
// Named configurations of reference architectures.

#include "vit3d/models/ct_encoder.hpp"
#include "vit3d/models/vision_transformer.hpp"

namespace vit3d::models {

// torchvision.models.vit_b_16 / vit_b_32 / vit_l_16: 224x224 RGB, conv patch embedding, class token,
// learned positions covering it, pre-norm blocks with LayerNorm eps 1e-6, final norm, cls pooling.
inline VisionTransformerConfig<2> torchvision_vit(Index patch, Index dim, Index depth, Index heads,
                                                  Index mlp_dim, Index num_classes) {
    VisionTransformerConfig<2> c;
    c.input_size = {224, 224};
    c.patch_size = {patch, patch};
    c.dim = dim;
    c.depth = depth;
    c.heads = heads;
    c.mlp_dim = mlp_dim;
    c.num_classes = num_classes;
    return c;
}
inline VisionTransformerConfig<2> vit_b_16(Index num_classes = 1000) {
    return torchvision_vit(16, 768, 12, 12, 3072, num_classes);
}
inline VisionTransformerConfig<2> vit_b_32(Index num_classes = 1000) {
    return torchvision_vit(32, 768, 12, 12, 3072, num_classes);
}
inline VisionTransformerConfig<2> vit_l_16(Index num_classes = 1000) {
    return torchvision_vit(16, 1024, 24, 16, 4096, num_classes);
}

// The Reg2RG / RadFM 3D ViT encoder on a [B, 3, 256, 256, 64] volume (depth last) with 16x16x4 patches:
// 16 x 16 x 16 = 4,096 tokens of width 768. Patch embedding LayerNorm -> Linear -> LayerNorm on
// (p1 p2 pf c) features, factorized learned positions, 8 heads of 64 (inner 512), MLP 2048, pre-norm
// with eps 1e-5, no qkv bias, no class token, no final norm, no pooling and no head: the output is the
// token sequence.
inline VisionTransformerConfig<3> reg2rg_vit3d() {
    VisionTransformerConfig<3> c;
    c.input_size = {256, 256, 64};
    c.patch_size = {16, 16, 4};
    c.channels = 3;
    c.dim = 768;
    c.depth = 12;
    c.heads = 8;
    c.head_dim = 64;
    c.mlp_dim = 2048;
    c.num_classes = 0;
    c.class_token = false;
    c.pool = Pooling::none;
    c.pos_embed = PosEmbedKind::factorized3d;
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.eps = 1e-5;
    c.qkv_bias = false;
    c.final_norm = false;
    return c;
}

// MONAI's ViT (monai.networks.nets.ViT, classification=True, proj_type="conv") in its ViT-B size on a
// single-channel [B, 1, 256, 256, 64] CT volume with 16x16x4 patches: 4,096 patch tokens plus the class
// token = 4,097. Positions cover the patches only (the class token is prepended after), LayerNorm eps 1e-5,
// no qkv bias, and a Tanh after the classification Linear, as MONAI builds it.
inline VisionTransformerConfig<3> monai_vit_b_3d(Index num_classes = 2) {
    VisionTransformerConfig<3> c;
    c.input_size = {256, 256, 64};
    c.patch_size = {16, 16, 4};
    c.channels = 1;
    c.num_classes = num_classes;
    c.pos_embed_covers_class_token = false;
    c.eps = 1e-5;
    c.qkv_bias = false;
    c.head_activation = nn::Activation::tanh;
    return c;
}

// timm's vit_small_patch14_reg4_dinov2 (DINOv2 ViT-S/14 with 4 registers) at 518 x 518: 37 x 37 = 1,369
// patches, a class token and 4 registers, 1,374 tokens of width 384 in 12 blocks of 6 heads; LayerScale,
// positions added to the patches only (no_embed_class), no head. It runs at other sizes too (dynamic_size).
inline VisionTransformerConfig<2> dinov2_vit_s14_reg4() {
    VisionTransformerConfig<2> c;
    c.input_size = {518, 518};
    c.patch_size = {14, 14};
    c.dim = 384;
    c.heads = 6;
    c.mlp_dim = 1536;
    c.num_classes = 0;
    c.pos_embed_covers_class_token = false;
    c.reg_tokens = 4;
    c.layer_scale = true;
    c.dynamic_size = true;
    return c;
}

// timm's vit_base_patch16_siglip_256 (SigLIP ViT-B/16) at 256 x 256: 256 patch tokens, no class token,
// the attention-pooling head (timm's map), no classifier. It runs at other sizes too (dynamic_size).
inline VisionTransformerConfig<2> siglip_vit_b16_256() {
    VisionTransformerConfig<2> c;
    c.input_size = {256, 256};
    c.patch_size = {16, 16};
    c.num_classes = 0;
    c.class_token = false;
    c.pool = Pooling::attention;
    c.dynamic_size = true;
    return c;
}

// timm's eva02_base_patch14_224 (EVA-02 ViT-B/14, the MIM-pretrained encoder) at 224 x 224: 16 x 16 patches
// and a class token, 257 tokens of width 768 in 12 blocks; rotary position embedding on queries and keys
// (timm's RotaryEmbeddingCat, reference grid 16 x 16), separate q, k, v projections with no key bias, SwiGLU
// (hidden 2048) with a norm before fc2, mean pooling with a norm, no head. It runs at other sizes too.
inline VisionTransformerConfig<2> eva02_vit_b14_224() {
    VisionTransformerConfig<2> c;
    c.input_size = {224, 224};
    c.patch_size = {14, 14};
    c.mlp_dim = 2048;
    c.num_classes = 0;
    c.pool = Pooling::mean;
    c.activation = nn::Activation::silu;
    c.final_norm = false;
    c.head_norm = true;
    c.mlp = nn::MlpKind::swiglu;
    c.mlp_norm = true;
    c.qkv_split = true;
    c.k_bias = false;
    c.rope = true;
    c.rope_ref_feat_shape = {16, 16};
    c.dynamic_size = true;
    return c;
}

// The anatomy-aware CT encoder at the size its authors built: [B, 1, 64, 512, 512] volumes, 4x16x16 patches
// (16 x 32 x 32 = 16,384 patch tokens + a class token), width 768, 12 hybrid blocks of 12 heads, MLP 3072,
// 32 slice-distance levels, 20 anatomical regions, factorized learned 3D positions, cls pooling.
inline CTEncoderConfig ct_encoder() { return CTEncoderConfig{}; }

// The same encoder on [B, 1, 64, 256, 256] volumes: 16 x 16 x 16 = 4,096 patch tokens + a class token.
inline CTEncoderConfig ct_encoder_256() {
    CTEncoderConfig c;
    c.input_size = {64, 256, 256};
    return c;
}

}  // namespace vit3d::models
