#pragma once
// A model configuration as the JSON object of a weights file's "config", both ways, from the config's field
// list (core/fields.hpp): each field by its C++ name, integers and numbers checked against the field's
// range, enumerators by name (listing the valid names in errors), sizes as arrays of their fixed length,
// lists as arrays of any length. Reading requires every field (but those marked may_be_absent, which keep
// their defaults when absent) and allows no other.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
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

// The smallest integer a range allows.
inline Index smallest_integer(FieldRange range) {
    return range == FieldRange::positive       ? 1
           : range == FieldRange::non_negative ? 0
                                               : std::numeric_limits<Index>::min();
}

template <class T>
struct IsIndexArray : std::false_type {};
template <std::size_t N>
struct IsIndexArray<std::array<Index, N>> : std::true_type {};

// The value of one field, checked as its type and range say.
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <class V>
V read_field_value(JsonFields& f, const std::string& key, FieldRange range) {
    if constexpr (IsOptional<V>::value) {
        if (f.is_null(key)) return std::nullopt;
        return read_field_value<typename V::value_type>(f, key, range);
    } else if constexpr (std::is_same_v<V, std::string>) {
        return f.string(key);
    } else if constexpr (std::is_same_v<V, std::vector<double>>) {
        return f.numbers(key, 0);
    } else if constexpr (std::is_same_v<V, bool>) {
        return f.boolean(key);
    } else if constexpr (std::is_enum_v<V>) {
        return read_enum<V>(f, key);
    } else if constexpr (std::is_same_v<V, Index>) {
        return f.integer(key, smallest_integer(range));
    } else if constexpr (std::is_same_v<V, double>) {
        const double value = f.number(key);
        if (range == FieldRange::positive && !(value > 0)) f.fail(key, "a positive number", f.value(key));
        if (range == FieldRange::non_negative && !(value >= 0))
            f.fail(key, "a non-negative number", f.value(key));
        return value;
    } else if constexpr (std::is_same_v<V, std::vector<Index>>) {
        return f.integers(key, 0, smallest_integer(range));
    } else {
        static_assert(IsIndexArray<V>::value, "a config field of a type JSON does not hold");
        const std::vector<Index> values = f.integers(key, std::tuple_size_v<V>, smallest_integer(range));
        V out{};
        std::copy(values.begin(), values.end(), out.begin());
        return out;
    }
}

template <class V>
nlohmann::json field_value_json(const V& value) {
    if constexpr (IsOptional<V>::value) {
        return value ? field_value_json(*value) : nlohmann::json(nullptr);
    } else if constexpr (std::is_enum_v<V>) {
        return enum_name(value);
    } else if constexpr (IsIndexArray<V>::value) {
        return std::vector<Index>(value.begin(), value.end());
    } else {
        return value;
    }
}

// A Config from its JSON object (`where` starts every message): every field of its list required (a field
// that may be absent keeps its default), and no other allowed.
template <class Config>
Config config_from_json(const nlohmann::json& json, const std::string& where) {
    JsonFields f(json, where, "config");
    Config config;
    config.visit_fields([&](const auto& field) {
        using V = std::remove_reference_t<decltype(field.value)>;
        if (field.optional && !f.has(field.name)) return;
        field.value = read_field_value<V>(f, field.name, field.range);
    });
    f.finish();
    return config;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The JSON object of a configuration: every field of its list by name.
template <class Config>
nlohmann::json config_json(const Config& config) {
    nlohmann::json json = nlohmann::json::object();
    config.visit_fields([&](const auto& field) { json[field.name] = detail::field_value_json(field.value); });
    return json;
}

}  // namespace vit3d::io
