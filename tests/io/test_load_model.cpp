// io::load_model: the round trip from each reference family (tests/fixtures/make_roundtrip_fixtures.py built
// the models with the real packages, exported them with tools/export_weights.py, and ran them) to the same
// outputs in vit3d; every error a file can cause, each naming what is wrong; and the memory a load takes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/save_model.hpp>

#include "support/fixtures.hpp"
#include "support/tensor_testing.hpp"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace models = vit3d::models;

const std::string kRoundtrip = std::string(VIT3D_TEST_FIXTURE_DIR) + "/roundtrip/";

// ---- round trips ------------------------------------------------------------------------------------------

struct Case {
    const char* name;       // make_roundtrip_fixtures.py's case
    const char* precision;  // f32, f64, bf16
    const char* family;
    const char* kind;
    Shape input_shape;
};

const std::vector<Case>& cases() {
    static const std::vector<Case> all = {
        {"torchvision_vit", "f32", "torchvision", "vit2d", {3, 32, 32}},
        {"torchvision_vit", "f64", "torchvision", "vit2d", {3, 32, 32}},
        {"timm_vit_token", "f32", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_token", "f64", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_token", "bf16", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_avg", "f32", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_avg", "f64", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_no_class_token", "f32", "timm", "vit2d", {3, 32, 32}},
        {"timm_vit_no_class_token", "f64", "timm", "vit2d", {3, 32, 32}},
        {"vit_pytorch_vit", "f32", "vit_pytorch", "vit2d", {3, 32, 32}},
        {"vit_pytorch_vit", "f64", "vit_pytorch", "vit2d", {3, 32, 32}},
        {"vit_pytorch_vit_mean", "f32", "vit_pytorch", "vit2d", {2, 16, 32}},
        {"vit_pytorch_vit_mean", "f64", "vit_pytorch", "vit2d", {2, 16, 32}},
        {"vit_pytorch_simple_vit", "f32", "vit_pytorch_simple", "vit2d", {3, 32, 32}},
        {"vit_pytorch_vit3d", "f32", "vit_pytorch_3d", "vit3d", {1, 8, 16, 16}},
        {"vit_pytorch_vit3d", "f64", "vit_pytorch_3d", "vit3d", {1, 8, 16, 16}},
        {"vit_pytorch_simple_vit3d", "f32", "vit_pytorch_simple_3d", "vit3d", {1, 8, 16, 16}},
        {"monai_vit", "f32", "monai", "vit3d", {1, 16, 16, 8}},
        {"monai_vit", "f64", "monai", "vit3d", {1, 16, 16, 8}},
        {"monai_vit_2d_perceptron", "f32", "monai", "vit2d", {3, 16, 24}},
        {"monai_vit_2d_perceptron", "f64", "monai", "vit2d", {3, 16, 24}},
        {"monai_vit_features", "f32", "monai", "vit3d", {2, 16, 16, 16}},
        {"monai_vit_features", "f64", "monai", "vit3d", {2, 16, 16, 16}},
        {"reg2rg_vit3d", "f32", "reg2rg", "vit3d", {1, 16, 16, 8}},
        {"reg2rg_vit3d", "f64", "reg2rg", "vit3d", {1, 16, 16, 8}},
        {"ct_encoder", "f32", "ct_encoder", "ct_encoder", {1, 8, 32, 32}},
        {"ct_encoder", "f64", "ct_encoder", "ct_encoder", {1, 8, 32, 32}},
    };
    return all;
}

std::string case_id(const Case& c) { return std::string(c.name) + "_" + c.precision; }
void PrintTo(const Case& c, std::ostream* os) { *os << case_id(c); }

io::ModelOutput output_named(const std::string& name) {
    for (io::ModelOutput o : {io::ModelOutput::logits, io::ModelOutput::pooled, io::ModelOutput::tokens,
                              io::ModelOutput::token_grid, io::ModelOutput::cls_attention})
        if (name == io::output_name(o)) return o;
    ADD_FAILURE() << "unknown output " << name;
    return io::ModelOutput::tokens;
}

// max |actual - expected| / max(1, max |expected|), for the report.
template <class T>
double scaled_error(const Tensor<T>& actual, const Tensor<T>& expected) {
    double scale = 1, worst = 0;
    for (Index i = 0; i < expected.size(); ++i) {
        scale = std::max(scale, std::abs(double(expected.data()[i])));
        worst = std::max(worst, std::abs(double(actual.data()[i]) - double(expected.data()[i])));
    }
    return worst / scale;
}

// Loads the exported file as T and compares every output the model gives with the reference's.
// `tolerance_of_T`: compare at T's parity tolerance (false: at float's, for a file read at another
// precision).
template <class T>
void check_round_trip(const Case& c, io::FileAccess access = io::FileAccess::map) {
    SCOPED_TRACE(case_id(c));
    const auto model = io::load_model<T>(kRoundtrip + case_id(c) + ".safetensors", {access});
    EXPECT_EQ(model.family(), c.family);
    EXPECT_EQ(model.kind(), c.kind);
    EXPECT_EQ(model.input_shape(), c.input_shape);
    const io::Safetensors reference = io::Safetensors::read(kRoundtrip + case_id(c) + ".ref.safetensors");
    std::set<std::string> expected_outputs, given_outputs;
    for (const std::string& key : reference.names())
        if (key.rfind("out.", 0) == 0) expected_outputs.insert(key.substr(4));
    std::vector<io::ModelOutput> wanted;
    for (io::ModelOutput o : model.outputs()) {
        given_outputs.insert(io::output_name(o));
        wanted.push_back(o);
    }
    EXPECT_EQ(given_outputs, expected_outputs) << "the outputs the model gives are the reference's";
    const auto results = model.forward(reference.get<T>("in.x"), wanted);
    for (const std::string& name : expected_outputs) {
        if (!given_outputs.count(name)) continue;
        const Tensor<T> expected = reference.get<T>("out." + name);
        const Tensor<T>& actual = results.at(output_named(name));
        EXPECT_MATCHES_REFERENCE(actual, expected) << name;
        if (actual.shape() == expected.shape())
            std::printf("[round trip] %-32s %-6s %-13s max |err| / scale = %.2e\n", case_id(c).c_str(),
                        sizeof(T) == 4 ? "float" : "double", name.c_str(), scaled_error(actual, expected));
    }
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, ExportedFileLoadsAndGivesTheReferenceOutputs) {
    const Case& c = GetParam();
    if (std::string(c.precision) == "f64") {
        check_round_trip<double>(c);
    } else {
        check_round_trip<float>(c);  // f32, and bf16 weights widened to float
    }
}

INSTANTIATE_TEST_SUITE_P(Families, RoundTrip, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_id(info.param); });

TEST(RoundTripFixtures, EveryFixtureOnDiskIsChecked) {
    std::set<std::string> listed, on_disk;
    for (const Case& c : cases()) listed.insert(case_id(c));
    for (const auto& entry : std::filesystem::directory_iterator(kRoundtrip)) {
        const std::string file = entry.path().filename().string();
        const std::string suffix = ".ref.safetensors";
        if (file.size() > suffix.size() &&
            file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0)
            on_disk.insert(file.substr(0, file.size() - suffix.size()));
    }
    EXPECT_EQ(listed, on_disk);
}

TEST(RoundTripFixtures, StreamedReadsGiveWhatTheMappingGives) {
    const Case& c = cases().front();
    const auto mapped = io::load_model<float>(kRoundtrip + case_id(c) + ".safetensors");
    const auto streamed =
        io::load_model<float>(kRoundtrip + case_id(c) + ".safetensors", {io::FileAccess::stream});
    const Tensor<float> x = Tensor<float>::randn({1, 3, 32, 32}, 3);
    EXPECT_TENSOR_EQ(mapped.forward(x, io::ModelOutput::logits),
                     streamed.forward(x, io::ModelOutput::logits));
}

// A float64 file read as float (rounded once) and a float32 file read as double (exact) both still match.
TEST(RoundTripFixtures, FilesLoadAtTheOtherPrecisionToo) {
    const io::Safetensors ref64 = io::Safetensors::read(kRoundtrip + "monai_vit_f64.ref.safetensors");
    const auto as_float = io::load_model<float>(kRoundtrip + "monai_vit_f64.safetensors");
    EXPECT_MATCHES_REFERENCE(as_float.forward(ref64.get<float>("in.x"), io::ModelOutput::logits),
                             ref64.get<float>("out.logits"));
    const io::Safetensors ref32 = io::Safetensors::read(kRoundtrip + "monai_vit_f32.ref.safetensors");
    const auto as_double = io::load_model<double>(kRoundtrip + "monai_vit_f32.safetensors");
    const Tensor<double> logits = as_double.forward(ref32.get<double>("in.x"), io::ModelOutput::logits);
    const Tensor<float> expected = ref32.get<float>("out.logits");
    for (Index i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits.data()[i], expected.data()[i], 1e-5);
}

TEST(LoadedModel, SaysWhatItIs) {
    const auto model = io::load_model<float>(kRoundtrip + "monai_vit_f32.safetensors");
    EXPECT_EQ(model.source(), kRoundtrip + "monai_vit_f32.safetensors");
    EXPECT_EQ(model.preprocess().layout, "BCHWD");
    EXPECT_EQ(model.preprocess().input_size, (std::vector<Index>{16, 16, 8}));
    ASSERT_TRUE(model.preprocess().intensity_window.has_value());
    EXPECT_EQ(model.preprocess().intensity_window->low, -1000);
    EXPECT_EQ(model.preprocess().intensity_window->high, 1000);
    EXPECT_FALSE(model.preprocess().mean.has_value());
    EXPECT_EQ(model.description().key_map, "monai");
    EXPECT_EQ(io::description_json_field(model.description().config, "config").at("head_activation"), "tanh");
    EXPECT_TRUE(model.gives(io::ModelOutput::cls_attention));
    const auto* vit = model.get_if<models::ViT3D<float>>();
    ASSERT_NE(vit, nullptr);
    EXPECT_EQ(vit->config.dim, 24);
    EXPECT_EQ(model.get_if<models::ViT<float>>(), nullptr);
    EXPECT_EQ(model.parameter_count(), vit3d::nn::count_parameters(*vit));

    const auto tv = io::load_model<float>(kRoundtrip + "torchvision_vit_f32.safetensors");
    EXPECT_EQ(tv.preprocess().channel_order, std::optional<std::string>("RGB"));
    EXPECT_EQ(tv.preprocess().mean, (std::optional<std::vector<double>>({0.485, 0.456, 0.406})));
    EXPECT_NEAR(*tv.preprocess().rescale, 1.0 / 255, 1e-15);
    EXPECT_EQ(io::description_json_field(tv.description().source, "source").at("class"),
              "torchvision.models.vision_transformer.VisionTransformer");
}

TEST(LoadedModel, RefusesOutputsItCannotGiveAndInputsOfTheWrongShape) {
    const auto reg2rg = io::load_model<float>(kRoundtrip + "reg2rg_vit3d_f32.safetensors");
    EXPECT_EQ(reg2rg.outputs(),
              (std::vector<io::ModelOutput>{io::ModelOutput::tokens, io::ModelOutput::token_grid}));
    const Tensor<float> x = Tensor<float>::randn({1, 1, 16, 16, 8}, 1);
    EXPECT_THAT([&] { reg2rg.forward(x, io::ModelOutput::logits); },
                ThrowsMessage<vit3d::config_error>(
                    AllOf(HasSubstr("this reg2rg vit3d model gives no logits (it has no head)"),
                          HasSubstr("it gives tokens, token_grid"))));
    EXPECT_THAT([&] { reg2rg.forward(x, io::ModelOutput::cls_attention); },
                ThrowsMessage<vit3d::config_error>(HasSubstr("no cls_attention")));
    EXPECT_THAT(
        [&] {
            reg2rg.forward(Tensor<float>::randn({1, 1, 16, 8, 16}, 1), io::ModelOutput::tokens);
        },
        ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected input [B, 1, 16, 16, 8] (layout BCHWD), got [1, 1, 16, 8, 16]")));
}

// ---- errors -----------------------------------------------------------------------------------------------

models::VisionTransformerConfig<2> tiny_config() {
    models::VisionTransformerConfig<2> c;
    c.input_size = {8, 8};
    c.patch_size = {4, 4};
    c.dim = 8;
    c.depth = 1;
    c.heads = 2;
    c.mlp_dim = 16;
    c.num_classes = 3;
    return c;
}

template <class T = float>
models::ViT<T> random_model(const models::VisionTransformerConfig<2>& config = tiny_config()) {
    models::ViT<T> model(config);
    std::uint64_t seed = 1;
    model.visit_parameters(
        [&](const std::string&, Tensor<T>& p) { p = Tensor<T>::randn(p.shape(), seed++); });
    return model;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "vit3d_load_model_" + name; }

// load_model packs the linear layers' weights of a model of few tokens as it loads it, so that no forward
// packs, the first one included; a model of packed_weight_max_rows tokens or more keeps no packs, as its
// forwards pack inside each call (core/weight_packing.hpp).
TEST(LoadedModel, PacksTheWeightsOfAModelOfFewTokensAsItLoads) {
    const auto tv = io::load_model<float>(kRoundtrip + "torchvision_vit_f32.safetensors");
    const auto* vit = tv.get_if<models::ViT<float>>();
    ASSERT_NE(vit, nullptr);
    const Index packed = vit3d::nn::packed_weight_bytes(*vit);
    EXPECT_GT(packed, 0) << "loaded without its packs: the first forwards would make them";
    (void)tv.forward(Tensor<float>::randn({1, 3, 32, 32}, 1), io::ModelOutput::logits);
    EXPECT_EQ(vit3d::nn::packed_weight_bytes(*vit), packed);

    models::VisionTransformerConfig<2> many = tiny_config();
    many.input_size = {64, 64};
    many.patch_size = {1, 1};
    ASSERT_GE(many.num_patches(), vit3d::detail::packed_weight_max_rows);
    const std::string path = temp_path("many_tokens.safetensors");
    io::save_model(path, random_model(many), io::no_preprocessing("BCHW", {64, 64}));
    const auto loaded = io::load_model<float>(path);
    EXPECT_EQ(vit3d::nn::packed_weight_bytes(*loaded.get_if<models::ViT<float>>()), 0);
    std::remove(path.c_str());
}

// A file with the tensors of `model` (vit3d names, minus `drop`, plus `extra`) and `description` as metadata.
std::string write_file(const std::string& name, const std::string& description,
                       const models::ViT<float>& model,
                       const std::function<void(std::map<std::string, const Tensor<float>*>&)>& edit = {}) {
    std::map<std::string, const Tensor<float>*> tensors;
    model.visit_parameters([&](const std::string& key, const Tensor<float>& t) { tensors[key] = &t; });
    if (edit) edit(tensors);
    const std::string path = temp_path(name);
    io::write_safetensors(path, tensors, {{io::model_metadata_key, description}});
    return path;
}

// The description save_model would write for the tiny model, as JSON to edit.
nlohmann::json tiny_description() {
    return nlohmann::json::parse(
        io::model_description_json(io::describe_model(random_model(), io::no_preprocessing("BCHW", {8, 8}))));
}

// load_model on a file whose description is `json` fails with an io_error containing `message`.
void expect_refused(const std::string& name, const nlohmann::json& json, const std::string& message) {
    const models::ViT<float> model = random_model();
    const std::string path = write_file(name, json.dump(), model);
    EXPECT_THAT([&] { io::load_model<float>(path); },
                ThrowsMessage<vit3d::io_error>(
                    AllOf(StartsWith("vit3d::io::load_model(\"" + path + "\"): "), HasSubstr(message))))
        << json.dump();
    std::remove(path.c_str());
}

TEST(LoadModelErrors, SaveModelWritesWhatLoadModelReadsBack) {
    const models::ViT<float> model = random_model();
    const std::string path = temp_path("saved.safetensors");
    io::save_model(path, model, io::no_preprocessing("BCHW", {8, 8}));
    const auto loaded = io::load_model<float>(path);
    EXPECT_EQ(loaded.family(), "vit3d");
    EXPECT_EQ(loaded.description().key_map, "vit3d");
    const Tensor<float> x = Tensor<float>::randn({2, 3, 8, 8}, 5);
    EXPECT_TENSOR_EQ(loaded.forward(x, io::ModelOutput::logits), model.forward(x).logits);
    for (io::DType dtype : {io::DType::F16, io::DType::BF16, io::DType::F64}) {
        SCOPED_TRACE(io::dtype_name(dtype));
        io::save_model(path, model, io::no_preprocessing("BCHW", {8, 8}), dtype);
        const auto narrow = io::load_model<float>(path);
        const auto* vit = narrow.get_if<models::ViT<float>>();
        ASSERT_NE(vit, nullptr);
        const float w = model.head->weight.data()[0];
        const float stored = dtype == io::DType::F16    ? io::f16_to_float(io::f16_from_double(w))
                             : dtype == io::DType::BF16 ? io::bf16_to_float(io::bf16_from_double(w))
                                                        : w;
        EXPECT_EQ(vit->head->weight.data()[0], stored);
        EXPECT_EQ(io::load_model<double>(path).get_if<models::ViT<double>>()->head->weight.data()[0],
                  double(stored));
    }
    EXPECT_THAT(
        [&] {
            io::save_model(path, model, io::no_preprocessing("BCHW", {16, 16}));
        },
        ThrowsMessage<vit3d::io_error>(HasSubstr("preprocess.input_size [16, 16] differs")));
    std::remove(path.c_str());
}

TEST(LoadModelErrors, MissingOrGarbledMetadata) {
    const models::ViT<float> model = random_model();
    std::map<std::string, const Tensor<float>*> tensors;
    model.visit_parameters([&](const std::string& key, const Tensor<float>& t) { tensors[key] = &t; });
    const std::string plain = temp_path("plain.safetensors");
    io::write_safetensors(plain, tensors, {{"format", "pt"}});
    EXPECT_THAT([&] { io::load_model<float>(plain); },
                ThrowsMessage<vit3d::io_error>(HasSubstr("no \"vit3d.model\" entry in the file's metadata")));
    std::remove(plain.c_str());
    const std::string garbled = write_file("garbled.safetensors", "{\"schema\": \"vit3d.model\", ", model);
    EXPECT_THAT([&] { io::load_model<float>(garbled); },
                ThrowsMessage<vit3d::io_error>(HasSubstr("metadata \"vit3d.model\": not valid JSON")));
    std::remove(garbled.c_str());
    expect_refused("array.safetensors", nlohmann::json::array({1}), "expected a JSON object, got array");
}

TEST(LoadModelErrors, TopLevelFieldsAreCheckedByName) {
    auto d = tiny_description();
    d["schema"] = "something.else";
    expect_refused("schema.safetensors", d, "schema: expected \"vit3d.model\", got \"something.else\"");
    d = tiny_description();
    d["version"] = 2;
    expect_refused("version.safetensors", d,
                   "version: this vit3d reads version 1, got 2 (written by a newer");
    d = tiny_description();
    d.erase("kind");
    expect_refused("nokind.safetensors", d, "missing field \"kind\"");
    d = tiny_description();
    d["comment"] = "hello";
    expect_refused("extra.safetensors", d, "unknown field \"comment\"");
    d = tiny_description();
    d["family"] = "keras";
    expect_refused("family.safetensors", d, "family: unknown family \"keras\"; known: torchvision, timm");
    d = tiny_description();
    d["kind"] = "swin3d";
    expect_refused("kind.safetensors", d,
                   "kind: unknown model kind \"swin3d\"; known: vit2d (vit3d::models::ViT), vit3d "
                   "(vit3d::models::ViT3D), ct_encoder (vit3d::models::CTEncoder)");
    d = tiny_description();
    d["key_map"] = "jax";
    expect_refused("keymap.safetensors", d, "key_map: unknown key map \"jax\"; known: torchvision");
    d = tiny_description();
    d["config"] = 3;
    expect_refused("config.safetensors", d, "config: expected a JSON object, got 3");
}

TEST(LoadModelErrors, ConfigFieldsAreCheckedByName) {
    const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> edits = {
        {[](nlohmann::json& c) { c.erase("depth"); }, "missing field \"config.depth\""},
        {[](nlohmann::json& c) { c["surprise"] = 1; }, "unknown field \"config.surprise\""},
        {[](nlohmann::json& c) { c["pool"] = "avg"; },
         "config.pool: expected one of \"cls\", \"mean\", \"max\", \"mean_max\", \"attention\", \"none\", "
         "got \"avg\""},
        {[](nlohmann::json& c) {
             c["patch_size"] = {4, 4, 4};
         },
         "config.patch_size: expected an array of 2 positive integers, got array [4,4,4]"},
        {[](nlohmann::json& c) { c["heads"] = 0; }, "config.heads: expected a positive integer, got 0"},
        {[](nlohmann::json& c) { c["eps"] = "1e-6"; }, "config.eps: expected a finite number, got string"},
        {[](nlohmann::json& c) { c["qkv_bias"] = 1; }, "config.qkv_bias: expected true or false, got 1"},
        {[](nlohmann::json& c) { c["channels"] = -3; },
         "config.channels: expected a positive integer, got -3"},
        // Well-formed, but a model vit3d refuses to build.
        {[](nlohmann::json& c) { c["class_token"] = false; }, "config: vit3d refuses this configuration: "},
        {[](nlohmann::json& c) {
             c["patch_size"] = {3, 4};
         },
         "config: vit3d refuses this configuration: "},
        {[](nlohmann::json& c) { c["heads"] = 3; }, "config: vit3d refuses this configuration: "},
    };
    for (const auto& [edit, message] : edits) {
        auto d = tiny_description();
        edit(d["config"]);
        expect_refused("config_field.safetensors", d, message);
    }
}

TEST(LoadModelErrors, PreprocessingMustDescribeTheModelsInput) {
    auto d = tiny_description();
    d["preprocess"]["input_size"] = {16, 16};
    expect_refused("pre_size.safetensors", d,
                   "preprocess.input_size [16, 16] differs from config.input_size [8, 8]");
    d = tiny_description();
    d["preprocess"]["layout"] = "BCDHW";
    expect_refused("pre_layout.safetensors", d,
                   "preprocess.input_size: expected an array of 3 positive integers");
    d = tiny_description();
    d["preprocess"]["layout"] = "NHWC";
    expect_refused("pre_layout2.safetensors", d,
                   "preprocess.layout: expected one of \"BCHW\", \"BCDHW\", \"BCHWD\"");
    d = tiny_description();
    d["preprocess"]["mean"] = {0.5, 0.5};
    expect_refused("pre_mean.safetensors", d, "preprocess.mean: expected an array of 3 finite numbers");
    d = tiny_description();
    d["preprocess"]["std"] = {0.5, 0.0, 0.5};
    expect_refused("pre_std.safetensors", d, "preprocess.std: expected positive numbers");
    d = tiny_description();
    d["preprocess"]["intensity_window"] = {{"low", 10}, {"high", 0}, {"to", {0, 1}}, {"clip", true}};
    expect_refused("pre_window.safetensors", d,
                   "preprocess.intensity_window.high: expected a number above low");
    d = tiny_description();
    d["preprocess"].erase("channel_order");
    expect_refused("pre_missing.safetensors", d, "missing field \"preprocess.channel_order\"");
}

TEST(LoadModelErrors, MissingMisShapedAndUnusedTensorsAreNamed) {
    const std::string description = tiny_description().dump();
    const models::ViT<float> model = random_model();
    const Tensor<float> wrong({8, 9});
    const Tensor<float> stray({2});
    const std::vector<
        std::pair<std::function<void(std::map<std::string, const Tensor<float>*>&)>, std::string>>
        edits = {
            {[](auto& t) { t.erase("blocks.0.mlp.fc1.bias"); },
             "missing tensor for parameter \"blocks.0.mlp.fc1.bias\" of shape [16]"},
            {[&](auto& t) { t["head.weight"] = &wrong; },
             "tensor \"head.weight\" has shape [8, 9], parameter \"head.weight\" expects [3, 8]"},
            {[&](auto& t) { t["blocks.0.attn.extra"] = &stray; },
             "tensors not used by the model: \"blocks.0.attn.extra\""},
        };
    for (const auto& [edit, message] : edits) {
        const std::string path = write_file("tensors.safetensors", description, model, edit);
        EXPECT_THAT([&] { io::load_model<float>(path); },
                    ThrowsMessage<vit3d::io_error>(
                        AllOf(StartsWith("vit3d::io::load_model(\"" + path + "\"): "), HasSubstr(message))));
        std::remove(path.c_str());
    }
    EXPECT_THAT([&] { io::load_model<float>(temp_path("no_such_file.safetensors")); },
                ThrowsMessage<vit3d::io_error>(HasSubstr("cannot read the file")));
}

// ---- memory -----------------------------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VIT3D_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define VIT3D_TEST_SANITIZED 1
#endif
#endif

#ifndef VIT3D_TEST_SANITIZED
// Resident memory figures of this process from /proc/self/status, in bytes (-1 where unavailable).
double status_bytes(const char* field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) * 1024.0;
    return -1;
}
bool reset_peak_rss() {
#ifdef __GLIBC__
    // Freed memory the allocator still holds would otherwise serve the next allocations without raising the
    // resident size, and hide what they cost.
    malloc_trim(0);
#endif
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";  // resets VmHWM to the current RSS
    return bool(clear);
}
#endif

// A 31 MB model: building it costs (almost) no resident memory, loading it about the size of its weights and
// their packs (not file + weights, as reading the whole file first does).
TEST(LoadModelMemory, PeakResidentMemoryIsAboutTheWeights) {
#ifdef VIT3D_TEST_SANITIZED
    GTEST_SKIP() << "sanitizer allocators keep their own books; resident memory is not the library's";
#else
    if (status_bytes("VmHWM:") < 0 || !reset_peak_rss()) GTEST_SKIP() << "no /proc/self/status or clear_refs";
    models::VisionTransformerConfig<2> config = tiny_config();
    config.input_size = {64, 64};
    config.patch_size = {8, 8};
    config.dim = 256;
    config.depth = 10;
    config.heads = 4;
    config.mlp_dim = 1024;
    config.num_classes = 100;
    const std::string path = temp_path("memory.safetensors");
    double weights = 0;
    {
        reset_peak_rss();
        const double before = status_bytes("VmRSS:");
        models::ViT<float> model(config);
        const double built = status_bytes("VmHWM:") - before;
        weights = double(vit3d::nn::count_parameters(model)) * sizeof(float);
        EXPECT_LT(built, 0.1 * weights) << "building the model touched its zero-filled parameters";
        // Random values written in place (no reallocation), then saved.
        std::uint64_t seed = 1;
        model.visit_parameters([&](const std::string&, Tensor<float>& p) {
            vit3d::detail::Xoshiro256 rng(seed++);
            for (float& v : p) v = float(rng.uniform());
        });
        io::save_model(path, model, io::no_preprocessing("BCHW", {64, 64}));
    }
    ASSERT_GT(weights, 30e6);

    ASSERT_TRUE(reset_peak_rss());
    const double before = status_bytes("VmRSS:");
    {
        const auto loaded = io::load_model<float>(path);
        const double peak = status_bytes("VmHWM:") - before;
        // 65 tokens: load_model packs the linear layers' weights (core/weight_packing.hpp), a second copy of
        // most of the weights, kept for every forward.
        const double packed = double(vit3d::nn::packed_weight_bytes(*loaded.get_if<models::ViT<float>>()));
        std::printf(
            "[memory] weights %.1f MB, packed %.1f MB, load_model peak above start %.1f MB (%.2f x "
            "weights + packed)\n",
            weights / 1e6, packed / 1e6, peak / 1e6, peak / (weights + packed));
        EXPECT_GT(packed, 0.9 * weights) << "the linear layers hold almost all of this model's weights";
        EXPECT_GT(peak, 0.9 * (weights + packed))
            << "the weights and their packs must be resident once loaded";
        EXPECT_LT(peak, 1.1 * (weights + packed) + 4e6)
            << "load_model held more than the weights, their packs and one tensor";
    }
    // The old way, the whole file read into memory and then converted, holds file + weights at its peak:
    // the measurement above can tell the two apart.
    ASSERT_TRUE(reset_peak_rss());
    const double before_read = status_bytes("VmRSS:");
    {
        const io::Safetensors file = io::Safetensors::read(path);
        models::ViT<float> model(config);
        io::load_state_dict<float>(model, file, io::key_maps::vit3d());
        const double peak = status_bytes("VmHWM:") - before_read;
        std::printf("[memory] read() + load_state_dict peak above start %.1f MB (%.2f x weights)\n",
                    peak / 1e6, peak / weights);
        EXPECT_GT(peak, 1.8 * weights);
    }
    std::remove(path.c_str());
#endif
}

}  // namespace
