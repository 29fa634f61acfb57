#pragma once
// The SIMD vocabulary of the hand-written kernels: Eigen's packet of T for the instruction set the
// translation unit is compiled for (16 floats with AVX-512, 8 with AVX, 4 with SSE2, 1 when Eigen does
// not vectorise), and an exponential whose results below the normal range are exactly 0.

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <type_traits>

// Eigen's SSE/AVX packet types are vector types with attributes; naming them as template arguments (as
// unpacket_traits<Packet<T>> does) makes GCC warn that the attributes are ignored, which is harmless.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

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

// 2^x on a packet for the softmax, whose arguments lie in [-inf, 0]: every x below -126 (the normal range's
// end for float) gives exactly 0. float packets: x = n + r with n = round(x), r in [-1/2, 1/2], 2^r from a
// degree-6 polynomial fitted for relative error (1.0e-7 evaluated in float, i.e. within 2 ulp: see
// tests/nn/test_fused_attention.cpp), and n added to its exponent field. About half the instructions of a
// general exp, which matters because the fused attention evaluates one per score. Other types go through
// exp_flushed(x ln 2).
template <class T>
inline Packet<T> exp2_flushed(const Packet<T>& x) {
    using namespace Eigen::internal;
    using P = Packet<T>;
    if constexpr (std::is_same_v<T, float> && packet_width < T >> 1) {
        using PI = typename unpacket_traits<P>::integer_packet;
        const P lowest = pset1<P>(-126.0f);
        const P underflow = pcmp_lt(x, lowest);
        const P clamped = pmax(x, lowest);  // Eigen's pmax keeps a NaN x; below -126 masked by `underflow`
        // n = round(clamped), ties to even, by adding and subtracting 1.5 * 2^23: the sum's low mantissa bits
        // hold n, and its bits shifted left by 23 are n << 23 (bits(1.5 * 2^23) << 23 is 0 modulo 2^32).
        const P magic = pset1<P>(12582912.0f);
        const P shifted = padd(clamped, magic);
        const P n = psub(shifted, magic);
        const P r = psub(clamped, n);
        P p = pset1<P>(1.5345789e-4f);
        p = pmadd(p, r, pset1<P>(1.3399929e-3f));
        p = pmadd(p, r, pset1<P>(9.6184891e-3f));
        p = pmadd(p, r, pset1<P>(5.5503286e-2f));
        p = pmadd(p, r, pset1<P>(2.4022646e-1f));
        p = pmadd(p, r, pset1<P>(6.9314718e-1f));
        p = pmadd(p, r, pset1<P>(1.0f));
        // p * 2^n by adding n to p's exponent field: exact, as the product is normal (p >= 2^-1/2, and
        // n = -126 only when r >= 0, i.e. p >= 1).
        const PI exponent = plogical_shift_left<23>(preinterpret<PI>(shifted));
        return pandnot(preinterpret<P>(padd(preinterpret<PI>(p), exponent)), underflow);
    } else if constexpr (std::is_same_v<T, float>) {
        return x < T(-126) ? T(0) : std::exp2(x);
    } else {
        return exp_flushed<T>(pmul(x, pset1<P>(T(0.693147180559945309417232121458176568L))));
    }
}

}  // namespace vit3d::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
