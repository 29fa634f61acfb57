#pragma once
// The 16-bit float formats of checkpoint files, IEEE binary16 ("F16", half) and bfloat16 ("BF16"), as bit
// patterns: exact decoding to float, and encoding from float or double rounded to nearest, ties to even.
// Done on the bits rather than with _Float16 or F16C instructions, so that every compiler gives the same
// bits. A float argument converts to double exactly, so one double routine rounds both correctly (going
// through float first would round twice). f32_from_double is the same rounding to float, defined (unlike
// static_cast<float>) for doubles beyond the float range.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace vit3d::io {}  // namespace vit3d::io

namespace vit3d::detail {

inline std::uint32_t float_bits(float x) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}
inline float float_from_bits(std::uint32_t b) {
    float x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}
inline std::uint64_t double_bits(double x) {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}
inline double double_from_bits(std::uint64_t b) {
    double x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}

// x / 2^shift rounded to nearest, ties to even; 1 <= shift <= 63.
inline std::uint64_t round_shift_right(std::uint64_t x, int shift) {
    const std::uint64_t quotient = x >> shift;
    const std::uint64_t remainder = x & ((std::uint64_t(1) << shift) - 1);
    const std::uint64_t half = std::uint64_t(1) << (shift - 1);
    return quotient + ((remainder > half || (remainder == half && (quotient & 1))) ? 1 : 0);
}

// The bit pattern (sign, ExpBits-bit biased exponent, MantBits-bit mantissa) of the IEEE-style binary
// format nearest to x, ties to even; out-of-range values become infinities, NaNs stay NaNs (quiet, with
// the sign and the top of the payload kept). Formats narrower than double only.
template <int ExpBits, int MantBits>
std::uint64_t round_double_to_format(double x) {
    static_assert(ExpBits >= 2 && ExpBits < 11 && MantBits >= 1 && MantBits < 52,
                  "a format narrower than double");
    constexpr int bias = (1 << (ExpBits - 1)) - 1;
    constexpr std::uint64_t infinity = ((std::uint64_t(1) << ExpBits) - 1) << MantBits;

    const std::uint64_t bits = double_bits(x);
    const std::uint64_t sign = (bits >> 63) << (ExpBits + MantBits);
    const int biased_exponent = static_cast<int>((bits >> 52) & 0x7FF);
    const std::uint64_t mantissa = bits & ((std::uint64_t(1) << 52) - 1);

    if (biased_exponent == 0x7FF) {
        if (mantissa == 0) return sign | infinity;
        return sign | infinity | (std::uint64_t(1) << (MantBits - 1)) | (mantissa >> (52 - MantBits));
    }
    // Zeros and double subnormals (< 2^-1022) lie below half the smallest subnormal of every narrower
    // format, so they round to zero.
    if (biased_exponent == 0) return sign;

    const int exponent = biased_exponent - 1023;  // x = significand * 2^(exponent - 52)
    const std::uint64_t significand = mantissa | (std::uint64_t(1) << 52);
    if (exponent > bias) return sign | infinity;
    if (exponent >= 1 - bias) {
        // Normal range. The rounded significand keeps its leading 1, which lands in the exponent field:
        // hence bias - 1. A carry out of the mantissa bumps the exponent (up to infinity), as it should.
        return sign | ((static_cast<std::uint64_t>(exponent + bias - 1) << MantBits) +
                       round_shift_right(significand, 52 - MantBits));
    }
    // Subnormal range: in units of the smallest subnormal, 2^(1 - bias - MantBits). Rounding up to the
    // smallest normal number gives its encoding too.
    const int shift = 52 - MantBits + (1 - bias - exponent);
    if (shift > 53) return sign;  // below half a unit: significand < 2^53
    return sign | round_shift_right(significand, shift);
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The value of an F16 bit pattern; exact (float holds every half value, subnormals included).
inline float f16_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    std::uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) return detail::float_from_bits(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0)
        return detail::float_from_bits(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
    if (mantissa == 0) return detail::float_from_bits(sign);
    // A half subnormal, mantissa * 2^-24, is a float normal: shift the leading 1 up to the implicit bit.
    std::uint32_t float_exponent = 127 - 14;
    while (!(mantissa & 0x400u)) {
        mantissa <<= 1;
        --float_exponent;
    }
    return detail::float_from_bits(sign | (float_exponent << 23) | ((mantissa & 0x3FFu) << 13));
}

// The value of a BF16 bit pattern: bfloat16 is the top half of a float.
inline float bf16_to_float(std::uint16_t b) {
    return detail::float_from_bits(static_cast<std::uint32_t>(b) << 16);
}

// The F16 bit pattern nearest to x (ties to even); beyond +-65504 rounds to infinity from 65520 on.
inline std::uint16_t f16_from_double(double x) {
    return static_cast<std::uint16_t>(detail::round_double_to_format<5, 10>(x));
}

// The BF16 bit pattern nearest to x (ties to even).
inline std::uint16_t bf16_from_double(double x) {
    return static_cast<std::uint16_t>(detail::round_double_to_format<8, 7>(x));
}

// The float nearest to x (ties to even). Unlike static_cast<float>, defined for doubles beyond the float
// range, which round to infinity or to the largest float.
inline float f32_from_double(double x) {
    if (std::fabs(x) <= static_cast<double>(std::numeric_limits<float>::max())) return static_cast<float>(x);
    return detail::float_from_bits(static_cast<std::uint32_t>(detail::round_double_to_format<8, 23>(x)));
}

}  // namespace vit3d::io
