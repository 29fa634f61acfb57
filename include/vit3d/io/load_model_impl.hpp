#pragma once
// The definition of io::load_model (load_model.hpp). Included by vit3d/io/implementation.hpp, which
// compiles it once per program, and by load_model.hpp itself in a VIT3D_HEADER_ONLY build.

#include <string>
#include <type_traits>

#include "vit3d/core/error.hpp"
#include "vit3d/io/file_bytes.hpp"
#include "vit3d/io/key_maps.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_kinds.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::io {

template <class T>
LoadedModel<T> load_model(const Safetensors& file) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::load_model loads float or double models");
    const std::string where = message("vit3d::io::load_model(", detail::quoted(file.source_name()), "): ");
    const std::string at = message(where, "metadata ", detail::quoted(model_metadata_key), ": ");
    ModelDescription description = read_model_description(file, where);
    const KeyMap* keys = key_maps::find(description.key_map);
    if (!keys)
        throw io_error(message(at, "key_map: unknown key map ", detail::quoted(description.key_map),
                               "; known: ", key_maps::names()));
    std::string listing;
    for (const ModelKind<T>& kind : model_kinds<T>()) {
        if (description.kind == kind.name) {
            auto instance = kind.load(description, file, *keys, where);
            return LoadedModel<T>(std::move(description), std::move(instance), file.source_name());
        }
        listing += message(listing.empty() ? "" : ", ", kind.name, " (", kind.model, ")");
    }
    throw io_error(
        message(at, "kind: unknown model kind ", detail::quoted(description.kind), "; known: ", listing));
}

template <class T>
LoadedModel<T> load_model(const std::string& path, const LoadOptions& options) {
    return load_model<T>(Safetensors::open(path, options.access));
}

}  // namespace vit3d::io
