#pragma once
// One call from a self-describing weights file (tools/export_weights.py, io::save_model) to a model:
//     auto model = vit3d::io::load_model<float>("model.safetensors");
//     const auto logits = model.forward(images, vit3d::io::ModelOutput::logits);
// The file's description (model_description.hpp) picks the model kind and its configuration; the kind
// builds the model and loads it strictly through the key map the description names. F16, BF16, F32 and
// F64 files all load, as float or as double.
//
// Memory: the file is mapped (FileAccess::map; plain reads where mmap is unavailable) and each tensor is
// decoded straight into the parameter the model already allocated, whose zeros were never written (see
// detail/aligned_buffer.hpp); the tensor's file pages are dropped right after. Peak resident memory is
// then about the size of the weights plus one tensor's bytes, not file + weights.

#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/io/file_bytes.hpp"
#include "vit3d/io/key_maps.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_kinds.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::io {

struct LoadOptions {
    FileAccess access = FileAccess::map;
};

// The model an opened file describes, loaded from it.
template <class T>
LoadedModel<T> load_model(const Safetensors& file) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::load_model loads float or double models");
    const std::string where = "vit3d::io::load_model(" + detail::quoted(file.source_name()) + "): ";
    const std::string at = where + "metadata \"" + std::string(model_metadata_key) + "\": ";
    ModelDescription description = read_model_description(file, where);
    const KeyMap* keys = key_maps::find(description.key_map);
    if (!keys)
        throw io_error(at + "key_map: unknown key map " + detail::quoted(description.key_map) +
                       "; known: " + key_maps::names());
    std::string listing;
    for (const ModelKind<T>& kind : model_kinds<T>()) {
        if (description.kind == kind.name) {
            auto instance = kind.load(description, file, *keys, where);
            return LoadedModel<T>(std::move(description), std::move(instance), file.source_name());
        }
        listing += (listing.empty() ? "" : ", ") + std::string(kind.name) + " (" + kind.model + ")";
    }
    throw io_error(at + "kind: unknown model kind " + detail::quoted(description.kind) +
                   "; known: " + listing);
}

// load_model(Safetensors::open(path, options.access)).
template <class T>
LoadedModel<T> load_model(const std::string& path, const LoadOptions& options = {}) {
    return load_model<T>(Safetensors::open(path, options.access));
}

}  // namespace vit3d::io
