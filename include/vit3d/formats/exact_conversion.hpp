#pragma once
// Converting the numbers of a file to the element type a caller asked for. To float or double every value
// converts (rounded to nearest when narrowing, as NumPy's astype does); to an integer type only a value the
// type holds exactly does: integral, finite and in range. The readers check holds_exactly() for every
// element and refuse the file otherwise, so that a label mask read as int16 is the file's labels or an
// error, never a wrapped or truncated value.

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "vit3d/core/message.hpp"
#include "vit3d/formats/float16.hpp"

namespace vit3d::detail {

// Whether integer type T holds the value v (an integer or floating-point number) exactly.
template <class T, class V>
bool holds_exactly(V v) {
    static_assert(std::is_integral_v<T> && std::is_arithmetic_v<V>);
    if constexpr (std::is_floating_point_v<V>) {
        // [lo, hi) with hi = 2^digits, exact in binary floating point, unlike the type's max().
        const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
        const double lo = std::is_signed_v<T> ? -hi : 0.0;
        const double x = static_cast<double>(v);
        return std::isfinite(x) && x == std::trunc(x) && x >= lo && x < hi;
    } else if constexpr (std::is_signed_v<V> == std::is_signed_v<T>) {
        return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
    } else if constexpr (std::is_signed_v<V>) {
        return v >= 0 && static_cast<std::make_unsigned_t<V>>(v) <= std::numeric_limits<T>::max();
    } else {
        return v <= static_cast<std::make_unsigned_t<T>>(std::numeric_limits<T>::max());
    }
}

// v as T. Floating-point T: rounded to nearest (defined for doubles beyond the float range, which become
// infinities). Integer T: only for values with holds_exactly<T>(v).
template <class T, class V>
T convert_number(V v) {
    if constexpr (std::is_same_v<T, float> && std::is_same_v<V, double>) {
        return io::f32_from_double(v);
    } else {
        return static_cast<T>(v);
    }
}

// "int16", "float32", ...: the NumPy name of an element type, for messages.
template <class T>
const char* element_type_name() {
    if constexpr (std::is_same_v<T, float>) return "float32";
    if constexpr (std::is_same_v<T, double>) return "float64";
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        if constexpr (sizeof(T) == 1) return "int8";
        if constexpr (sizeof(T) == 2) return "int16";
        if constexpr (sizeof(T) == 4) return "int32";
        if constexpr (sizeof(T) == 8) return "int64";
    }
    if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
        if constexpr (sizeof(T) == 1) return "uint8";
        if constexpr (sizeof(T) == 2) return "uint16";
        if constexpr (sizeof(T) == 4) return "uint32";
        if constexpr (sizeof(T) == 8) return "uint64";
    }
    return "?";
}

// The element types the readers convert to: float, double and the fixed-width integers (no bool, char or
// long double).
template <class T>
constexpr bool is_readable_element_type_v = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                            (std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                             sizeof(T) <= 8 && !std::is_same_v<T, char>);

// "[lo, hi]" of integer type T, for messages.
template <class T>
std::string integer_range_text() {
    return message("[", +std::numeric_limits<T>::min(), ", ", +std::numeric_limits<T>::max(), "]");
}

}  // namespace vit3d::detail
