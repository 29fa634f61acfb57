#pragma once
// Published volume pipelines as named chains of steps (compose.hpp), for a weights file's
// preprocess.preset and vit3d-infer --preset. Each is written from the authors' own preprocessing code, named
// in `source`; docs/inputs.md ("Presets") lists them.

#include <stdexcept>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/transforms/compose.hpp"

namespace vit3d::transforms {

struct Preset {
    const char* name;
    const char* source;  // where the pipeline is published
    const char* note;    // what the model then expects
    std::vector<Transform> steps;
};

inline const std::vector<Preset>& presets() {
    static const std::vector<Preset> all = [] {
        std::vector<Preset> out;
        {
            Preset merlin{"merlin",
                          "StanfordMIMI/Merlin, merlin/data/monai_transforms.py (ImageTransforms)",
                          "chest/abdomen CT, RAS, 1.5 x 1.5 x 3 mm, HU -1000..1000 -> 0..1, 224 x 224 x 160",
                          {}};
            Spacing spacing;
            spacing.pixdim = {1.5, 1.5, 3.0};
            ScaleIntensityRange window;
            window.a_min = -1000, window.a_max = 1000, window.b_min = 0.0, window.b_max = 1.0,
            window.clip = true;
            SpatialPad pad;
            pad.spatial_size = {224, 224, 160};
            CenterSpatialCrop crop;
            crop.roi_size = {224, 224, 160};
            merlin.steps = {Orientation{}, spacing, window, pad, crop};
            out.push_back(merlin);
        }
        {
            Preset unetr{
                "monai_unetr_btcv",
                "Project-MONAI/tutorials, 3d_segmentation/unetr_btcv_segmentation_3d.ipynb "
                "(val_transforms)",
                "abdominal CT, 1.5 x 1.5 x 2 mm then RAS, HU -175..250 -> 0..1, cropped to the body; the "
                "size varies, so the model runs over sliding windows of 96 x 96 x 96",
                {}};
            Spacing spacing;
            spacing.pixdim = {1.5, 1.5, 2.0};
            ScaleIntensityRange window;
            window.a_min = -175, window.a_max = 250, window.b_min = 0.0, window.b_max = 1.0,
            window.clip = true;
            unetr.steps = {spacing, Orientation{}, window, CropForeground{}};
            out.push_back(unetr);
        }
        return out;
    }();
    return all;
}

// "merlin", "monai_unetr_btcv": every preset's name, for messages.
inline std::string preset_names() {
    std::string names;
    for (const Preset& p : presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    return names;
}

// The preset called `name`; std::invalid_argument naming the known ones otherwise.
inline const Preset& preset(const std::string& name) {
    for (const Preset& p : presets())
        if (name == p.name) return p;
    throw std::invalid_argument(message("vit3d::transforms::preset: expected one of ", preset_names(),
                                        ", got ", detail::quoted(name)));
}

}  // namespace vit3d::transforms
