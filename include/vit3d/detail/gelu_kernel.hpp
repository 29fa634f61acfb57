#pragma once
// The exact (erf) GELU over a float array, a packet at a time: Eigen's rational erf (a few ulp on [-4, 4],
// exactly +-1 outside, where float's erf is +-1 too) instead of the scalar double erf, which dominated
// whole-model time. Within 3e-7 * max(1, |x|) of the exact GELU (tests/nn/test_layers.cpp).

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/packet_math.hpp"

namespace vit3d::detail {

// x[i] = 0.5 x[i] (1 + erf(x[i] / sqrt(2))) for i < n, in place.
inline void gelu_inplace(float* x, Index n) {
    using namespace Eigen::internal;
    using P = Packet<float>;
    constexpr Index W = packet_width<float>;
    const P half = pset1<P>(0.5f), one = pset1<P>(1.0f), inv_sqrt2 = pset1<P>(0.70710678118654752440f);
    Index i = 0;
    for (; i + W <= n; i += W) {
        const P v = ploadu<P>(x + i);
        const P erf = generic_fast_erf_float(pmul(v, inv_sqrt2));
        pstoreu(x + i, pmul(pmul(half, v), padd(one, erf)));
    }
    for (; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + generic_fast_erf_float(x[i] * 0.70710678118654752440f));
}

}  // namespace vit3d::detail
