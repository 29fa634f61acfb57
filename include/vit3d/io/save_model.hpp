#pragma once
// The other direction of load_model: a vit3d model written as a self-describing weights file, with vit3d's
// own tensor names (key map "vit3d"), family "vit3d", its configuration and the preprocessing given.
//     io::save_model("mine.safetensors", vit, io::no_preprocessing("BCHW", {224, 224}));
// The file is written under a temporary name next to `path` and renamed into place, so a reader never
// sees half a file.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_kinds/ct_encoder.hpp"
#include "vit3d/io/model_kinds/vision_transformer.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/models/ct_encoder.hpp"
#include "vit3d/models/vision_transformer.hpp"

namespace vit3d::io {

// Preprocessing that records only the layout and the input size (the family defines none).
inline transforms::Preprocessing no_preprocessing(std::string layout, std::vector<Index> input_size) {
    transforms::Preprocessing p;
    p.layout = std::move(layout);
    p.input_size = std::move(input_size);
    return p;
}

// The description save_model writes for this model.
template <class T, std::size_t N>
ModelDescription describe_model(const models::VisionTransformer<T, N>& model,
                                const transforms::Preprocessing& preprocess) {
    ModelDescription d;
    d.family = "vit3d";
    d.kind = detail::vision_transformer_kind<N>();
    d.key_map = "vit3d";
    d.config = vision_transformer_config_json(model.config).dump();
    d.preprocess = preprocess;
    d.source = R"({"tool": "vit3d::io::save_model"})";
    return d;
}

template <class T>
ModelDescription describe_model(const models::CTEncoder<T>& model,
                                const transforms::Preprocessing& preprocess) {
    ModelDescription d;
    d.family = "vit3d";
    d.kind = "ct_encoder";
    d.key_map = "ct_encoder";
    d.config = ct_encoder_config_json(model.config).dump();
    d.preprocess = preprocess;
    d.source = R"({"tool": "vit3d::io::save_model"})";
    return d;
}

}  // namespace vit3d::io

namespace vit3d::detail {

template <class T, class Model>
void save_described_model(const std::string& path, const Model& model,
                          const transforms::Preprocessing& preprocess, io::DType as) {
    const std::string where = message("vit3d::io::save_model(", quoted(path), "): ");
    const std::vector<Index> size(model.config.input_size.begin(), model.config.input_size.end());
    if (preprocess.input_size != size)
        throw io_error(message(where, "preprocess.input_size ", preprocess.input_size,
                               " differs from the model's input size ", size));
    std::map<std::string, const Tensor<T>*> tensors;
    model.visit_parameters([&](const std::string& name, const Tensor<T>& t) { tensors[name] = &t; });
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {io::model_metadata_key, io::model_description_json(io::describe_model(model, preprocess))}};
    io::write_safetensors(path, tensors, metadata, as);  // atomic: a temporary file renamed into place
}

}  // namespace vit3d::detail

namespace vit3d::io {

template <class T, std::size_t N>
void save_model(const std::string& path, const models::VisionTransformer<T, N>& model,
                const transforms::Preprocessing& preprocess, DType as = DType::F32) {
    detail::save_described_model<T>(path, model, preprocess, as);
}

template <class T>
void save_model(const std::string& path, const models::CTEncoder<T>& model,
                const transforms::Preprocessing& preprocess, DType as = DType::F32) {
    detail::save_described_model<T>(path, model, preprocess, as);
}

}  // namespace vit3d::io
