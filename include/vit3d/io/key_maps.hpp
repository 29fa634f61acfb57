#pragma once
// The built-in key maps, one header per model family.

#include "vit3d/io/key_maps/ct_encoder.hpp"
#include "vit3d/io/key_maps/monai.hpp"
#include "vit3d/io/key_maps/reg2rg.hpp"
#include "vit3d/io/key_maps/timm.hpp"
#include "vit3d/io/key_maps/torch_nn.hpp"
#include "vit3d/io/key_maps/torchvision.hpp"
#include "vit3d/io/key_maps/vit3d.hpp"
#include "vit3d/io/key_maps/vit_pytorch.hpp"
