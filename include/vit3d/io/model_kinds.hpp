#pragma once
// The model kinds load_model can build, one entry each. A description's "kind" picks the entry; the entry
// reads the kind's "config", builds the model and fills it from the file. A new kind (the CT encoder, say)
// is one header under model_kinds/ with a load function, plus one line in the list below.

#include <memory>
#include <string>
#include <vector>

#include "vit3d/core/precision.hpp"
#include "vit3d/io/key_map.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_kinds/ct_encoder.hpp"
#include "vit3d/io/model_kinds/vision_transformer.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::io {

template <class T>
struct ModelKind {
    const char* name;   // the description's "kind"
    const char* model;  // the C++ type it builds, for messages
    // Builds the model of a description of this kind from the file, strictly, its linear layers in
    // `precision` (set before their weights are packed); `where` starts messages.
    std::unique_ptr<ModelInstance<T>> (*load)(const ModelDescription& description, const TensorSource& file,
                                              const KeyMap& keys, const std::string& where,
                                              Precision precision);
};

template <class T>
const std::vector<ModelKind<T>>& model_kinds() {
    static const std::vector<ModelKind<T>> kinds = {
        {"vit2d", "vit3d::models::ViT", &detail::load_vision_transformer<T, 2>},
        {"vit3d", "vit3d::models::ViT3D", &detail::load_vision_transformer<T, 3>},
        {"ct_encoder", "vit3d::models::CTEncoder", &detail::load_ct_encoder<T>},
    };
    return kinds;
}

}  // namespace vit3d::io
