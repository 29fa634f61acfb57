#pragma once
// Single torch.nn modules: nn.MultiheadAttention onto nn::MultiHeadAttention, nn.TransformerEncoderLayer
// onto nn::EncoderBlock (post-norm by default: norm1 / norm2 keep their names).

#include "vit3d/io/key_map.hpp"

namespace vit3d::io::key_maps {

inline const KeyMap& torch_mha() {
    static const KeyMap map("torch_mha", {{R"(^in_proj_)", "qkv."}, {R"(^out_proj\.)", "proj."}});
    return map;
}

inline const KeyMap& torch_encoder_layer() {
    static const KeyMap map("torch_encoder_layer", {{R"(^self_attn\.in_proj_)", "attn.qkv."},
                                                    {R"(^self_attn\.out_proj\.)", "attn.proj."},
                                                    {R"(^linear1\.)", "mlp.fc1."},
                                                    {R"(^linear2\.)", "mlp.fc2."}});
    return map;
}

}  // namespace vit3d::io::key_maps
