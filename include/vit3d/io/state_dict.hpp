#pragma once
// Loading a module's parameters from a safetensors file written from a PyTorch state_dict, whichever
// library's naming it uses. vit3d's own names are timm's (patch_embed.proj, cls_token, pos_embed,
// blocks.{i}.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2, norm, head); WeightSource picks the
// renaming rules of the library the checkpoint comes from. Tensors whose shapes differ only by unit axes
// (vit-pytorch's [N, D] position table for vit3d's [1, N, D]) are reshaped; any other mismatch, a missing
// tensor or (strict) an unused one is an io_error naming the keys and shapes.

#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::io {

enum class WeightSource {
    vit3d,
    timm,
    torchvision,
    vit_pytorch,
    monai,
    reg2rg,
    torch_mha,
    torch_encoder_layer
};

namespace detail {

struct RenameRule {
    std::regex pattern;
    std::string replacement;  // empty: the tensor is not a parameter of the vit3d model (skipped)
};

inline std::vector<RenameRule> rules_for(WeightSource source) {
    auto r = [](const char* from, const char* to) { return RenameRule{std::regex(from), to}; };
    switch (source) {
        case WeightSource::vit3d:
        case WeightSource::timm:
            return {r(R"(^fc_norm\.)", "head_norm.")};
        case WeightSource::torchvision:
            return {r(R"(^class_token$)", "cls_token"),
                    r(R"(^conv_proj\.)", "patch_embed.proj."),
                    r(R"(^encoder\.pos_embedding$)", "pos_embed"),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.)", "blocks.$1.norm1."),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.)", "blocks.$1.norm2."),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_)",
                      "blocks.$1.attn.qkv."),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.)",
                      "blocks.$1.attn.proj."),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.)", "blocks.$1.mlp.fc1."),
                    r(R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.)", "blocks.$1.mlp.fc2."),
                    r(R"(^encoder\.ln\.)", "norm."),
                    r(R"(^heads\.head\.)", "head.")};
        case WeightSource::vit_pytorch:  // vit.py, vit_3d.py, simple_vit*.py (>= 1.4: no PreNorm wrapper)
            return {r(R"(^cls_token$)", "cls_token"),
                    r(R"(^pos_embedding$)", "pos_embed"),
                    r(R"(^to_patch_embedding\.1\.)", "patch_embed.norm_in."),
                    r(R"(^to_patch_embedding\.2\.)", "patch_embed.proj."),
                    r(R"(^to_patch_embedding\.3\.)", "patch_embed.norm_out."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.norm\.)", "blocks.$1.norm1."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.to_qkv\.)", "blocks.$1.attn.qkv."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.to_out\.(0\.)?)", "blocks.$1.attn.proj."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.net\.0\.)", "blocks.$1.norm2."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.net\.1\.)", "blocks.$1.mlp.fc1."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.net\.[34]\.)", "blocks.$1.mlp.fc2."),
                    r(R"(^transformer\.norm\.)", "norm."),
                    r(R"(^mlp_head\.0\.(weight|bias)$)", "head_norm.$1"),  // vit_3d: LayerNorm + Linear
                    r(R"(^mlp_head\.1\.)", "head."),
                    r(R"(^mlp_head\.(weight|bias)$)", "head.$1"),  // vit.py: Linear
                    r(R"(^linear_head\.)", "head.")};
        case WeightSource::reg2rg:  // the Reg2RG / RadFM ViT3D (PreNorm wrappers, factorized positions)
            return {r(R"(^to_patch_embedding\.1\.)", "patch_embed.norm_in."),
                    r(R"(^to_patch_embedding\.2\.)", "patch_embed.proj."),
                    r(R"(^to_patch_embedding\.3\.)", "patch_embed.norm_out."),
                    r(R"(^pos_embedding\.)", "pos_embed."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.norm\.)", "blocks.$1.norm1."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.)", "blocks.$1.attn.qkv."),
                    r(R"(^transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.)", "blocks.$1.attn.proj."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.norm\.)", "blocks.$1.norm2."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.fn\.net\.0\.)", "blocks.$1.mlp.fc1."),
                    r(R"(^transformer\.layers\.(\d+)\.1\.fn\.net\.3\.)", "blocks.$1.mlp.fc2.")};
        case WeightSource::monai:
            return {r(R"(^patch_embedding\.patch_embeddings\.1\.)", "patch_embed.proj."),  // perceptron
                    r(R"(^patch_embedding\.patch_embeddings\.)", "patch_embed.proj."),     // conv
                    r(R"(^patch_embedding\.position_embeddings$)", "pos_embed"),
                    r(R"(^blocks\.(\d+)\.attn\.out_proj\.)", "blocks.$1.attn.proj."),
                    r(R"(^blocks\.(\d+)\.mlp\.linear1\.)", "blocks.$1.mlp.fc1."),
                    r(R"(^blocks\.(\d+)\.mlp\.linear2\.)", "blocks.$1.mlp.fc2."),
                    r(R"(^blocks\.(\d+)\.(norm_cross_attn|cross_attn)\..*)",
                      ""),  // unused unless cross-attention
                    r(R"(^classification_head\.0\.)", "head.")};
        case WeightSource::torch_mha:
            return {r(R"(^in_proj_)", "qkv."), r(R"(^out_proj\.)", "proj.")};
        case WeightSource::torch_encoder_layer:
            return {r(R"(^self_attn\.in_proj_)", "attn.qkv."), r(R"(^self_attn\.out_proj\.)", "attn.proj."),
                    r(R"(^linear1\.)", "mlp.fc1."), r(R"(^linear2\.)", "mlp.fc2.")};
    }
    return {};
}

inline Shape without_unit_axes(const Shape& s) {
    Shape out;
    for (Index len : s)
        if (len != 1) out.push_back(len);
    return out;
}

}  // namespace detail

// The vit3d name of a reference state_dict key ("" when vit3d has no such parameter and skips it).
inline std::string vit3d_name(WeightSource source, const std::string& key) {
    for (const auto& rule : detail::rules_for(source)) {
        if (!std::regex_search(key, rule.pattern)) continue;
        if (rule.replacement.empty()) return "";
        return std::regex_replace(key, rule.pattern, rule.replacement,
                                  std::regex_constants::format_first_only);
    }
    return key;
}

struct LoadReport {
    std::vector<std::string> loaded;   // vit3d names
    std::vector<std::string> skipped;  // file keys vit3d has no parameter for (by rule)
};

// Fills every parameter of `module` from the tensors of `file` whose names start with `file_prefix`
// (the prefix is removed before renaming). strict: every remaining file tensor must be used.
template <class T, class Module>
LoadReport load_state_dict(Module& module, const Safetensors& file, WeightSource source,
                           const std::string& file_prefix = "", bool strict = true) {
    const std::string where = "vit3d::io::load_state_dict(" + detail::quoted(file.source_name()) + "): ";
    LoadReport report;
    std::map<std::string, std::string> by_vit3d_name;  // vit3d name -> file key
    for (const std::string& key : file.names()) {
        if (key.compare(0, file_prefix.size(), file_prefix) != 0) continue;
        const std::string name = vit3d_name(source, key.substr(file_prefix.size()));
        if (name.empty()) {
            report.skipped.push_back(key);
            continue;
        }
        if (!by_vit3d_name.emplace(name, key).second)
            throw io_error(where + "tensors " + detail::quoted(by_vit3d_name[name]) + " and " +
                           detail::quoted(key) + " both map to " + detail::quoted(name));
    }
    module.visit_parameters([&](const std::string& name, Tensor<T>& parameter) {
        const auto it = by_vit3d_name.find(name);
        if (it == by_vit3d_name.end())
            throw io_error(where + "missing tensor for parameter " + detail::quoted(name) + " of shape " +
                           shape_to_string(parameter.shape()));
        const Shape& stored = file.info(it->second).shape;
        if (stored != parameter.shape() &&
            detail::without_unit_axes(stored) != detail::without_unit_axes(parameter.shape()))
            throw io_error(where + "tensor " + detail::quoted(it->second) + " has shape " +
                           shape_to_string(stored) + ", parameter " + detail::quoted(name) + " expects " +
                           shape_to_string(parameter.shape()));
        parameter = file.get<T>(it->second).reshape(parameter.shape());
        report.loaded.push_back(name);
        by_vit3d_name.erase(it);
    });
    if (strict && !by_vit3d_name.empty()) {
        std::string unused;
        for (const auto& entry : by_vit3d_name)
            unused += (unused.empty() ? "" : ", ") + detail::quoted(entry.second);
        throw io_error(where + "tensors not used by the model: " + unused);
    }
    return report;
}

}  // namespace vit3d::io
