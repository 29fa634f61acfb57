#pragma once
// Template instances compiled once per program instead of in every translation unit that uses them.
//
// The kernels, modules, models and model loading are templates on the scalar type. Compiling them is most of
// the cost of a translation unit that uses them (the kernels three times over, once per instruction-set
// variant), so their float and double instances are declared `extern template` in the headers and defined
// in the program's implementation translation units: vit3d/implementation.hpp and
// vit3d/io/implementation.hpp, which the CMake targets vit3d::vit3d and vit3d::io add to every target that
// links them (see docs/cmake.md for other build systems). Other scalar types are instantiated where used,
// as before.
//
// Defining VIT3D_HEADER_ONLY for the whole program turns this off: every translation unit then instantiates
// what it uses, as a plain header-only library does, and no implementation translation unit is needed.
//
// A header lists its instances as a macro NAME(X, T) that applies X to the declaration of each instance for
// the scalar type T, declares them with VIT3D_EXTERN_INSTANCES(NAME) at global scope, and is named in the
// implementation header of its component, which defines them with VIT3D_DEFINE_INSTANCES(NAME).

#define VIT3D_EXTERN_INSTANCE(...) extern template __VA_ARGS__;
#define VIT3D_DEFINE_INSTANCE(...) template __VA_ARGS__;

#if defined(VIT3D_HEADER_ONLY)
#define VIT3D_EXTERN_INSTANCES(list)
#else
#define VIT3D_EXTERN_INSTANCES(list) list(VIT3D_EXTERN_INSTANCE, float) list(VIT3D_EXTERN_INSTANCE, double)
#endif

// Used by the implementation headers only: the instances of `list` for float and double, or for
// VIT3D_IMPLEMENTATION_SCALAR alone when the translation unit defines it (so that one translation unit per
// scalar type can compile in parallel).
#if defined(VIT3D_IMPLEMENTATION_SCALAR)
#define VIT3D_DEFINE_INSTANCES(list) list(VIT3D_DEFINE_INSTANCE, VIT3D_IMPLEMENTATION_SCALAR)
#else
#define VIT3D_DEFINE_INSTANCES(list) list(VIT3D_DEFINE_INSTANCE, float) list(VIT3D_DEFINE_INSTANCE, double)
#endif
