#pragma once
// lucidrains' vit-pytorch: vit.py, vit_3d.py and simple_vit*.py as released since 1.4 (no PreNorm wrapper).

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& vit_pytorch() {
    static const KeyMap map(
        "vit_pytorch", {{R"(^cls_token$)", "cls_token"},
                        {R"(^pos_embedding$)", "pos_embed"},
                        {R"(^to_patch_embedding\.1\.)", "patch_embed.norm_in."},
                        {R"(^to_patch_embedding\.2\.)", "patch_embed.proj."},
                        {R"(^to_patch_embedding\.3\.)", "patch_embed.norm_out."},
                        {R"(^transformer\.layers\.(\d+)\.0\.norm\.)", "blocks.$1.norm1."},
                        {R"(^transformer\.layers\.(\d+)\.0\.to_qkv\.)", "blocks.$1.attn.qkv."},
                        {R"(^transformer\.layers\.(\d+)\.0\.to_out\.(0\.)?)", "blocks.$1.attn.proj."},
                        {R"(^transformer\.layers\.(\d+)\.1\.net\.0\.)", "blocks.$1.norm2."},
                        {R"(^transformer\.layers\.(\d+)\.1\.net\.1\.)", "blocks.$1.mlp.fc1."},
                        {R"(^transformer\.layers\.(\d+)\.1\.net\.[34]\.)", "blocks.$1.mlp.fc2."},
                        {R"(^transformer\.norm\.)", "norm."},
                        {R"(^mlp_head\.0\.(weight|bias)$)", "head_norm.$1"},  // vit_3d: LayerNorm + Linear
                        {R"(^mlp_head\.1\.)", "head."},
                        {R"(^mlp_head\.(weight|bias)$)", "head.$1"},  // vit.py: Linear
                        {R"(^linear_head\.)", "head."}});
    return map;
}

}  // namespace vit3d::io::key_maps
