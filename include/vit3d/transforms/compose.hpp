#pragma once
// A chain of MONAI-style transforms, as a weights file states the preprocessing of a volume: an ordered list
// of named steps with MONAI's class and parameter names (docs/inputs.md: "Volumes as the model was
// trained"), applied in order to a SpatialImage. The list of step types is written once, in Transform.

#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "vit3d/transforms/crop_pad.hpp"
#include "vit3d/transforms/intensity.hpp"
#include "vit3d/transforms/orientation.hpp"
#include "vit3d/transforms/spacing.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::transforms {

// One step: each alternative has a static `name` (MONAI's class name), its fields (list_fields) and
// operator() on a SpatialImage.
using Transform = std::variant<Orientation, Spacing, ScaleIntensityRange, NormalizeIntensity, CropForeground,
                               SpatialPad, CenterSpatialCrop, ResizeWithPadOrCrop>;

// MONAI's class name of a step.
inline const char* transform_name(const Transform& step) {
    return std::visit([](const auto& s) { return std::decay_t<decltype(s)>::name; }, step);
}

// The steps in order, as MONAI's Compose applies them.
template <class T>
SpatialImage<T> apply(const std::vector<Transform>& steps, SpatialImage<T> image) {
    for (const Transform& step : steps)
        image = std::visit([&](const auto& s) { return s(std::move(image)); }, step);
    return image;
}

}  // namespace vit3d::transforms
