#pragma once
// The arithmetic a linear layer computes its product in: `f32` (float, the default), `bf16` (weights stored
// bf16, activations rounded to bf16 at every call, sums in float) or `int8` (dynamic quantisation: weights
// quantised to int8 once, activations to u8 at every call, sums in int32); see nn/linear.hpp and
// docs/precision.md. Only linear layers have a precision; everything else (norms,
// softmax, activations, residual sums, the attention products, patch embeddings) computes in float.

#include <optional>
#include <stdexcept>
#include <string>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"

namespace vit3d {

enum class Precision { f32 = 0, int8 = 1, bf16 = 2 };

constexpr auto enum_names(Precision) {
    return enum_table<Precision>(
        {{Precision::f32, "f32"}, {Precision::bf16, "bf16"}, {Precision::int8, "int8"}});
}

inline const char* precision_name(Precision precision) { return enum_name(precision); }

// "f32", "bf16" or "int8"; anything else throws std::invalid_argument naming them and what it got.
inline Precision parse_precision(const std::string& text, const char* op = "vit3d::parse_precision") {
    if (const std::optional<Precision> precision = enum_from_name<Precision>(text)) return *precision;
    throw std::invalid_argument(message(op, ": expected ", enum_name_list<Precision>("", ", ", " or "),
                                        ", got ", detail::quoted(text)));
}

}  // namespace vit3d
