// The model configurations as JSON (io/model_kinds/config_json.hpp), read and written from each config's
// field list (core/fields.hpp): every field round-trips, a missing (unless it may be absent), unknown or
// mistyped field is refused by name, and the JSON of a weights file is the one schema version 1 fixes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/io/model_kinds/config_json.hpp>
#include <vit3d/io/model_kinds/ct_encoder.hpp>
#include <vit3d/io/model_kinds/vision_transformer.hpp>

namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using vit3d::io_error;
namespace io = vit3d::io;
namespace models = vit3d::models;
namespace nn = vit3d::nn;

// Every field changed from its default.
template <std::size_t N>
models::VisionTransformerConfig<N> changed_vision_transformer() {
    models::VisionTransformerConfig<N> c;
    for (std::size_t i = 0; i < N; ++i) {
        c.input_size[i] = 12 + 4 * static_cast<vit3d::Index>(i);
        c.patch_size[i] = 4;
    }
    c.channels = 2;
    c.dim = 24;
    c.depth = 3;
    c.heads = 4;
    c.head_dim = 5;
    c.mlp_dim = 7;
    c.num_classes = 9;
    c.class_token = false;
    c.pool = models::Pooling::mean;
    c.mean_includes_class_token = true;
    c.pos_embed = models::PosEmbedKind::sincos;
    c.sincos = nn::SinCosVariant::vit_pytorch;
    c.pos_embed_covers_class_token = false;
    c.projection = nn::PatchProjection::unfold;
    c.patch_norms = true;
    c.norm_placement = nn::NormPlacement::post;
    c.activation = nn::Activation::gelu_tanh;
    c.eps = 1.25e-7;
    c.qkv_bias = false;
    c.proj_bias = false;
    c.final_norm = false;
    c.head_norm = true;
    c.head_activation = nn::Activation::tanh;
    c.reg_tokens = 2;
    c.distillation_token = true;
    c.pre_norm = true;
    c.patch_bias = false;
    c.patch_norm = true;
    c.norm = nn::NormKind::rms_norm;
    c.norm_bias = false;
    c.layer_scale = true;
    c.qk_norm = true;
    c.attn_norm = true;
    c.mlp = nn::MlpKind::swiglu;
    c.mlp_bias = false;
    c.mlp_norm = true;
    c.pool_mlp_dim = 11;
    c.drop_remainder = true;
    c.qkv_split = true;
    c.k_bias = false;
    c.pool_heads = 3;
    c.rope = true;
    c.rope_variant = nn::RotaryVariant::dinov3;
    c.rope_temperature = 100.0;
    c.rope_grid_indexing = nn::GridIndexing::xy;
    c.rope_grid_offset = 0.5;
    c.rope_ref_feat_shape = {6, 7};
    c.rope_rotate_half = true;
    c.dynamic_size = true;
    c.pos_embed_interpolation = nn::Interpolation::linear;
    c.mlp_layer_scale = false;
    c.block_kv_heads = {4, 2, 1};
    c.pos_embed_covers_registers = false;
    c.pre_logits_dim = 13;
    c.pre_logits_activation = nn::Activation::silu;
    c.head_bias = false;
    return c;
}

models::CTEncoderConfig changed_ct_encoder() {
    models::CTEncoderConfig c;
    c.input_size = {8, 32, 48};
    c.patch_size = {2, 8, 8};
    c.channels = 2;
    c.dim = 24;
    c.depth = 3;
    c.heads = 4;
    c.mlp_dim = 7;
    c.slice_levels = 5;
    c.regions = 6;
    c.pos_embed = models::PosEmbedKind::sincos;
    c.sincos = nn::SinCosVariant::vit_pytorch;
    c.pool = models::Pooling::mean;
    c.eps = 3e-5;
    c.qkv_bias = false;
    c.projection_dim = 16;
    return c;
}

template <class Config>
Config read(const nlohmann::json& json) {
    return vit3d::detail::config_from_json<Config>(json, "where: ");
}

template <class Config>
std::vector<std::string> field_names() {
    std::vector<std::string> names;
    Config().visit_fields([&](const auto& field) { names.emplace_back(field.name); });
    return names;
}

template <class Config>
bool may_be_absent(const std::string& name) {
    bool optional = false;
    Config().visit_fields(
        [&](const auto& field) { optional = optional || (name == field.name && field.optional); });
    return optional;
}

// Writing `changed` and reading it back gives it again, and each of its fields differs from the default:
// every field made the trip.
template <class Config>
void expect_round_trip(const Config& changed) {
    const nlohmann::json written = io::config_json(changed);
    const nlohmann::json defaults = io::config_json(Config{});
    ASSERT_EQ(written.size(), field_names<Config>().size());
    for (const std::string& name : field_names<Config>())
        EXPECT_NE(written.at(name), defaults.at(name)) << name << " is not changed from its default";
    EXPECT_EQ(io::config_json(read<Config>(written)), written);
    EXPECT_EQ(io::config_json(read<Config>(nlohmann::json::parse(written.dump()))), written);
}

TEST(ConfigJson, EveryFieldRoundTrips) {
    expect_round_trip(changed_vision_transformer<2>());
    expect_round_trip(changed_vision_transformer<3>());
    expect_round_trip(changed_ct_encoder());
}

template <class Config>
void expect_refused(const nlohmann::json& json, const std::string& message) {
    EXPECT_THAT([&] { read<Config>(json); }, ThrowsMessage<io_error>(HasSubstr("where: " + message)))
        << json.dump();
}

// Each field missing, and each field of a wrong type: refused, naming the field.
template <class Config>
void expect_every_field_checked(const Config& config) {
    const nlohmann::json good = io::config_json(config);
    for (const std::string& name : field_names<Config>()) {
        SCOPED_TRACE(name);
        nlohmann::json missing = good;
        missing.erase(name);
        if (may_be_absent<Config>(name)) {  // a file written before the field: its default
            nlohmann::json with_default = good;
            with_default[name] = io::config_json(Config{})[name];
            EXPECT_EQ(io::config_json(read<Config>(missing)), with_default);
        } else {
            expect_refused<Config>(missing, "missing field \"config." + name + "\"");
        }
        nlohmann::json mistyped = good;
        mistyped[name] = good[name].is_string() ? nlohmann::json(7) : nlohmann::json("7");
        expect_refused<Config>(mistyped, "config." + name + ": expected ");
        nlohmann::json null = good;
        null[name] = nullptr;
        expect_refused<Config>(null, "config." + name + ": expected ");
    }
    nlohmann::json extra = good;
    extra["surprise"] = 1;
    expect_refused<Config>(extra, "unknown field \"config.surprise\"");
    expect_refused<Config>(nlohmann::json::array(), "config: expected a JSON object, got array []");
}

TEST(ConfigJson, AMissingUnknownOrMistypedFieldIsRefusedByName) {
    expect_every_field_checked(changed_vision_transformer<2>());
    expect_every_field_checked(changed_vision_transformer<3>());
    expect_every_field_checked(changed_ct_encoder());
}

TEST(ConfigJson, ValuesAreCheckedAsTheSchemaSays) {
    using Vit = models::VisionTransformerConfig<2>;
    const nlohmann::json good = io::config_json(changed_vision_transformer<2>());
    const auto with = [&](const char* name, nlohmann::json value) {
        nlohmann::json j = good;
        j[name] = std::move(value);
        return j;
    };
    expect_refused<Vit>(with("dim", 0), "config.dim: expected a positive integer, got 0");
    expect_refused<Vit>(with("depth", -1), "config.depth: expected a non-negative integer, got -1");
    expect_refused<Vit>(with("depth", 1.5), "config.depth: expected a non-negative integer, got 1.5");
    expect_refused<Vit>(with("eps", 0), "config.eps: expected a positive number, got 0");
    expect_refused<Vit>(with("eps", "1e-6"), "config.eps: expected a finite number, got string \"1e-6\"");
    expect_refused<Vit>(with("input_size", {8, 8, 8}),
                        "config.input_size: expected an array of 2 positive integers, got array [8,8,8]");
    expect_refused<Vit>(with("patch_size", {4, 0}),
                        "config.patch_size: expected an array of 2 positive integers, got array [4,0]");
    expect_refused<Vit>(
        with("pool", "avg"),
        "config.pool: expected one of \"cls\", \"mean\", \"max\", \"mean_max\", \"attention\", \"none\", "
        "got \"avg\"");
    expect_refused<Vit>(
        with("activation", "GELU"),
        "config.activation: expected one of \"gelu\", \"gelu_tanh\", \"quick_gelu\", \"silu\", \"sigmoid\", "
        "\"relu\", \"tanh\", "
        "\"identity\", got \"GELU\"");
    expect_refused<Vit>(with("qkv_bias", 1), "config.qkv_bias: expected true or false, got 1");
    expect_refused<models::CTEncoderConfig>(
        [] {
            nlohmann::json j = io::config_json(changed_ct_encoder());
            j["slice_levels"] = 0;
            return j;
        }(),
        "config.slice_levels: expected a positive integer, got 0");
}

// Schema version 1, as weights files hold it: the names and the form of every value. A change here is a
// change of the schema (and of every file save_model writes); fields added since may be absent from a file.
TEST(ConfigJson, TheJsonIsSchemaVersionOne) {
    EXPECT_EQ(
        io::config_json(changed_vision_transformer<2>()).dump(),
        R"({"activation":"gelu_tanh","attn_norm":true,"block_kv_heads":[4,2,1],"channels":2,)"
        R"("class_token":false,"depth":3,"dim":24,)"
        R"("distillation_token":true,"drop_remainder":true,"dynamic_size":true,"eps":1.25e-07,"final_norm":false,)"
        R"("head_activation":"tanh","head_bias":false,"head_dim":5,"head_norm":true,"heads":4,"input_size":[12,16],)"
        R"("k_bias":false,"layer_scale":true,"mean_includes_class_token":true,)"
        R"("mlp":"swiglu","mlp_bias":false,"mlp_dim":7,"mlp_layer_scale":false,"mlp_norm":true,)"
        R"("norm":"rms_norm","norm_bias":false,)"
        R"("norm_placement":"post","num_classes":9,"patch_bias":false,"patch_norm":true,"patch_norms":true,)"
        R"("patch_size":[4,4],"pool":"mean","pool_heads":3,"pool_mlp_dim":11,"pos_embed":"sincos",)"
        R"("pos_embed_covers_class_token":false,"pos_embed_covers_registers":false,)"
        R"("pos_embed_interpolation":"linear","pre_logits_activation":"silu","pre_logits_dim":13,"pre_norm":true,)"
        R"("proj_bias":false,"projection":"unfold",)"
        R"("qk_norm":true,"qkv_bias":false,"qkv_split":true,"reg_tokens":2,"rope":true,)"
        R"("rope_grid_indexing":"xy","rope_grid_offset":0.5,"rope_ref_feat_shape":[6,7],)"
        R"("rope_rotate_half":true,"rope_temperature":100.0,"rope_variant":"dinov3","sincos":"vit_pytorch"})");
    EXPECT_EQ(io::config_json(models::CTEncoderConfig{}).dump(),
              R"({"channels":1,"depth":12,"dim":768,"eps":1e-06,"heads":12,"input_size":[64,512,512],)"
              R"("mlp_dim":3072,"patch_size":[4,16,16],"pool":"cls","pos_embed":"factorized3d",)"
              R"("projection_dim":0,"qkv_bias":true,"regions":20,"sincos":"mae_monai","slice_levels":32})");
    // The named writers are the same.
    EXPECT_EQ(io::vision_transformer_config_json(changed_vision_transformer<3>()),
              io::config_json(changed_vision_transformer<3>()));
    EXPECT_EQ(io::ct_encoder_config_json(changed_ct_encoder()), io::config_json(changed_ct_encoder()));
}

}  // namespace
