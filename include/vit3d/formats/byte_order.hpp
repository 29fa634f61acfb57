#pragma once
// Loading and storing numbers of a given byte order from and to byte buffers, whatever the host's order:
// the file formats of vit3d/io/ (npy, NIfTI) say how their numbers are stored, and may say big-endian.
// Written with shifts, which compilers turn into plain loads and stores where the orders agree.

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace vit3d::detail {

// The unsigned integer type of the same size as V.
template <class V>
using same_size_unsigned_t =
    std::conditional_t<sizeof(V) == 1, std::uint8_t,
                       std::conditional_t<sizeof(V) == 2, std::uint16_t,
                                          std::conditional_t<sizeof(V) == 4, std::uint32_t, std::uint64_t>>>;

template <class U>
U load_unsigned(const std::uint8_t* p, bool big_endian) {
    static_assert(std::is_unsigned_v<U>);
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) {
        const std::size_t byte = big_endian ? sizeof(U) - 1 - i : i;
        v = static_cast<U>(v | static_cast<U>(static_cast<U>(p[i]) << (8 * byte)));
    }
    return v;
}

template <class U>
void store_unsigned(std::uint8_t* p, U v, bool big_endian) {
    static_assert(std::is_unsigned_v<U>);
    for (std::size_t i = 0; i < sizeof(U); ++i) {
        const std::size_t byte = big_endian ? sizeof(U) - 1 - i : i;
        p[i] = static_cast<std::uint8_t>(v >> (8 * byte));
    }
}

// A number of type V (integer or IEEE float) stored at p in the given byte order.
template <class V>
V load_number(const std::uint8_t* p, bool big_endian) {
    static_assert(std::is_arithmetic_v<V> && sizeof(V) <= 8);
    const auto bits = load_unsigned<same_size_unsigned_t<V>>(p, big_endian);
    V v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

template <class V>
void store_number(std::uint8_t* p, V v, bool big_endian) {
    static_assert(std::is_arithmetic_v<V> && sizeof(V) <= 8);
    same_size_unsigned_t<V> bits;
    std::memcpy(&bits, &v, sizeof v);
    store_unsigned(p, bits, big_endian);
}

}  // namespace vit3d::detail
