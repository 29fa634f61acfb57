#pragma once
// Compiler plumbing of the per-ISA kernel variants: the pragmas that compile a stretch of code for a given
// target whatever the translation unit's flags (GCC's `#pragma GCC target`, Clang's `#pragma clang
// attribute`, both applying to every function, template and lambda defined in the stretch), the namespace of
// the generic variant, and a loop-unrolling pragma that holds at -O2 as at -O3.

#include <Eigen/Core>

#include "vit3d/core/cpu.hpp"

#if defined(__clang__)
#define VIT3D_TARGET_BEGIN(features) \
    _Pragma(VIT3D_STRINGIFY(clang attribute push(__attribute__((target(features))), apply_to = function)))
#define VIT3D_TARGET_END _Pragma("clang attribute pop")
#elif defined(__GNUC__)
#define VIT3D_TARGET_BEGIN(features) \
    _Pragma("GCC push_options") _Pragma(VIT3D_STRINGIFY(GCC target(features)))
#define VIT3D_TARGET_END _Pragma("GCC pop_options")
#endif
#define VIT3D_STRINGIFY(x) #x

// The register blocks are unrolled by the compiler on request, not only when its -O3 heuristics agree: at -O2
// GCC 12 keeps the accumulators of a rolled block in memory, which costs half the speed.
#if defined(__GNUC__) || defined(__clang__)
#define VIT3D_UNROLL _Pragma("GCC unroll 32")
#else
#define VIT3D_UNROLL
#endif

// The generic variant is compiled for whatever the flags give, so its code differs between translation units
// built with different flags; its namespace carries that level, so that the linker never merges the copy of a
// -march=native unit into a plainly built one (numpy#25274 is that crash).
#if defined(EIGEN_VECTORIZE_AVX512)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_avx512
#elif defined(EIGEN_VECTORIZE_AVX2) && defined(EIGEN_VECTORIZE_FMA)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_avx2
#elif defined(EIGEN_VECTORIZE_AVX)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_avx
#elif defined(EIGEN_VECTORIZE_SSE4_1)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_sse4
#elif defined(EIGEN_VECTORIZE_SSE2)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_sse2
#elif defined(EIGEN_VECTORIZE_NEON)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_neon
#elif defined(EIGEN_VECTORIZE)
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_vector
#else
#define VIT3D_GENERIC_ISA_NAMESPACE isa_generic_scalar
#endif
