#pragma once
// The SIMD vocabulary of the hand-written kernels: Eigen's packet of T for the instruction set the
// translation unit is compiled for (16 floats with AVX-512, 8 with AVX, 4 with SSE2, 1 when Eigen does
// not vectorise), and an exponential whose results below the normal range are exactly 0.

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <type_traits>

namespace vit3d::detail {

template <class T>
using Packet = typename Eigen::internal::packet_traits<T>::type;

template <class T>
inline constexpr int packet_width = Eigen::internal::unpacket_traits<Packet<T>>::size;

// Vector registers of the target: 32 with AVX-512, 16 on other x86 targets (Eigen's own estimate).
inline constexpr int vector_registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;

// log of the smallest normal T: below it exp gives 0 here. Eigen's vectorised exp clamps its argument and
// returns about 1e-39 for -inf; a softmax needs exp(-inf) == 0 so that a masked key contributes nothing.
template <class T>
inline const T exp_flush_threshold = std::log(std::numeric_limits<T>::min());

// exp(x) on a packet: a vectorised exponential (Eigen's generic algorithm, within 2 ulp of std::exp over the
// normal range, see tests/nn/test_fused_attention.cpp), with every x below exp_flush_threshold<T> (and -inf)
// mapped to 0.
template <class T>
inline Packet<T> exp_flushed(const Packet<T>& x) {
    using namespace Eigen::internal;
    if constexpr (packet_width<T> == 1) {
        return x < exp_flush_threshold<T> ? T(0) : std::exp(x);
    } else {
        const Packet<T> underflow = pcmp_lt(x, pset1<Packet<T>>(exp_flush_threshold<T>));
        // Eigen's generic range reduction + polynomial for every target: its AVX-512 float pexp is a
        // different, less accurate algorithm (4.5 ulp measured, against 1 ulp here).
        if constexpr (std::is_same_v<T, float>)
            return pandnot(pexp_float(x), underflow);
        else
            return pandnot(pexp_double(x), underflow);
    }
}

}  // namespace vit3d::detail
