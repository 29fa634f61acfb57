#pragma once
// The compiled part of vit3d::io: load_model's float and double instances (core/instances.hpp), with every
// model kind, the JSON reader and the key maps they need. A program that loads models includes this header
// in exactly one of its source files, next to vit3d/implementation.hpp:
//     // vit3d_implementation.cpp
//     #include <vit3d/implementation.hpp>
//     #include <vit3d/io/implementation.hpp>
// CMake's vit3d::io target adds it to every target that links it. VIT3D_IMPLEMENTATION_SCALAR restricts it
// to one scalar type, as for the core.

#include "vit3d/core/instances.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/io/load_model_impl.hpp"

#if !defined(VIT3D_HEADER_ONLY)
VIT3D_DEFINE_INSTANCES(VIT3D_LOAD_MODEL_INSTANCES)
#endif
