#pragma once
// The built-in key maps, one header per model family, and a look-up by name.

#include "vit3d/io/key_maps/ct_encoder.hpp"
#include "vit3d/io/key_maps/huggingface.hpp"
#include "vit3d/io/key_maps/monai.hpp"
#include "vit3d/io/key_maps/reg2rg.hpp"
#include "vit3d/io/key_maps/timm.hpp"
#include "vit3d/io/key_maps/torch_nn.hpp"
#include "vit3d/io/key_maps/torchvision.hpp"
#include "vit3d/io/key_maps/vit3d.hpp"
#include "vit3d/io/key_maps/vit_pytorch.hpp"

#include <string>
#include <utility>
#include <vector>

namespace vit3d::io::key_maps {

// The built-in map of a family by its name ("torchvision", "timm", "vit3d", "vit_pytorch", "monai",
// "reg2rg", "torch_mha", "torch_encoder_layer", "ct_encoder", "transformers_..."), as self-describing files
// and Hugging Face folders name it; nullptr if none.
inline const KeyMap* find(const std::string& name) {
    static const std::pair<const char*, const KeyMap& (*)()> maps[] = {
        {"torchvision", &torchvision},
        {"timm", &timm},
        {"vit3d", &vit3d},
        {"vit_pytorch", &vit_pytorch},
        {"monai", &monai},
        {"reg2rg", &reg2rg},
        {"torch_mha", &torch_mha},
        {"torch_encoder_layer", &torch_encoder_layer},
        {"ct_encoder", &ct_encoder},
        {"transformers_vit", &transformers_vit},
        {"transformers_deit_distilled", &transformers_deit_distilled},
        {"transformers_clip", &transformers_clip},
        {"transformers_siglip", &transformers_siglip}};
    for (const auto& [map_name, map] : maps)
        if (name == map_name) return &map();
    return nullptr;
}

// Their names, for messages.
inline std::string names() {
    return "torchvision, timm, vit3d, vit_pytorch, monai, reg2rg, torch_mha, torch_encoder_layer, "
           "ct_encoder, "
           "transformers_vit, transformers_deit_distilled, transformers_clip, transformers_siglip";
}

}  // namespace vit3d::io::key_maps
