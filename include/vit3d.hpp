#pragma once
// vit3d: Vision Transformers for 2D images and 3D volumes on Eigen. Includes every public header that needs
// nothing but Eigen; the optional parts (vit3d/io/*: safetensors and weight loading, with nlohmann/json)
// are included on their own.

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/einops/einops.hpp"
#include "vit3d/models/models.hpp"
#include "vit3d/nn/nn.hpp"
#include "vit3d/tensor/compare.hpp"
#include "vit3d/tensor/ops.hpp"
#include "vit3d/tensor/print.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/version.hpp"
