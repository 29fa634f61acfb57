#pragma once
// timm's VisionTransformer and Eva: vit3d's names are timm's, except the norm before the head under average
// pooling (fc_norm), which vit3d calls head_norm, and Eva's LayerScale factors (gamma_1, gamma_2), which
// vit3d names as VisionTransformer's (ls1.gamma, ls2.gamma).

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& timm() {
    static const KeyMap map("timm", {{R"(^fc_norm\.)", "head_norm."},
                                     {R"(^blocks\.(\d+)\.gamma_1$)", "blocks.$1.ls1.gamma"},
                                     {R"(^blocks\.(\d+)\.gamma_2$)", "blocks.$1.ls2.gamma"}});
    return map;
}

}  // namespace vit3d::io::key_maps
