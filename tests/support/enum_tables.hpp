#pragma once
// Checks of an enum's name table (core/enum_names.hpp): every enumerator has a name, names and values are
// distinct, and each name reads back as its value.
//
// Whether the table misses an enumerator needs the list of enumerators, which C++17 cannot enumerate. GCC and
// Clang write a declared enumerator by its name in __PRETTY_FUNCTION__ and any other value as a cast
// ("(vit3d::Isa)3"), so a value can be tested for being declared; the checks below scan the values an
// enum's enumerators may take that way.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"

namespace vit3d::test {

#if defined(__GNUC__) || defined(__clang__)
inline constexpr bool can_list_enumerators = true;

// Whether V is a declared enumerator of its enum.
template <auto V>
bool is_declared_enumerator() {
    const std::string_view signature = __PRETTY_FUNCTION__;
    const std::size_t at = signature.find("V = ");
    return at != std::string_view::npos && signature.substr(at + 4, 1) != "(";
}

// The values among V that are declared enumerators of Enum.
template <class Enum, int... V>
std::vector<int> declared_values(std::integer_sequence<int, V...>) {
    std::vector<int> out;
    ((is_declared_enumerator<static_cast<Enum>(V)>() ? out.push_back(V) : void()), ...);
    return out;
}
#else
inline constexpr bool can_list_enumerators = false;

template <class Enum, int... V>
std::vector<int> declared_values(std::integer_sequence<int, V...>) {
    return {};
}
#endif

// Checks Enum's table. The values `candidates` are scanned for enumerators without a name: every enumerator
// of Enum must be one of them.
template <class Enum, int... V>
void expect_complete_enum_table(std::integer_sequence<int, V...> candidates) {
    const std::vector<int> scanned{V...};
    std::set<std::string> names;
    std::set<int> values;
    for (const vit3d::EnumName<Enum>& entry : vit3d::enum_names_of<Enum>()) {
        const int value = static_cast<int>(entry.value);
        ASSERT_NE(entry.name, nullptr) << "value " << value;
        EXPECT_FALSE(std::string(entry.name).empty()) << "value " << value;
        EXPECT_TRUE(names.insert(entry.name).second) << "the name " << entry.name << " appears twice";
        EXPECT_TRUE(values.insert(value).second) << "the value " << value << " appears twice";
        EXPECT_TRUE(std::find(scanned.begin(), scanned.end(), value) != scanned.end())
            << entry.name << " (" << value << ") lies outside the values scanned";
        EXPECT_EQ(vit3d::enum_from_name<Enum>(entry.name), entry.value) << entry.name;
        EXPECT_STREQ(vit3d::enum_name(entry.value), entry.name);
    }
    if (!can_list_enumerators) return;
    const std::vector<int> declared = declared_values<Enum>(candidates);
    EXPECT_FALSE(declared.empty()) << "no enumerator found among the values scanned";
    for (int value : declared)
        EXPECT_TRUE(values.count(value)) << "enumerator " << value << " has no name in the table";
    for (int value : values)
        EXPECT_TRUE(std::find(declared.begin(), declared.end(), value) != declared.end())
            << "the table names " << value << ", which is no enumerator";
}

// The same for an enum whose enumerators all lie in [0, limit).
template <class Enum, int limit>
void expect_complete_enum_table() {
    expect_complete_enum_table<Enum>(std::make_integer_sequence<int, limit>());
}

}  // namespace vit3d::test
