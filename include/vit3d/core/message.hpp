#pragma once
// Error messages written from their parts:
//
//     throw shape_error(message(op, ": expected input [..., ", dim, "], got ", x.shape()));
//
// message() concatenates its arguments, each written as:
//   - strings (std::string, std::string_view, string literals, const char*) as they are, a char as itself;
//   - bool as true or false;
//   - integers in decimal; floating-point numbers in the shortest form that reads back to the same value
//     (std::to_chars: 1e-06, 0.1, 1e+06), not std::to_string's six fixed decimals;
//   - std::vector and std::array of numbers (a Shape) as [1, 3, 224, 224];
//   - an enumerator with a name table (core/enum_names.hpp) by its name (a value the table lacks, cast from
//     an integer, as that integer).
// A name or value a user typed, which may hold anything, goes in detail::quoted(...) (a JSON string literal):
//     message(op, ": unknown axis ", detail::quoted(name))

#include <array>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vit3d/core/enum_names.hpp"

namespace vit3d::detail {

// `text` as a JSON string literal: in double quotes, with quotes, backslashes and control characters
// escaped and invalid UTF-8 replaced by U+FFFD, so that an odd name cannot garble a message. Writes what
// nlohmann::json's dump() writes for the string (error_handler_t::replace, no ASCII escaping).
inline std::string quoted(std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    static const char replacement[] = "\xEF\xBF\xBD";
    std::string out = "\"";
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    std::size_t i = 0;
    while (i < text.size()) {
        const unsigned char lead = byte(i);
        if (lead < 0x80) {
            switch (lead) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                default:
                    if (lead < 0x20) {
                        out += "\\u00";
                        out += hex[lead >> 4];
                        out += hex[lead & 15];
                    } else {
                        out += static_cast<char>(lead);
                    }
            }
            ++i;
            continue;
        }
        // A multi-byte sequence (RFC 3629): the lead byte fixes its length and the range of the second byte,
        // which excludes overlong forms, surrogates and code points above U+10FFFF.
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3;
            if (lead == 0xE0) low = 0xA0;
            if (lead == 0xED) high = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4;
            if (lead == 0xF0) low = 0x90;
            if (lead == 0xF4) high = 0x8F;
        }
        // The bytes that continue the sequence correctly; a sequence cut short is replaced as one character,
        // and the byte that broke it is read again as the start of the next one.
        std::size_t valid = length ? 1 : 0;
        while (valid > 0 && valid < length && i + valid < text.size()) {
            const unsigned char next = byte(i + valid);
            const bool fits = valid == 1 ? next >= low && next <= high : next >= 0x80 && next <= 0xBF;
            if (!fits) break;
            ++valid;
        }
        if (length > 0 && valid == length) {
            out.append(text.substr(i, length));
            i += length;
        } else {
            out += replacement;
            i += valid > 0 ? valid : 1;
        }
    }
    return out + "\"";
}

// Exact matches for a std::string and a literal, so that std::quoted (<iomanip>), which argument-dependent
// lookup finds for a std::string, never wins over quoted(std::string_view).
inline std::string quoted(const std::string& text) { return quoted(std::string_view(text)); }
inline std::string quoted(const char* text) { return quoted(std::string_view(text)); }

template <class T>
struct IsSequence : std::false_type {};
template <class T, class A>
struct IsSequence<std::vector<T, A>> : std::true_type {};
template <class T, std::size_t N>
struct IsSequence<std::array<T, N>> : std::true_type {};

template <class T>
void append_number(std::string& out, T value) {
    char digits[64];  // the longest shortest form of a long double is under 50 characters
    const std::to_chars_result written = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, written.ptr);
}

template <class T>
void append_part(std::string& out, const T& part) {
    if constexpr (std::is_same_v<T, bool>) {
        out += part ? "true" : "false";
    } else if constexpr (std::is_same_v<T, char>) {
        out += part;
    } else if constexpr (std::is_same_v<T, const char*> || std::is_same_v<T, char*>) {
        out += part ? part : "(null)";
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        out += std::string_view(part);
    } else if constexpr (std::is_arithmetic_v<T>) {
        append_number(out, part);
    } else if constexpr (std::is_enum_v<T>) {
        static_assert(has_enum_names<T>,
                      "message: this enum has no name table (core/enum_names.hpp); give it one, or write a "
                      "number with static_cast");
        if (const char* name = enum_name(part, nullptr))
            out += name;
        else
            append_number(out, static_cast<std::underlying_type_t<T>>(part));  // a value the table lacks
    } else if constexpr (IsSequence<T>::value) {
        static_assert(std::is_arithmetic_v<typename T::value_type>,
                      "message: a vector or array is written as a list of numbers");
        out += '[';
        for (std::size_t i = 0; i < part.size(); ++i) {
            if (i) out += ", ";
            append_part(out, part[i]);
        }
        out += ']';
    } else {
        static_assert(std::is_void_v<T>, "message: no way to write this type; convert it to a string first");
    }
}

}  // namespace vit3d::detail

namespace vit3d {

// The message of its parts, concatenated (see the top of this file for how each part is written).
template <class... Parts>
std::string message(const Parts&... parts) {
    std::string out;
    (detail::append_part(out, parts), ...);
    return out;
}

}  // namespace vit3d
