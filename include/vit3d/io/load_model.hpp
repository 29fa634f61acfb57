#pragma once
// One call from a self-describing weights file (tools/export_weights.py, io::save_model) to a model:
//     auto model = vit3d::io::load_model<float>("model.safetensors");   // or a Hugging Face model folder
//     const auto logits = model.forward(images, vit3d::io::ModelOutput::logits);
// The file's description (model_description.hpp) picks the model kind and its configuration; the kind
// builds the model and loads it strictly through the key map the description names. F16, BF16, F32 and
// F64 files all load, as float or as double.
//
// This header declares load_model only: its definition (load_model_impl.hpp), with every model kind, the
// JSON reader and the key maps, is compiled once per program in vit3d/io/implementation.hpp (see
// core/instances.hpp), so that a program's other files compile in seconds.
//
// Memory: the file is mapped (FileAccess::map; plain reads where mmap is unavailable) and each tensor is
// decoded straight into the parameter the model already allocated, whose zeros were never written (see
// detail/aligned_buffer.hpp); the tensor's file pages are dropped right after. Peak resident memory is
// then about the size of the weights plus one tensor's bytes, not file + weights. The linear layers' weights
// are packed for the GEMM before load_model returns (nn/linear.hpp), so that no forward pays for it.
//
// Precision: LoadOptions::precision int8 sets every linear layer of the model to int8 (nn::set_precision,
// docs/precision.md) before the weights are packed, so that the packs made at load are the int8 ones.

#include <string>

#include "vit3d/core/instances.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/formats/file_bytes.hpp"
#include "vit3d/io/loaded_model.hpp"

namespace vit3d::io {

class Safetensors;

struct LoadOptions {
    FileAccess access = FileAccess::map;
    // The arithmetic of the linear layers: f32, or int8 (float models only).
    Precision precision = Precision::f32;
};

// The model an opened file describes, loaded from it, its linear layers in `precision`. T is float or double.
template <class T>
LoadedModel<T> load_model(const Safetensors& file, Precision precision = Precision::f32);

// load_model(Safetensors::open(path, options.access)) for a weights file; for a Hugging Face model folder
// (a directory with config.json and model.safetensors or its shards: huggingface/model_folder.hpp) the
// model its configuration describes, with the preprocessing of its preprocessor_config.json.
template <class T>
LoadedModel<T> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace vit3d::io

#define VIT3D_LOAD_MODEL_INSTANCES(X, T)                                                                   \
    X(vit3d::io::LoadedModel<T> vit3d::io::load_model<T>(const vit3d::io::Safetensors&, vit3d::Precision)) \
    X(vit3d::io::LoadedModel<T> vit3d::io::load_model<T>(const std::string&, const vit3d::io::LoadOptions&))
VIT3D_EXTERN_INSTANCES(VIT3D_LOAD_MODEL_INSTANCES)

#if defined(VIT3D_HEADER_ONLY)
#include "vit3d/io/load_model_impl.hpp"
#endif
