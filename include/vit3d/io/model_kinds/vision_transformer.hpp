#pragma once
// The model kinds "vit2d" (models::ViT) and "vit3d" (models::ViT3D): their configuration as JSON (every
// field of models::VisionTransformerConfig's list, config_json.hpp) in both directions, and the
// ModelInstance that load_model returns for them.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/io/json_fields.hpp"
#include "vit3d/io/key_map.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_kinds/config_json.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/state_dict.hpp"
#include "vit3d/models/vision_transformer.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/parameters.hpp"

namespace vit3d::detail {

// A VisionTransformerConfig<N> from its JSON object; every field required, no other allowed.
template <std::size_t N>
models::VisionTransformerConfig<N> vision_transformer_config(const nlohmann::json& json,
                                                             const std::string& where) {
    return config_from_json<models::VisionTransformerConfig<N>>(json, where);
}

// The model kind's name for N spatial axes.
template <std::size_t N>
constexpr const char* vision_transformer_kind() {
    return N == 2 ? "vit2d" : "vit3d";
}

template <class T, std::size_t N>
class VisionTransformerInstance final : public io::ModelInstance<T> {
  public:
    using Model = models::VisionTransformer<T, N>;
    // Sets the linear layers' precision, then packs their weights when the model's products have few enough
    // rows for a kept float pack to pay (core/weight_packing.hpp), and always in int8 and bf16 (whose pack
    // every call reads), so that no forward packs: after the move, which leaves packs behind.
    VisionTransformerInstance(Model model, Precision precision) : model_(std::move(model)) {
        nn::set_precision(model_, precision);
        if (precision != Precision::f32 ||
            model_.prefix_tokens() + model_.config.num_patches() < packed_weight_max_rows)
            nn::pack_weights(model_);
    }

    std::vector<io::ModelOutput> outputs() const override {
        const auto& c = model_.config;
        std::vector<io::ModelOutput> out;
        if (c.num_classes > 0) out.push_back(io::ModelOutput::logits);
        if (c.pool != models::Pooling::none) out.push_back(io::ModelOutput::pooled);
        out.push_back(io::ModelOutput::tokens);
        out.push_back(io::ModelOutput::token_grid);
        if (c.class_token && c.depth > 0) out.push_back(io::ModelOutput::cls_attention);
        return out;
    }
    Shape input_shape() const override {
        Shape s{model_.config.channels};
        s.insert(s.end(), model_.config.input_size.begin(), model_.config.input_size.end());
        return s;
    }
    Index parameter_count() const override { return nn::count_parameters(model_); }
    bool dynamic_size() const override { return model_.config.dynamic_size; }

    std::map<io::ModelOutput, Tensor<T>> forward(const Tensor<T>& x,
                                                 const std::vector<io::ModelOutput>& wanted) const override {
        const bool attention =
            std::find(wanted.begin(), wanted.end(), io::ModelOutput::cls_attention) != wanted.end();
        const auto grid = model_.input_grid(x.shape());
        models::VisionTransformerOutput<T> out = model_.forward(x, false, attention);
        std::map<io::ModelOutput, Tensor<T>> result;
        for (io::ModelOutput o : wanted) {
            switch (o) {
                case io::ModelOutput::logits:
                    result[o] = out.logits;
                    break;
                case io::ModelOutput::pooled:
                    result[o] = out.pooled;
                    break;
                case io::ModelOutput::tokens:
                    result[o] = out.tokens;
                    break;
                case io::ModelOutput::token_grid:
                    result[o] = model_.patch_grid(out.tokens, grid);
                    break;
                case io::ModelOutput::cls_attention:
                    result[o] = class_token_attention(out.class_attention, grid);
                    break;
            }
        }
        return result;
    }

    const void* model_if(const std::type_info& type) const noexcept override {
        return type == typeid(Model) ? &model_ : nullptr;
    }

  private:
    // The class token's weights [B, H, N] at the patch tokens' keys, on the grid.
    Tensor<T> class_token_attention(const Tensor<T>& weights, const std::array<Index, N>& grid) const {
        const Index B = weights.dim(0), H = weights.dim(1), tokens = weights.dim(2);
        const Index prefix = model_.prefix_tokens();
        Index patches = 1;
        Shape shape{B, H};
        for (Index g : grid) {
            shape.push_back(g);
            patches *= g;
        }
        Tensor<T> out = Tensor<T>::empty(shape);
        for (Index bh = 0; bh < B * H; ++bh)
            std::copy_n(weights.data() + bh * tokens + prefix, patches, out.data() + bh * patches);
        return out;
    }

    Model model_;
};

// Builds the model a description of kind "vit2d" / "vit3d" asks for and fills it from the file.
template <class T, std::size_t N>
std::unique_ptr<io::ModelInstance<T>> load_vision_transformer(const io::ModelDescription& d,
                                                              const io::TensorSource& file,
                                                              const io::KeyMap& keys,
                                                              const std::string& where, Precision precision) {
    const std::string at = message(where, "metadata \"", io::model_metadata_key, "\": ");
    const models::VisionTransformerConfig<N> config =
        vision_transformer_config<N>(io::description_json_field(d.config, "config"), at);
    // The preprocessing must describe this model's input: the trained size, or with dynamic_size any size
    // the patches divide.
    const std::vector<Index> size(config.input_size.begin(), config.input_size.end());
    const auto runs_at = [&](const std::vector<Index>& s) {
        if (s.size() != N) return false;
        for (std::size_t i = 0; i < N; ++i)
            if (s[i] < config.patch_size[i] || (s[i] % config.patch_size[i] != 0 && !config.drop_remainder))
                return false;
        return true;
    };
    if (d.preprocess.input_size != size && !(config.dynamic_size && runs_at(d.preprocess.input_size)))
        throw io_error(message(
            at, "preprocess.input_size ", d.preprocess.input_size, " differs from config.input_size ", size,
            config.dynamic_size ? message(" and is not a multiple of the patch size ", config.patch_size)
                                : std::string()));
    if ((N == 2) != (d.preprocess.layout == "BCHW"))
        throw io_error(message(at, "preprocess.layout ", quoted(d.preprocess.layout), " does not fit a ",
                               vision_transformer_kind<N>(), " model (expected ",
                               (N == 2 ? "\"BCHW\"" : "\"BCDHW\" or \"BCHWD\""), ")"));
    const std::size_t channels = static_cast<std::size_t>(config.channels);
    if ((d.preprocess.mean && d.preprocess.mean->size() != channels) ||
        (d.preprocess.std && d.preprocess.std->size() != channels))
        throw io_error(message(at, "preprocess.mean / std: expected one value per channel (", channels, ")"));
    std::optional<models::VisionTransformer<T, N>> model;
    try {
        model.emplace(config);
    } catch (const std::invalid_argument& e) {  // shape_error, config_error: a config vit3d refuses
        throw io_error(message(at, "config: vit3d refuses this configuration: ", e.what()));
    }
    try {
        io::load_state_dict<T>(*model, file, keys);
    } catch (const io_error& e) {
        throw io_error(message(where, e.what()));
    }
    return std::make_unique<VisionTransformerInstance<T, N>>(std::move(*model), precision);
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The JSON object of a configuration, as the "config" of a description of kind vit2d / vit3d.
template <std::size_t N>
nlohmann::json vision_transformer_config_json(const models::VisionTransformerConfig<N>& c) {
    return config_json(c);
}

}  // namespace vit3d::io
