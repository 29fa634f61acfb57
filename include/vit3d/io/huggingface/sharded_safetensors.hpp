#pragma once
// A checkpoint split into several safetensors files, as Hugging Face saves large models:
// model.safetensors.index.json maps every tensor name to the shard that holds it
//     {"metadata": {...}, "weight_map": {"embeddings.cls_token": "model-00001-of-00002.safetensors", ...}}
// and the shards sit beside it. Each shard is opened (mapped) once; a tensor is read from the shard the index
// names. An index naming a missing shard, or a tensor its shard does not hold, is an io_error naming the
// index, the key and the shard.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/formats/file_bytes.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/tensor_source.hpp"

namespace vit3d::io::huggingface {

class ShardedSafetensors final : public TensorSource {
  public:
    static ShardedSafetensors open(const std::string& index_path, FileAccess access = FileAccess::map) {
        const std::string where =
            message("vit3d::io::huggingface: ", vit3d::detail::quoted_path(index_path), ": ");
        const std::vector<std::uint8_t> bytes = vit3d::detail::read_file_bytes(index_path, where);
        nlohmann::json index;
        try {
            index = nlohmann::json::parse(bytes.begin(), bytes.end());
        } catch (const nlohmann::json::exception& e) {
            throw io_error(message(where, "not valid JSON: ", e.what()));
        }
        const auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
        if (!index.is_object() || weight_map == index.end() || !weight_map->is_object())
            throw io_error(message(where,
                                   "expected an object with a \"weight_map\" object (tensor name -> "
                                   "shard file), got ",
                                   vit3d::detail::brief_json(index)));
        ShardedSafetensors out;
        out.name_ = std::filesystem::path(index_path).parent_path().string();
        std::map<std::string, std::size_t> shard_of_file;
        for (const auto& item : weight_map->items()) {
            if (!item.value().is_string())
                throw io_error(message(where, "weight_map.", item.key(), ": expected a file name, got ",
                                       vit3d::detail::brief_json(item.value())));
            const std::string file = item.value().get<std::string>();
            if (file.empty() || std::filesystem::path(file).has_parent_path())
                throw io_error(message(where, "weight_map.", item.key(),
                                       ": expected the name of a file beside the index, got ",
                                       vit3d::detail::quoted_path(file)));
            auto found = shard_of_file.find(file);
            if (found == shard_of_file.end()) {
                const std::string path = (std::filesystem::path(index_path).parent_path() / file).string();
                if (!std::filesystem::exists(path))
                    throw io_error(message(where, "weight_map.", item.key(), " names the shard ",
                                           vit3d::detail::quoted_path(file), ", which is missing"));
                found = shard_of_file.emplace(file, out.shards_.size()).first;
                out.shards_.push_back(Safetensors::open(path, access));
            }
            const Safetensors& shard = out.shards_[found->second];
            if (!shard.contains(item.key()))
                throw io_error(message(where, "weight_map.", item.key(), " names the shard ",
                                       vit3d::detail::quoted_path(file), ", which holds no such tensor"));
            out.shard_of_.emplace(item.key(), found->second);
        }
        return out;
    }

    const std::string& source_name() const noexcept override { return name_; }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        for (const auto& entry : shard_of_) out.push_back(entry.first);
        return out;
    }
    bool contains(const std::string& name) const override { return shard_of_.count(name) != 0; }
    Shape shape(const std::string& name) const override { return shard(name).shape(name); }
    void get_into(const std::string& name, float* dst, Index count) const override {
        shard(name).get_into(name, dst, count);
    }
    void get_into(const std::string& name, double* dst, Index count) const override {
        shard(name).get_into(name, dst, count);
    }
    void release(const std::string& name) const override { shard(name).release(name); }
    std::size_t shard_count() const noexcept { return shards_.size(); }

  private:
    ShardedSafetensors() = default;

    const Safetensors& shard(const std::string& name) const {
        const auto it = shard_of_.find(name);
        if (it == shard_of_.end())
            throw io_error(message("vit3d::io::huggingface: ", vit3d::detail::quoted_path(name_),
                                   ": the index names no tensor ", vit3d::detail::quoted_path(name)));
        return shards_[it->second];
    }

    std::string name_;
    std::vector<Safetensors> shards_;
    std::map<std::string, std::size_t> shard_of_;
};

}  // namespace vit3d::io::huggingface
