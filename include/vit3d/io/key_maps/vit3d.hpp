#pragma once
// vit3d's own parameter names, as visit_parameters gives them (timm's scheme: patch_embed.proj, cls_token,
// pos_embed, blocks.{i}.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2, norm, head_norm, head):
// nothing to rename.

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& vit3d() {
    static const KeyMap map("vit3d", {});
    return map;
}

}  // namespace vit3d::io::key_maps
