#pragma once
// The definition of io::load_model (load_model.hpp). Included by vit3d/io/implementation.hpp, which
// compiles it once per program, and by load_model.hpp itself in a VIT3D_HEADER_ONLY build.

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include "vit3d/core/error.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/formats/file_bytes.hpp"
#include "vit3d/io/huggingface/model_folder.hpp"
#include "vit3d/io/key_maps.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_kinds.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::detail {

// int8 and bf16 run float models only: refused before anything is read.
template <class T>
void check_load_precision(Precision precision, const std::string& where) {
    if (precision != Precision::f32 && !std::is_same_v<T, float>)
        throw std::invalid_argument(message(where, "expected precision f32 for a model loaded as ",
                                            std::is_same_v<T, double> ? "double" : "this scalar type", " (",
                                            precision, " runs float models only), got ", precision));
}

// The model of a description, of the kind it names, filled from `tensors` through `keys`, its linear layers
// in `precision`; `source` is the file or folder it came from.
template <class T>
io::LoadedModel<T> build_model(io::ModelDescription description, const io::TensorSource& tensors,
                               const io::KeyMap& keys, const std::string& where, const std::string& source,
                               Precision precision) {
    using namespace vit3d::io;
    const std::string at = message(where, "metadata ", detail::quoted(model_metadata_key), ": ");
    std::string listing;
    for (const ModelKind<T>& kind : model_kinds<T>()) {
        if (description.kind == kind.name) {
            auto instance = kind.load(description, tensors, keys, where, precision);
            return LoadedModel<T>(std::move(description), std::move(instance), source, precision);
        }
        listing += message(listing.empty() ? "" : ", ", kind.name, " (", kind.model, ")");
    }
    throw io_error(
        message(at, "kind: unknown model kind ", detail::quoted(description.kind), "; known: ", listing));
}

}  // namespace vit3d::detail

namespace vit3d::io {

template <class T>
LoadedModel<T> load_model(const Safetensors& file, Precision precision) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::load_model loads float or double models");
    const std::string where = message("vit3d::io::load_model(", detail::quoted(file.source_name()), "): ");
    detail::check_load_precision<T>(precision, where);
    const std::string at = message(where, "metadata ", detail::quoted(model_metadata_key), ": ");
    ModelDescription description = read_model_description(file, where);
    const KeyMap* keys = key_maps::find(description.key_map);
    if (!keys)
        throw io_error(message(at, "key_map: unknown key map ", detail::quoted(description.key_map),
                               "; known: ", key_maps::names()));
    return detail::build_model<T>(std::move(description), file, *keys, where, file.source_name(), precision);
}

template <class T>
LoadedModel<T> load_model(const std::string& path, const LoadOptions& options) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::load_model loads float or double models");
    detail::check_load_precision<T>(options.precision,
                                    message("vit3d::io::load_model(", detail::quoted(path), "): "));
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec) && !huggingface::is_model_folder(path))
        throw io_error(
            message("vit3d::io::load_model(", detail::quoted(path),
                    "): a directory without config.json: expected a weights file or a Hugging Face "
                    "model folder"));
    if (huggingface::is_model_folder(path)) {
        const huggingface::OpenedFolder folder = huggingface::open_folder(path, options.access);
        return detail::build_model<T>(folder.description, *folder.tensors, *folder.keys,
                                      message("vit3d::io::load_model(", detail::quoted(path), "): "), path,
                                      options.precision);
    }
    return load_model<T>(Safetensors::open(path, options.access), options.precision);
}

}  // namespace vit3d::io
