#pragma once
// einops-style rearrange / reduce / repeat with einops' pattern language.

#include "vit3d/einops/pattern.hpp"
#include "vit3d/einops/rearrange.hpp"
#include "vit3d/einops/recipe.hpp"
#include "vit3d/einops/reduce.hpp"
#include "vit3d/einops/repeat.hpp"
