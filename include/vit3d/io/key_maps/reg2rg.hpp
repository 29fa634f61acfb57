#pragma once
// The Reg2RG / RadFM ViT3D: PreNorm wrappers (".fn."), factorized learned 3D positions.

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& reg2rg() {
    static const KeyMap map("reg2rg",
                            {{R"(^to_patch_embedding\.1\.)", "patch_embed.norm_in."},
                             {R"(^to_patch_embedding\.2\.)", "patch_embed.proj."},
                             {R"(^to_patch_embedding\.3\.)", "patch_embed.norm_out."},
                             {R"(^pos_embedding\.)", "pos_embed."},
                             {R"(^transformer\.layers\.(\d+)\.0\.norm\.)", "blocks.$1.norm1."},
                             {R"(^transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.)", "blocks.$1.attn.qkv."},
                             {R"(^transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.)", "blocks.$1.attn.proj."},
                             {R"(^transformer\.layers\.(\d+)\.1\.norm\.)", "blocks.$1.norm2."},
                             {R"(^transformer\.layers\.(\d+)\.1\.fn\.net\.0\.)", "blocks.$1.mlp.fc1."},
                             {R"(^transformer\.layers\.(\d+)\.1\.fn\.net\.3\.)", "blocks.$1.mlp.fc2."}});
    return map;
}

}  // namespace vit3d::io::key_maps
