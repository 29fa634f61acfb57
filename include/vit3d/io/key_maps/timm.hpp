#pragma once
// timm's VisionTransformer: vit3d's names are timm's, except the LayerNorm before the head under average
// pooling (fc_norm), which vit3d calls head_norm.

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& timm() {
    static const KeyMap map("timm", {{R"(^fc_norm\.)", "head_norm."}});
    return map;
}

}  // namespace vit3d::io::key_maps
