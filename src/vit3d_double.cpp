// vit3d's kernels, modules and models for double, compiled once per project
// (include/vit3d/core/instances.hpp).
#define VIT3D_IMPLEMENTATION_SCALAR double
#include <vit3d/implementation.hpp>
