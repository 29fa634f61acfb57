#pragma once
// MONAI's monai.networks.nets.ViT (patch embedding "conv" or "perceptron", classification head with or
// without its Tanh).

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& monai() {
    static const KeyMap map(
        "monai", {{R"(^patch_embedding\.patch_embeddings\.1\.)", "patch_embed.proj."},  // perceptron
                  {R"(^patch_embedding\.patch_embeddings\.)", "patch_embed.proj."},     // conv
                  {R"(^patch_embedding\.position_embeddings$)", "pos_embed"},
                  {R"(^blocks\.(\d+)\.attn\.out_proj\.)", "blocks.$1.attn.proj."},
                  {R"(^blocks\.(\d+)\.mlp\.linear1\.)", "blocks.$1.mlp.fc1."},
                  {R"(^blocks\.(\d+)\.mlp\.linear2\.)", "blocks.$1.mlp.fc2."},
                  // MONAI 1.6 keeps norm_cross_attn in the state_dict even when cross-attention is off.
                  {R"(^blocks\.(\d+)\.(norm_cross_attn|cross_attn)\..*)", ""},
                  {R"(^classification_head\.0\.)", "head."},                 // Linear + Tanh
                  {R"(^classification_head\.(weight|bias)$)", "head.$1"}});  // Linear (no post_activation)
    return map;
}

}  // namespace vit3d::io::key_maps
