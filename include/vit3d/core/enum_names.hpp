#pragma once
// The names of an enum's enumerators: one table per enum, read both ways (the name of a value; the value of a
// name, with the valid names to list when a name is unknown). Model descriptions, environment variables,
// command-line options and messages all go through the table, so a name is written once.
//
// An enum gets its table from a function enum_names(E) declared next to it, in its own namespace (found by
// argument-dependent lookup), that returns enum_table<E>(...):
//
//     enum class Pooling { cls, mean, none };
//     constexpr auto enum_names(Pooling) {
//         return enum_table<Pooling>({{Pooling::cls, "cls"}, {Pooling::mean, "mean"}, {Pooling::none,
//         "none"}});
//     }
//
// Then enum_name(Pooling::mean) is "mean", enum_from_name<Pooling>("mean") is Pooling::mean, and
// message(...) (core/message.hpp) writes a Pooling by its name.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace vit3d {

template <class Enum>
struct EnumName {
    Enum value;
    const char* name;
};

// The table of an enum, from a braced list of {value, name} pairs.
template <class Enum, std::size_t N>
constexpr std::array<EnumName<Enum>, N> enum_table(const EnumName<Enum> (&entries)[N]) {
    static_assert(std::is_enum_v<Enum>, "enum_table: names are for enumerators");
    std::array<EnumName<Enum>, N> table{};
    for (std::size_t i = 0; i < N; ++i) table[i] = entries[i];
    return table;
}

}  // namespace vit3d

namespace vit3d::detail {

template <class Enum, class = void>
struct HasEnumNames : std::false_type {};
template <class Enum>
struct HasEnumNames<Enum, std::void_t<decltype(enum_names(std::declval<Enum>()))>> : std::true_type {};

}  // namespace vit3d::detail

namespace vit3d {

// Whether Enum has a name table (an enum_names(Enum) next to it).
template <class Enum>
inline constexpr bool has_enum_names = detail::HasEnumNames<Enum>::value;

// The table of Enum: every {value, name} pair, in the order its enum_names lists them.
template <class Enum>
constexpr auto enum_names_of() {
    static_assert(has_enum_names<Enum>, "this enum has no name table: declare enum_names(Enum) next to it");
    return enum_names(Enum{});
}

// The name of `value`; `unnamed` for a value the table lacks (a cast from an out-of-range integer).
template <class Enum>
const char* enum_name(Enum value, const char* unnamed = "?") {
    for (const EnumName<Enum>& entry : enum_names_of<Enum>())
        if (entry.value == value) return entry.name;
    return unnamed;
}

// The enumerator named `name`, if there is one.
template <class Enum>
std::optional<Enum> enum_from_name(std::string_view name) {
    for (const EnumName<Enum>& entry : enum_names_of<Enum>())
        if (name == entry.name) return entry.value;
    return std::nullopt;
}

// Every name of Enum in table order, for messages that list the valid names: each between `quote`s,
// separated by `separator`, the last two by `last_separator` if one is given. The defaults write
// "\"cls\", \"mean\", \"none\""; ("", ", ", " or ") writes "cls, mean or none".
template <class Enum>
std::string enum_name_list(std::string_view quote = "\"", std::string_view separator = ", ",
                           std::string_view last_separator = {}) {
    const auto table = enum_names_of<Enum>();
    std::string out;
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (i > 0) out += i + 1 == table.size() && !last_separator.empty() ? last_separator : separator;
        out += quote;
        out += table[i].name;
        out += quote;
    }
    return out;
}

}  // namespace vit3d
