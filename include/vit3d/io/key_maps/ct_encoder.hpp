#pragma once
// The anatomy-aware CT encoder's Python reference (tools/ct_encoder_reference.py) names its
// parameters as models::CTEncoder does: nothing to rename.

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& ct_encoder() {
    static const KeyMap map("ct_encoder", {});
    return map;
}

}  // namespace vit3d::io::key_maps
