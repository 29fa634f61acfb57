#pragma once
// The other direction of load_model: a vit3d model written as a self-describing weights file, with vit3d's
// own tensor names (key map "vit3d"), family "vit3d", its configuration and the preprocessing given.
//     io::save_model("mine.safetensors", vit, io::no_preprocessing("BCHW", {224, 224}));
// The file is written under a temporary name next to `path` and renamed into place, so a reader never
// sees half a file.

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_kinds/vision_transformer.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/models/vision_transformer.hpp"

namespace vit3d::io {

// Preprocessing that records only the layout and the input size (the family defines none).
inline Preprocessing no_preprocessing(std::string layout, std::vector<Index> input_size) {
    Preprocessing p;
    p.layout = std::move(layout);
    p.input_size = std::move(input_size);
    return p;
}

// The description save_model writes for this model.
template <class T, std::size_t N>
ModelDescription describe_model(const models::VisionTransformer<T, N>& model,
                                const Preprocessing& preprocess) {
    ModelDescription d;
    d.family = "vit3d";
    d.kind = detail::vision_transformer_kind<N>();
    d.key_map = "vit3d";
    d.config = vision_transformer_config_json(model.config);
    d.preprocess = preprocess;
    d.source = {{"tool", "vit3d::io::save_model"}};
    return d;
}

template <class T, std::size_t N>
void save_model(const std::string& path, const models::VisionTransformer<T, N>& model,
                const Preprocessing& preprocess, DType as = DType::F32) {
    const std::string where = "vit3d::io::save_model(" + detail::quoted(path) + "): ";
    const std::vector<Index> size(model.config.input_size.begin(), model.config.input_size.end());
    if (preprocess.input_size != size)
        throw io_error(where + "preprocess.input_size " + shape_to_string(preprocess.input_size) +
                       " differs from the model's input size " + shape_to_string(size));
    std::map<std::string, const Tensor<T>*> tensors;
    model.visit_parameters([&](const std::string& name, const Tensor<T>& t) { tensors[name] = &t; });
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"}, {model_metadata_key, model_description_json(describe_model(model, preprocess))}};
    const std::string partial = path + ".partial";
    write_safetensors(partial, tensors, metadata, as);
    if (std::rename(partial.c_str(), path.c_str()) != 0) {
        std::remove(partial.c_str());
        throw io_error(where + "cannot move the written file into place");
    }
}

}  // namespace vit3d::io
