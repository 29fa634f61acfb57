#pragma once
// What a Hugging Face folder's config.json means for vit3d: the model_type and architecture picked, their
// settings (with transformers' defaults for keys the file leaves out) turned into a VisionTransformerConfig
// with the reference's semantics, and the key map that renames its tensors. One entry per supported
// model_type in model_types(); anything else is refused, naming what is supported.
//
// Which optional parts the model has follows the weights where transformers would otherwise invent them:
// a ViTModel or DeiTModel folder without pooler weights gets no pooler (transformers would initialise
// one at random), and a head's width is its weight's.

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/io/key_map.hpp"
#include "vit3d/io/key_maps/huggingface.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/tensor_source.hpp"
#include "vit3d/models/vision_transformer.hpp"

namespace vit3d::io::huggingface {

// A config.json object read key by key, each with transformers' default when absent and its type checked;
// `where` (the file) starts every message.
class ConfigReader {
  public:
    ConfigReader(const nlohmann::json& object, std::string where, std::string path = "")
        : object_(object), where_(std::move(where)), path_(std::move(path)) {
        if (!object_.is_object())
            throw io_error(message(where_, path_.empty() ? std::string("the file") : path_,
                                   ": expected a JSON object, got ", vit3d::detail::brief_json(object_)));
    }
    const nlohmann::json* find(const std::string& key) const {
        const auto it = object_.find(key);
        return it == object_.end() || it->is_null() ? nullptr : &*it;
    }
    Index integer(const std::string& key, Index fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_number_integer() || v->get<std::int64_t>() < 1) fail(key, "a positive integer", *v);
        return static_cast<Index>(v->get<std::int64_t>());
    }
    double number(const std::string& key, double fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_number()) fail(key, "a number", *v);
        return v->get<double>();
    }
    bool boolean(const std::string& key, bool fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_boolean()) fail(key, "true or false", *v);
        return v->get<bool>();
    }
    std::string string(const std::string& key, const std::string& fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_string()) fail(key, "a string", *v);
        return v->get<std::string>();
    }
    // An int n (n x n) or a pair [h, w], as image_size and patch_size are given.
    std::array<Index, 2> size2(const std::string& key, Index fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return {fallback, fallback};
        if (v->is_number_integer() && v->get<std::int64_t>() > 0) {
            const auto n = static_cast<Index>(v->get<std::int64_t>());
            return {n, n};
        }
        if (v->is_array() && v->size() == 2 && (*v)[0].is_number_integer() && (*v)[1].is_number_integer() &&
            (*v)[0].get<std::int64_t>() > 0 && (*v)[1].get<std::int64_t>() > 0)
            return {static_cast<Index>((*v)[0].get<std::int64_t>()),
                    static_cast<Index>((*v)[1].get<std::int64_t>())};
        fail(key, "a positive integer or a pair of them", *v);
    }
    // The nested object at `key` (CLIPConfig's vision_config); an empty one when absent.
    ConfigReader child(const std::string& key) const {
        static const nlohmann::json empty = nlohmann::json::object();
        const nlohmann::json* v = find(key);
        return ConfigReader(v ? *v : empty, where_, name(key));
    }
    [[noreturn]] void fail(const std::string& key, const std::string& expected,
                           const nlohmann::json& got) const {
        throw io_error(
            message(where_, name(key), ": expected ", expected, ", got ", vit3d::detail::brief_json(got)));
    }
    std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
    const std::string& where() const { return where_; }

  private:
    const nlohmann::json& object_;
    std::string where_;
    std::string path_;
};

// transformers' activation names (ACT2FN) that vit3d computes.
inline nn::Activation activation_named(const ConfigReader& c, const std::string& key, const char* fallback) {
    const std::string name = c.string(key, fallback);
    static const std::pair<const char*, nn::Activation> known[] = {
        {"gelu", nn::Activation::gelu},
        {"gelu_pytorch_tanh", nn::Activation::gelu_tanh},
        {"gelu_new", nn::Activation::gelu_tanh},  // the same tanh formula, written out
        {"quick_gelu", nn::Activation::quick_gelu},
        {"silu", nn::Activation::silu},
        {"swish", nn::Activation::silu},
        {"relu", nn::Activation::relu},
        {"sigmoid", nn::Activation::sigmoid},
        {"tanh", nn::Activation::tanh},
        {"linear", nn::Activation::identity}};
    std::string listing;
    for (const auto& [n, a] : known) {
        if (name == n) return a;
        listing += message(listing.empty() ? "" : ", ", n);
    }
    throw io_error(message(c.where(), c.name(key), ": vit3d computes the activations ", listing, ", got \"",
                           name, "\""));
}

// What the loader builds from a folder.
struct FolderModel {
    std::string model_type;
    std::string architecture;
    models::VisionTransformerConfig<2> config;
    const KeyMap* keys = nullptr;
};

// The tensors of the folder, for the parts that follow the weights.
struct TensorNames {
    const TensorSource& source;
    bool has(const std::string& name) const { return source.contains(name); }
    Index rows(const std::string& name) const { return source.shape(name).at(0); }
};

// One supported model_type: its architectures (the first is the default when config.json names none) and
// how its settings become a config.
struct ModelType {
    const char* model_type;
    std::vector<const char*> architectures;
    void (*configure)(const ConfigReader& file, const std::string& architecture, const TensorNames& tensors,
                      FolderModel& out);
};

}  // namespace vit3d::io::huggingface

namespace vit3d::detail {

// The settings every transformers ViT shares; `v` is the vision config.
inline void hf_common_settings(const io::huggingface::ConfigReader& v, Index patch_default,
                               double eps_default, const char* act_default,
                               io::huggingface::FolderModel& out) {
    auto& c = out.config;
    c.dim = v.integer("hidden_size", 768);
    c.depth = v.integer("num_hidden_layers", 12);
    c.heads = v.integer("num_attention_heads", 12);
    c.channels = v.integer("num_channels", 3);
    c.input_size = v.size2("image_size", 224);
    c.patch_size = v.size2("patch_size", patch_default);
    c.eps = v.number("layer_norm_eps", eps_default);
    c.activation = io::huggingface::activation_named(v, "hidden_act", act_default);
    c.num_classes = 0;
    c.dynamic_size = true;  // transformers' interpolate_pos_encoding
    c.pos_embed_interpolation = nn::Interpolation::bicubic;
}

inline void hf_configure_vit(const io::huggingface::ConfigReader& f, const std::string& architecture,
                             const io::huggingface::TensorNames& tensors, io::huggingface::FolderModel& out) {
    auto& c = out.config;
    hf_common_settings(f, 16, 1e-12, "gelu", out);
    c.mlp_dim = f.integer("intermediate_size", 3072);
    c.qkv_bias = f.boolean("qkv_bias", true);
    const bool deit = out.model_type == "deit";
    const std::string base =
        architecture.find("ForImageClassification") != std::string::npos ? (deit ? "deit." : "vit.") : "";
    if (tensors.has(base + "pooler.dense.weight")) {
        c.pre_logits_dim = tensors.rows(base + "pooler.dense.weight");
        c.pre_logits_activation = io::huggingface::activation_named(f, "pooler_act", "tanh");
    }
    out.keys = &io::key_maps::transformers_vit();
    if (deit && architecture == "DeiTForImageClassificationWithTeacher") {
        c.distillation_token = true;
        c.num_classes = tensors.rows("cls_classifier.weight");
        out.keys = &io::key_maps::transformers_deit_distilled();
    } else {
        if (deit) c.reg_tokens = 1;  // the distillation token, which no head here reads
        if (tensors.has("classifier.weight")) c.num_classes = tensors.rows("classifier.weight");
    }
}

inline void hf_configure_dinov2(const io::huggingface::ConfigReader& f, const std::string&,
                                const io::huggingface::TensorNames&, io::huggingface::FolderModel& out) {
    auto& c = out.config;
    const bool registers = out.model_type == "dinov2_with_registers";
    hf_common_settings(f, registers ? 16 : 14, 1e-6, "gelu", out);
    const double ratio = f.number("mlp_ratio", 4.0);
    const double width = static_cast<double>(c.dim) * ratio;  // transformers: int(hidden_size * mlp_ratio)
    if (!(width >= 1.0 && width < 1e15))
        f.fail("mlp_ratio", message("a ratio giving an MLP width of at least 1 (hidden_size ", c.dim, ")"),
               nlohmann::json(ratio));
    Index hidden = static_cast<Index>(width);
    if (f.boolean("use_swiglu_ffn", false)) {
        // Dinov2SwiGLUFFN: silu(first half) * second half of one packed projection, its width rounded as
        // transformers rounds it.
        hidden = (static_cast<Index>(static_cast<double>(hidden) * 2.0 / 3.0) + 7) / 8 * 8;
        c.mlp = nn::MlpKind::swiglu_packed;
        c.activation = nn::Activation::silu;
    }
    c.mlp_dim = hidden;
    c.qkv_bias = f.boolean("qkv_bias", true);
    c.layer_scale = true;
    if (registers) {
        c.reg_tokens = f.integer("num_register_tokens", 4);
        c.pos_embed_covers_registers = false;
        c.pos_embed_interpolation = nn::Interpolation::bicubic_antialias;
    }
    out.keys = &io::key_maps::transformers_vit();
}

// The vision config of CLIP's and SigLIP's towers, alone (model_type `tower`, e.g. "clip_vision_model") or
// inside the two-tower model, whose config.json nests it under vision_config; with the settings they share.
inline io::huggingface::ConfigReader hf_vision_tower(const io::huggingface::ConfigReader& f,
                                                     const char* tower, Index patch_default,
                                                     double eps_default, const char* act_default,
                                                     io::huggingface::FolderModel& out) {
    io::huggingface::ConfigReader v = out.model_type == tower ? f : f.child("vision_config");
    hf_common_settings(v, patch_default, eps_default, act_default, out);
    out.config.mlp_dim = v.integer("intermediate_size", 3072);
    return v;
}

inline void hf_configure_clip(const io::huggingface::ConfigReader& f, const std::string&,
                              const io::huggingface::TensorNames& tensors,
                              io::huggingface::FolderModel& out) {
    hf_vision_tower(f, "clip_vision_model", 32, 1e-5, "quick_gelu", out);
    auto& c = out.config;
    c.pre_norm = true;
    c.final_norm = false;  // last_hidden_state is the encoder's output; pooler_output the normed class token
    c.head_norm = true;
    c.patch_bias = false;
    if (tensors.has("visual_projection.weight")) {
        c.num_classes = tensors.rows("visual_projection.weight");
        c.head_bias = false;
    }
    out.keys = &io::key_maps::transformers_clip();
}

inline void hf_configure_siglip(const io::huggingface::ConfigReader& f, const std::string&,
                                const io::huggingface::TensorNames&, io::huggingface::FolderModel& out) {
    const io::huggingface::ConfigReader v =
        hf_vision_tower(f, "siglip_vision_model", 16, 1e-6, "gelu_pytorch_tanh", out);
    out.config.class_token = false;
    out.config.pool = v.boolean("vision_use_head", true) ? models::Pooling::attention : models::Pooling::none;
    out.keys = &io::key_maps::transformers_siglip();
}

}  // namespace vit3d::detail

namespace vit3d::io::huggingface {

inline const std::vector<ModelType>& model_types() {
    static const std::vector<ModelType> types = {
        {"vit", {"ViTModel", "ViTForImageClassification"}, &detail::hf_configure_vit},
        {"deit",
         {"DeiTModel", "DeiTForImageClassification", "DeiTForImageClassificationWithTeacher"},
         &detail::hf_configure_vit},
        {"dinov2", {"Dinov2Model"}, &detail::hf_configure_dinov2},
        {"dinov2_with_registers", {"Dinov2WithRegistersModel"}, &detail::hf_configure_dinov2},
        {"clip", {"CLIPModel"}, &detail::hf_configure_clip},
        {"clip_vision_model",
         {"CLIPVisionModel", "CLIPVisionModelWithProjection"},
         &detail::hf_configure_clip},
        {"siglip", {"SiglipModel"}, &detail::hf_configure_siglip},
        {"siglip_vision_model", {"SiglipVisionModel"}, &detail::hf_configure_siglip},
    };
    return types;
}

// The model a folder's config.json describes, given the folder's tensors.
inline FolderModel folder_model(const nlohmann::json& config_json, const TensorSource& tensors,
                                const std::string& where) {
    const ConfigReader file(config_json, where);
    FolderModel out;
    out.model_type = file.string("model_type", "");
    const ModelType* type = nullptr;
    std::string listing;
    for (const ModelType& t : model_types()) {
        if (out.model_type == t.model_type) type = &t;
        listing += message(listing.empty() ? "" : ", ", t.model_type);
    }
    if (!type)
        throw io_error(message(where, "model_type \"", out.model_type,
                               "\" is not a vision model vit3d loads; supported: ", listing));
    out.architecture = type->architectures.front();
    if (const nlohmann::json* names = file.find("architectures")) {
        if (!names->is_array() || names->size() != 1 || !(*names)[0].is_string())
            file.fail("architectures", "one class name", *names);
        out.architecture = (*names)[0].get<std::string>();
        std::string known;
        bool found = false;
        for (const char* a : type->architectures) {
            found = found || out.architecture == a;
            known += message(known.empty() ? "" : ", ", a);
        }
        if (!found)
            throw io_error(message(where, "architectures: vit3d loads ", known, " for model_type \"",
                                   out.model_type, "\", got \"", out.architecture, "\""));
    }
    type->configure(file, out.architecture, TensorNames{tensors}, out);
    return out;
}

}  // namespace vit3d::io::huggingface
