#pragma once
// Hugging Face transformers' vision models, as their folders name the tensors (huggingface/model_folder.hpp
// loads them). The folder's separate query, key and value projections reach these maps already joined into
// one "qkv" tensor, and SigLIP's pooling head's in_proj already split into "q" and "kv"
// (huggingface/assembled_tensors.hpp): what is left is renaming.
//   - transformers_vit: ViT, DeiT and DINOv2 (with and without registers), whose models share ViT's
//     "embeddings" / "encoder.layer.{i}" scheme, with or without the task model's prefix ("vit.", ...).
//     DeiT's distillation token is a register token here (no head reads it: DeiTModel's pooler and
//     DeiTForImageClassification's classifier read the class token only).
//   - transformers_deit_distilled: DeiTForImageClassificationWithTeacher, whose distillation token has its
//     own classifier (vit3d's distillation_token).
//   - transformers_clip, transformers_siglip: CLIP's and SigLIP's vision towers, alone or in the full
//     two-tower model, whose text tower is skipped. Their tensors are under "vision_model." except in a
//     CLIPVisionModel or SiglipVisionModel saved by transformers 5, which drops the prefix.

#include <initializer_list>
#include <string>
#include <vector>

#include "vit3d/io/key_map.hpp"

namespace vit3d::detail {

inline io::KeyMap rules_map(const char* name, std::vector<std::pair<std::string, std::string>> rules) {
    std::vector<io::KeyMap::Rule> view;
    for (const auto& [pattern, replacement] : rules) view.push_back({pattern.c_str(), replacement.c_str()});
    return io::KeyMap(name, view);
}

// The rules shared by the ViT-like models; `distillation` names where DeiT's distillation token goes.
inline io::KeyMap transformers_vit_map(const char* name, const char* distillation) {
    // The task models put the encoder under their model's name.
    const std::string base = R"(^(?:(?:vit|deit|dinov2|dinov2_with_registers)\.)?)";
    const std::string layer = base + R"(encoder\.layer\.(\d+)\.)";
    std::vector<std::pair<std::string, std::string>> rules = {
        {base + R"(embeddings\.cls_token$)", "cls_token"},
        {base + R"(embeddings\.distillation_token$)", distillation},
        {base + R"(embeddings\.register_tokens$)", "reg_token"},
        {base + R"(embeddings\.mask_token$)", ""},  // masked image modelling only
        {base + R"(embeddings\.position_embeddings$)", "pos_embed"},
        {base + R"(embeddings\.patch_embeddings\.projection\.)", "patch_embed.proj."},
        {layer + R"(attention\.attention\.qkv\.)", "blocks.$1.attn.qkv."},
        {layer + R"(attention\.output\.dense\.)", "blocks.$1.attn.proj."},
        {layer + R"(intermediate\.dense\.)", "blocks.$1.mlp.fc1."},
        {layer + R"(output\.dense\.)", "blocks.$1.mlp.fc2."},
        {layer + R"((?:layernorm_before|norm1)\.)", "blocks.$1.norm1."},
        {layer + R"((?:layernorm_after|norm2)\.)", "blocks.$1.norm2."},
        {layer + R"(layer_scale1\.lambda1$)", "blocks.$1.ls1.gamma"},
        {layer + R"(layer_scale2\.lambda1$)", "blocks.$1.ls2.gamma"},
        {layer + R"(mlp\.(?:fc1|weights_in)\.)", "blocks.$1.mlp.fc1."},
        {layer + R"(mlp\.(?:fc2|weights_out)\.)", "blocks.$1.mlp.fc2."},
        {base + R"(layernorm\.)", "norm."},
        {base + R"(pooler\.dense\.)", "pre_logits.fc."},
        {R"(^(?:classifier|cls_classifier)\.)", "head."},
        {R"(^distillation_classifier\.)", "head_dist."}};
    return rules_map(name, rules);
}

// The encoder of CLIP's and SigLIP's vision towers.
inline std::vector<std::pair<std::string, std::string>> transformers_tower_rules() {
    const std::string layer = R"(^(?:vision_model\.)?encoder\.layers\.(\d+)\.)";
    return {{R"(^(?:vision_model\.)?embeddings\.patch_embedding\.)", "patch_embed.proj."},
            {R"(^(?:vision_model\.)?embeddings\.position_embedding\.weight$)", "pos_embed"},
            {R"(^(?:vision_model\.)?embeddings\.position_ids$)", ""},  // a buffer: 0, 1, 2, ...
            {layer + R"(self_attn\.qkv\.)", "blocks.$1.attn.qkv."},
            {layer + R"(self_attn\.out_proj\.)", "blocks.$1.attn.proj."},
            {layer + R"(layer_norm1\.)", "blocks.$1.norm1."},
            {layer + R"(layer_norm2\.)", "blocks.$1.norm2."},
            {layer + R"(mlp\.fc1\.)", "blocks.$1.mlp.fc1."},
            {layer + R"(mlp\.fc2\.)", "blocks.$1.mlp.fc2."},
            // The text tower and the contrastive head of CLIPModel / SiglipModel.
            {R"(^text_model\.)", ""},
            {R"(^text_projection\.)", ""},
            {R"(^logit_scale$)", ""},
            {R"(^logit_bias$)", ""}};
}

}  // namespace vit3d::detail

namespace vit3d::io::key_maps {

inline const KeyMap& transformers_vit() {
    static const KeyMap map = detail::transformers_vit_map("transformers_vit", "reg_token");
    return map;
}

inline const KeyMap& transformers_deit_distilled() {
    static const KeyMap map = detail::transformers_vit_map("transformers_deit_distilled", "dist_token");
    return map;
}

// CLIP: the class token, a norm before the encoder, the last hidden state left un-normed, the class token
// normed for pooler_output (vit3d's head_norm) and projected (the head, without bias).
inline const KeyMap& transformers_clip() {
    static const KeyMap map = [] {
        auto rules = detail::transformers_tower_rules();
        rules.insert(rules.begin(), {{R"(^(?:vision_model\.)?embeddings\.class_embedding$)", "cls_token"},
                                     {R"(^(?:vision_model\.)?pre_layrnorm\.)", "norm_pre."},
                                     {R"(^(?:vision_model\.)?post_layernorm\.)", "head_norm."},
                                     {R"(^visual_projection\.)", "head."}});
        return detail::rules_map("transformers_clip", rules);
    }();
    return map;
}

// SigLIP: no class token, the last hidden state normed, pooled by the attention-pooling head.
inline const KeyMap& transformers_siglip() {
    static const KeyMap map = [] {
        auto rules = detail::transformers_tower_rules();
        rules.insert(rules.begin(),
                     {{R"(^(?:vision_model\.)?post_layernorm\.)", "norm."},
                      {R"(^(?:vision_model\.)?head\.probe$)", "attn_pool.latent"},
                      {R"(^(?:vision_model\.)?head\.attention\.q\.)", "attn_pool.q."},
                      {R"(^(?:vision_model\.)?head\.attention\.kv\.)", "attn_pool.kv."},
                      {R"(^(?:vision_model\.)?head\.attention\.out_proj\.)", "attn_pool.proj."},
                      {R"(^(?:vision_model\.)?head\.layernorm\.)", "attn_pool.norm."},
                      {R"(^(?:vision_model\.)?head\.mlp\.)", "attn_pool.mlp."}});
        return detail::rules_map("transformers_siglip", rules);
    }();
    return map;
}

}  // namespace vit3d::io::key_maps
