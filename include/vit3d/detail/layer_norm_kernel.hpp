#pragma once
// LayerNorm of contiguous rows: (x - mean) / sqrt(var + eps) * weight + bias with the biased variance, as
// PyTorch, a vector at a time with the variant for the instruction-set level (detail/isa/kernels.inc). Mean
// and variance of each row are accumulated in double (per-lane sums in T over short blocks, the blocks in
// double, about the row's mean), so that a float row of thousands of values, even with a large common
// offset, stays within 3e-7 of the double computation (tests/nn/test_isa.cpp). Each row is computed alone,
// in an order that depends on its length only: the same row gives the same result in any tensor, on any
// thread count.

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/isa/dispatch.hpp"

namespace vit3d::detail {

// out[r, :] = layer_norm(in[r, :]) for r in [first, last); rows are d elements long.
template <class T>
void layer_norm_rows(const T* in_data, T* out_data, Index first, Index last, Index d, const T* weight,
                     const T* bias, double eps, Isa isa = active_isa()) {
    with_kernels(isa, [&](auto kernels) {
        decltype(kernels)::template layer_norm<T>(in_data, out_data, first, last, d, weight, bias, eps);
    });
}

}  // namespace vit3d::detail

#define VIT3D_LAYER_NORM_KERNEL_INSTANCES(X, T)                                                      \
    X(void vit3d::detail::layer_norm_rows<T>(const T*, T*, vit3d::Index, vit3d::Index, vit3d::Index, \
                                             const T*, const T*, double, vit3d::Isa))
VIT3D_EXTERN_INSTANCES(VIT3D_LAYER_NORM_KERNEL_INSTANCES)
