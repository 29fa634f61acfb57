#pragma once
// Reading model configurations from JSON, shared by the model kinds: enumerators by name (listing the valid
// names in errors) and fixed-length size arrays.

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/io/json_fields.hpp"

namespace vit3d::detail {

// An enumerator by its name in the enum's table (core/enum_names.hpp).
template <class Enum>
Enum read_enum(JsonFields& f, const std::string& key) {
    const std::string name = f.string(key);
    if (const std::optional<Enum> value = enum_from_name<Enum>(name)) return *value;
    throw io_error(message(f.where(), f.child(key), ": expected one of ", enum_name_list<Enum>(), ", got ",
                           quoted(name)));
}

template <std::size_t N>
std::array<Index, N> read_sizes(JsonFields& f, const std::string& key) {
    const std::vector<Index> v = f.integers(key, N, 1);
    std::array<Index, N> out{};
    std::copy(v.begin(), v.end(), out.begin());
    return out;
}

}  // namespace vit3d::detail
