#pragma once
// The float activations, a vector at a time. The exact (erf) GELU through Eigen's rational erf (a few ulp
// on [-4, 4], exactly +-1 outside, where float's erf is +-1 too) instead of the scalar double erf, which
// dominated whole-model time; within 3e-7 * max(1, |x|) of the exact GELU (tests/nn/test_layers.cpp). The
// sigmoid family (SiLU, QuickGELU, tanh-GELU, sigmoid) through the softmax's exp2: the scalar tanh-GELU
// took 135 ms of a SigLIP-B/16 forward's ~300.

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/detail/isa/dispatch.hpp"

namespace vit3d::detail {

// x[i] = 0.5 x[i] (1 + erf(x[i] / sqrt(2))) for i < n, in place, with the variant for `isa` (the same
// rational erf in every variant: detail/isa/kernels.inc).
inline void gelu_inplace(float* x, Index n, Isa isa = active_isa()) {
    with_kernels(isa, [&](auto kernels) { decltype(kernels)::gelu(x, n); });
}

// x[i] = x[i] * sigmoid(alpha x[i]) for i < n, in place (SiLU: alpha 1, QuickGELU: 1.702), a vector at a
// time through the softmax's exp2 (within a few ulp of the double computation).
inline void swish_inplace(float* x, Index n, float alpha, Isa isa = active_isa()) {
    with_kernels(isa, [&](auto kernels) { decltype(kernels)::swish(x, n, alpha); });
}

// The tanh-approximated GELU (torch's approximate="tanh") for i < n, in place, as x sigmoid(2u) with u the
// tanh's argument, through the same exp2.
inline void gelu_tanh_inplace(float* x, Index n, Isa isa = active_isa()) {
    with_kernels(isa, [&](auto kernels) { decltype(kernels)::gelu_tanh(x, n); });
}

// x[i] = sigmoid(x[i]) for i < n, in place, through the same exp2.
inline void sigmoid_inplace(float* x, Index n, Isa isa = active_isa()) {
    with_kernels(isa, [&](auto kernels) { decltype(kernels)::sigmoid(x, n); });
}

}  // namespace vit3d::detail
