#pragma once
// Complete models assembled from vit3d::nn modules.

#include "vit3d/models/ct_encoder.hpp"
#include "vit3d/models/presets.hpp"
#include "vit3d/models/sliding_window.hpp"
#include "vit3d/models/vision_transformer.hpp"
