#pragma once
// The neural-network modules: every module is a struct of named parameters plus a const forward.

#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/anatomical_encoder.hpp"
#include "vit3d/nn/attention.hpp"
#include "vit3d/nn/encoder_block.hpp"
#include "vit3d/nn/hybrid_block.hpp"
#include "vit3d/nn/layer_norm.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/mlp.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/patch_embed.hpp"
#include "vit3d/nn/pos_embed.hpp"
#include "vit3d/nn/region_aware_attention.hpp"
#include "vit3d/nn/resample.hpp"
#include "vit3d/nn/scaled_dot_product_attention.hpp"
#include "vit3d/nn/slice_aware_attention.hpp"
#include "vit3d/nn/slice_bias.hpp"
