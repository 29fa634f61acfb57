#pragma once
// torchvision.models.VisionTransformer (vit_b_16, vit_b_32, vit_l_16, ...).

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& torchvision() {
    static const KeyMap map(
        "torchvision",
        {{R"(^class_token$)", "cls_token"},
         {R"(^conv_proj\.)", "patch_embed.proj."},
         {R"(^encoder\.pos_embedding$)", "pos_embed"},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.)", "blocks.$1.norm1."},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.)", "blocks.$1.norm2."},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_)", "blocks.$1.attn.qkv."},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.)", "blocks.$1.attn.proj."},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.)", "blocks.$1.mlp.fc1."},
         {R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.)", "blocks.$1.mlp.fc2."},
         {R"(^encoder\.ln\.)", "norm."},
         {R"(^heads\.head\.)", "head."}});
    return map;
}

}  // namespace vit3d::io::key_maps
