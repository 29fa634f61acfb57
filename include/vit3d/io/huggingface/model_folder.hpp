#pragma once
// A Hugging Face model folder, as the Hub serves it and save_pretrained writes it, opened without Python:
//     config.json               the model_type, architecture and settings (model_config.hpp)
//     model.safetensors         the weights, or shards listed by model.safetensors.index.json
//     preprocessor_config.json  the image processor's settings, if any (preprocessor_config.hpp)
// io::load_model(folder) builds the model from them; open_folder is the part before the build: the
// description a self-describing weights file would carry, and the tensors under names the key map renames.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "vit3d/core/error.hpp"
#include "vit3d/formats/file_bytes.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/io/huggingface/assembled_tensors.hpp"
#include "vit3d/io/huggingface/model_config.hpp"
#include "vit3d/io/huggingface/preprocessor_config.hpp"
#include "vit3d/io/huggingface/sharded_safetensors.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_kinds/config_json.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::io::huggingface {

// Whether `path` is a directory holding a config.json.
inline bool is_model_folder(const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_directory(path, ec) &&
           std::filesystem::is_regular_file(std::filesystem::path(path) / "config.json", ec);
}

struct OpenedFolder {
    ModelDescription description;
    std::unique_ptr<TensorSource> file;         // model.safetensors, or the shards
    std::unique_ptr<AssembledTensors> tensors;  // over `file`: q, k, v joined, in_proj split
    const KeyMap* keys = nullptr;
};

}  // namespace vit3d::io::huggingface

namespace vit3d::detail {

inline std::string hf_file_in(const std::string& folder, const char* name) {
    return (std::filesystem::path(folder) / name).string();
}

inline nlohmann::json hf_read_json(const std::string& path, const std::string& where) {
    const std::vector<std::uint8_t> bytes = vit3d::detail::read_file_bytes(path, where);
    try {
        return nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
        throw io_error(message(where, "not valid JSON: ", e.what()));
    }
}

inline std::unique_ptr<io::TensorSource> hf_open_weights(const std::string& folder, io::FileAccess access,
                                                         const std::string& where) {
    const std::string single = hf_file_in(folder, "model.safetensors");
    const std::string index = hf_file_in(folder, "model.safetensors.index.json");
    std::error_code ec;
    if (std::filesystem::exists(single, ec))
        return std::make_unique<io::Safetensors>(io::Safetensors::open(single, access));
    if (std::filesystem::exists(index, ec))
        return std::make_unique<io::huggingface::ShardedSafetensors>(
            io::huggingface::ShardedSafetensors::open(index, access));
    for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"})
        if (std::filesystem::exists(hf_file_in(folder, pickle), ec))
            throw io_error(message(where, "the weights are in ", pickle,
                                   " (a pickle), which vit3d does not read; load the model in transformers "
                                   "and save_pretrained() it again, which writes model.safetensors"));
    throw io_error(message(where,
                           "expected the weights in model.safetensors or in the shards "
                           "model.safetensors.index.json lists; the folder has neither"));
}

// transformers' separate projections joined, SigLIP's pooling head's in_proj split, so that the key maps
// only rename (key_maps/huggingface.hpp).
inline void hf_assemble_projections(io::huggingface::AssembledTensors& tensors,
                                    const io::TensorSource& file) {
    const auto ends_with = [](const std::string& s, const std::string& tail) {
        return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    for (const std::string& name : file.names()) {
        for (const auto& [q, k, v] : {std::array<const char*, 3>{"query", "key", "value"},
                                      std::array<const char*, 3>{"q_proj", "k_proj", "v_proj"}}) {
            for (const char* kind : {"weight", "bias"}) {
                const std::string tail = message(".", q, ".", kind);
                if (!ends_with(name, tail)) continue;
                const std::string stem = name.substr(0, name.size() - tail.size());
                const auto part = [&](const char* which) {
                    const std::string n = message(stem, ".", which, ".", kind);
                    return io::huggingface::AssembledTensors::Rows{
                        n, 0, file.contains(n) ? file.shape(n).at(0) : 0};
                };
                tensors.assemble(message(stem, ".qkv.", kind), {part(q), part(k), part(v)});
            }
        }
        for (const char* kind : {"weight", "bias"}) {
            const std::string tail = message(".in_proj_", kind);
            if (!ends_with(name, tail)) continue;
            const std::string stem = name.substr(0, name.size() - tail.size());
            const Index rows = file.shape(name).at(0);
            tensors.assemble(message(stem, ".q.", kind), {{name, 0, rows / 3}});
            tensors.assemble(message(stem, ".kv.", kind), {{name, rows / 3, rows - rows / 3}});
        }
    }
}

}  // namespace vit3d::detail

namespace vit3d::io::huggingface {

// Reads a folder's configuration, preprocessing and weights (mapped, or read as `access` says).
inline OpenedFolder open_folder(const std::string& folder, FileAccess access = FileAccess::map) {
    const std::string where = message("vit3d::io::load_model(", vit3d::detail::quoted_path(folder), "): ");
    const std::string config_path = detail::hf_file_in(folder, "config.json");
    const std::string config_where = message(where, "config.json: ");
    const nlohmann::json config = detail::hf_read_json(config_path, config_where);
    OpenedFolder out;
    out.file = detail::hf_open_weights(folder, access, where);
    out.tensors = std::make_unique<AssembledTensors>(*out.file);
    detail::hf_assemble_projections(*out.tensors, *out.file);
    const FolderModel model = folder_model(config, *out.tensors, config_where);
    out.keys = model.keys;

    const std::string processor_path = detail::hf_file_in(folder, "preprocessor_config.json");
    std::error_code ec;
    std::optional<nlohmann::json> processor;
    const std::string processor_where = message(where, "preprocessor_config.json: ");
    if (std::filesystem::exists(processor_path, ec))
        processor = detail::hf_read_json(processor_path, processor_where);

    ModelDescription& d = out.description;
    d.family = "transformers";
    d.kind = "vit2d";
    d.key_map = model.keys->name();
    d.config = config_json(model.config).dump();
    d.preprocess = folder_preprocessing(processor ? &*processor : nullptr, model.config.channels,
                                        model.config.input_size, processor_where);
    nlohmann::json source = {{"model_type", model.model_type}, {"architecture", model.architecture}};
    if (config.contains("transformers_version"))
        source["transformers_version"] = config["transformers_version"];
    d.source = source.dump();
    return out;
}

}  // namespace vit3d::io::huggingface
