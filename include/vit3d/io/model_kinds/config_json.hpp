#pragma once
// Reading and writing model configurations as JSON, shared by the model kinds: enumerators by name (both
// ways, listing the valid names in errors) and fixed-length size arrays.

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/json_fields.hpp"
#include "vit3d/models/vision_transformer.hpp"
#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/encoder_block.hpp"
#include "vit3d/nn/patch_embed.hpp"
#include "vit3d/nn/pos_embed.hpp"

namespace vit3d::detail {

// Enumerators by name, both ways.
template <class Enum>
struct EnumNames;
template <>
struct EnumNames<models::Pooling> {
    static constexpr std::pair<models::Pooling, const char*> values[] = {
        {models::Pooling::cls, "cls"}, {models::Pooling::mean, "mean"}, {models::Pooling::none, "none"}};
};
template <>
struct EnumNames<models::PosEmbedKind> {
    static constexpr std::pair<models::PosEmbedKind, const char*> values[] = {
        {models::PosEmbedKind::learned, "learned"},
        {models::PosEmbedKind::factorized3d, "factorized3d"},
        {models::PosEmbedKind::sincos, "sincos"},
        {models::PosEmbedKind::none, "none"}};
};
template <>
struct EnumNames<nn::SinCosVariant> {
    static constexpr std::pair<nn::SinCosVariant, const char*> values[] = {
        {nn::SinCosVariant::mae_monai, "mae_monai"}, {nn::SinCosVariant::vit_pytorch, "vit_pytorch"}};
};
template <>
struct EnumNames<nn::PatchProjection> {
    static constexpr std::pair<nn::PatchProjection, const char*> values[] = {
        {nn::PatchProjection::conv, "conv"}, {nn::PatchProjection::unfold, "unfold"}};
};
template <>
struct EnumNames<nn::NormPlacement> {
    static constexpr std::pair<nn::NormPlacement, const char*> values[] = {{nn::NormPlacement::pre, "pre"},
                                                                           {nn::NormPlacement::post, "post"}};
};
template <>
struct EnumNames<nn::Activation> {
    static constexpr std::pair<nn::Activation, const char*> values[] = {
        {nn::Activation::gelu, "gelu"},
        {nn::Activation::gelu_tanh, "gelu_tanh"},
        {nn::Activation::relu, "relu"},
        {nn::Activation::tanh, "tanh"},
        {nn::Activation::identity, "identity"}};
};

template <class Enum>
const char* enum_name(Enum value) {
    for (const auto& [v, name] : EnumNames<Enum>::values)
        if (v == value) return name;
    return "?";
}

template <class Enum>
Enum read_enum(JsonFields& f, const std::string& key) {
    const std::string name = f.string(key);
    std::string listing;
    for (const auto& [v, n] : EnumNames<Enum>::values) {
        if (name == n) return v;
        listing += (listing.empty() ? "" : ", ") + quoted(n);
    }
    throw io_error(f.where() + f.child(key) + ": expected one of " + listing + ", got " + quoted(name));
}

template <std::size_t N>
std::array<Index, N> read_sizes(JsonFields& f, const std::string& key) {
    const std::vector<Index> v = f.integers(key, N, 1);
    std::array<Index, N> out{};
    std::copy(v.begin(), v.end(), out.begin());
    return out;
}

}  // namespace vit3d::detail
