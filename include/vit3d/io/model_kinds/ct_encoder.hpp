#pragma once
// The model kind "ct_encoder" (models::CTEncoder): its configuration as JSON (every field of
// models::CTEncoderConfig's list, config_json.hpp) in both directions, and the ModelInstance that load_model
// returns for it. Through the common interface the encoder runs without a label mask (slice-aware only) and
// gives pooled (its global feature), tokens ([B, 1 + N, D], class token first), token_grid and
// cls_attention; for the region outputs, which need a mask, take the model itself:
//     model.get_if<models::CTEncoder<float>>()->forward(volume, mask)

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
#include "vit3d/models/ct_encoder.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/parameters.hpp"

namespace vit3d::detail {

// A CTEncoderConfig from its JSON object; every field required, no other allowed.
inline models::CTEncoderConfig ct_encoder_config(const nlohmann::json& json, const std::string& where) {
    return config_from_json<models::CTEncoderConfig>(json, where);
}

template <class T>
class CTEncoderInstance final : public io::ModelInstance<T> {
  public:
    using Model = models::CTEncoder<T>;
    // As VisionTransformerInstance: sets the linear layers' precision, then packs their weights when that
    // pays (always in int8 and bf16), after the move.
    CTEncoderInstance(Model model, Precision precision) : model_(std::move(model)) {
        nn::set_precision(model_, precision);
        if (precision != Precision::f32 || 1 + model_.config.num_patches() < packed_weight_max_rows)
            nn::pack_weights(model_);
    }

    std::vector<io::ModelOutput> outputs() const override {
        std::vector<io::ModelOutput> out{io::ModelOutput::pooled, io::ModelOutput::tokens,
                                         io::ModelOutput::token_grid};
        if (model_.config.depth > 0) out.push_back(io::ModelOutput::cls_attention);
        return out;
    }
    Shape input_shape() const override {
        const auto& c = model_.config;
        return {c.channels, c.input_size[0], c.input_size[1], c.input_size[2]};
    }
    Index parameter_count() const override { return nn::count_parameters(model_); }

    std::map<io::ModelOutput, Tensor<T>> forward(const Tensor<T>& x,
                                                 const std::vector<io::ModelOutput>& wanted) const override {
        const auto has = [&](io::ModelOutput o) {
            return std::find(wanted.begin(), wanted.end(), o) != wanted.end();
        };
        const auto grid = model_.config.grid();
        auto state = model_.embed(x);
        Tensor<T> class_attention;
        for (std::size_t i = 0; i < model_.blocks.size(); ++i) {
            if (i + 1 == model_.blocks.size() && has(io::ModelOutput::cls_attention)) {
                const auto& block = model_.blocks[i];
                class_attention = block.attn.query_weights(block.norm1.forward(state.tokens), grid, 1, 0);
            }
            model_.run_block(i, state);
        }
        const models::CTEncoderOutput<T> out = model_.finish(std::move(state));
        const Index B = out.local.dim(0), N = out.local.dim(1), D = out.local.dim(2);
        std::map<io::ModelOutput, Tensor<T>> result;
        for (io::ModelOutput o : wanted) {
            switch (o) {
                case io::ModelOutput::pooled:
                    result[o] = out.global;
                    break;
                case io::ModelOutput::tokens:
                    result[o] = concat<T>({out.cls.reshape({B, 1, D}), out.local}, 1);
                    break;
                case io::ModelOutput::token_grid:
                    result[o] = out.local.reshape({B, grid[0], grid[1], grid[2], D}).permute({0, 4, 1, 2, 3});
                    break;
                case io::ModelOutput::cls_attention: {
                    const Index H = class_attention.dim(1);
                    result[o] = class_attention.narrow(2, 1, N).reshape({B, H, grid[0], grid[1], grid[2]});
                    break;
                }
                case io::ModelOutput::logits:  // the interface checked `wanted` against outputs()
                    break;
            }
        }
        return result;
    }

    const void* model_if(const std::type_info& type) const noexcept override {
        return type == typeid(Model) ? &model_ : nullptr;
    }

  private:
    Model model_;
};

// Builds the encoder a description of kind "ct_encoder" asks for and fills it from the file.
template <class T>
std::unique_ptr<io::ModelInstance<T>> load_ct_encoder(const io::ModelDescription& d,
                                                      const io::TensorSource& file, const io::KeyMap& keys,
                                                      const std::string& where, Precision precision) {
    const std::string at = message(where, "metadata \"", io::model_metadata_key, "\": ");
    const models::CTEncoderConfig config =
        ct_encoder_config(io::description_json_field(d.config, "config"), at);
    const std::vector<Index> size(config.input_size.begin(), config.input_size.end());
    if (d.preprocess.input_size != size)
        throw io_error(message(at, "preprocess.input_size ", d.preprocess.input_size,
                               " differs from config.input_size ", size));
    if (d.preprocess.layout != "BCDHW")
        throw io_error(message(at, "preprocess.layout ", quoted(d.preprocess.layout),
                               " does not fit a ct_encoder model (expected \"BCDHW\")"));
    std::optional<models::CTEncoder<T>> model;
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
    return std::make_unique<CTEncoderInstance<T>>(std::move(*model), precision);
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The JSON object of a configuration, as the "config" of a description of kind ct_encoder.
inline nlohmann::json ct_encoder_config_json(const models::CTEncoderConfig& c) { return config_json(c); }

}  // namespace vit3d::io
