#pragma once
// The description a self-describing vit3d weights file carries: the JSON string under the "vit3d.model"
// key of its safetensors "__metadata__", written by tools/export_weights.py (or io::save_model). It says
// which reference family the weights come from, which model kind vit3d builds for them (model_kinds.hpp),
// that kind's configuration, which key map renames the tensors, and how inputs must be preprocessed
// (transforms::Preprocessing, defined in preprocess.hpp with the functions that apply it).
// docs/weights.md documents every field; model_description_json.hpp reads and writes it. The kind's
// configuration and the provenance stay JSON text here, so that this header (which every program that loads
// a model includes) needs no JSON library.

#include <string>
#include <vector>

#include "vit3d/transforms/preprocess.hpp"

namespace vit3d::io {

// The metadata key of the description, and the schema version this vit3d reads and writes.
inline constexpr const char* model_metadata_key = "vit3d.model";
inline constexpr const char* model_schema_name = "vit3d.model";
inline constexpr int model_schema_version = 1;

// The reference families an exporter may name. The family is provenance (which package's model the
// weights fit); the kind and the key map decide what is built and how tensors are renamed.
inline const std::vector<std::string>& known_families() {
    static const std::vector<std::string> families = {
        "torchvision",           "timm",  "vit_pytorch", "vit_pytorch_simple", "vit_pytorch_3d",
        "vit_pytorch_simple_3d", "monai", "reg2rg",      "ct_encoder",         "vit3d",
        "transformers"};
    return families;
}

struct ModelDescription {
    int version = model_schema_version;
    std::string family;         // one of known_families()
    std::string kind;           // a model kind of model_kinds.hpp ("vit2d", "vit3d")
    std::string key_map;        // a key map of key_maps.hpp ("torchvision", ...)
    std::string config = "{}";  // the kind's configuration (a JSON object's text), read by the kind
    transforms::Preprocessing preprocess;
    std::string source = "{}";  // provenance (a JSON object's text: class, arguments, package versions)
};

}  // namespace vit3d::io
