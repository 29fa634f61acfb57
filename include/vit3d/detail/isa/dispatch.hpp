#pragma once
// Chooses the kernel variant for a call: with_kernels(isa, f) calls f with the Kernels type of that
// instruction-set level (detail/isa/kernels.inc), e.g.
//     with_kernels(active_isa(), [&](auto kernels) { decltype(kernels)::template gemm<float>(...); });
// Levels that are not compiled into this translation unit (see core/cpu.hpp) fall to the generic variant;
// active_isa() never asks for one.

#include "vit3d/core/cpu.hpp"
#include "vit3d/detail/isa/simd_avx512.hpp"
#include "vit3d/detail/isa/simd_generic.hpp"

namespace vit3d::detail {

using GenericKernels = VIT3D_GENERIC_ISA_NAMESPACE::Kernels;

template <class F>
decltype(auto) with_kernels(Isa isa, F&& f) {
    switch (isa) {
#if VIT3D_HAS_AVX512_VARIANT
        case Isa::avx512:
            return f(isa_avx512::Kernels{});
#endif
#if VIT3D_HAS_AVX2_VARIANT
        case Isa::avx2:
            return f(isa_avx2::Kernels{});
#endif
        default:
            return f(GenericKernels{});
    }
}

// The register block the variant for `isa` uses for T.
template <class T>
KernelShape kernel_shape(Isa isa) {
    return with_kernels(isa, [](auto kernels) { return decltype(kernels)::template shape<T>(); });
}

}  // namespace vit3d::detail
