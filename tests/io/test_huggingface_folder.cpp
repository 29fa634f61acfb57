// Hugging Face model folders (vit3d/io/huggingface/): what load_model reads from config.json and
// preprocessor_config.json, the sharded checkpoint and the assembled q/k/v tensors, and the errors for a
// folder vit3d cannot load, each naming the file, the key and the expected and actual values. The models'
// numbers are checked against transformers in tests/parity/test_parity_huggingface.cpp.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>
#include <vit3d/io/huggingface/assembled_tensors.hpp>
#include <vit3d/io/huggingface/model_folder.hpp>
#include <vit3d/io/huggingface/sharded_safetensors.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/safetensors.hpp>
#include <vit3d/models/vision_transformer.hpp>
#include <vit3d/tensor/compare.hpp>

#include "support/io_testing.hpp"

namespace {

namespace fs = std::filesystem;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using vit3d::io_error;
using vit3d::Shape;
using vit3d::Tensor;

// Whether two tensors are equal element for element (and in shape).
template <class T>
bool same(const Tensor<T>& a, const Tensor<T>& b) {
    return vit3d::compare(a, b, 0.0, 0.0).close;
}

std::string fixture(const std::string& name) { return vit3d::test::FixturePath("huggingface/" + name); }

// A copy of a fixture folder in the test's temporary directory, to be broken.
std::string copy_of(const std::string& name) {
    const std::string folder = vit3d::test::TempPath(name);
    fs::copy(fixture(name), folder, fs::copy_options::recursive);
    return folder;
}

nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

void write_json(const std::string& path, const nlohmann::json& json) { std::ofstream(path) << json.dump(1); }

// The folder's model.safetensors rewritten by `change` (tensor name -> tensor).
template <class Change>
void rewrite_weights(const std::string& folder, Change change) {
    const std::string path = folder + "/model.safetensors";
    std::map<std::string, Tensor<float>> tensors;
    {
        const io::Safetensors file = io::Safetensors::read(path);
        for (const std::string& name : file.names()) tensors[name] = file.get<float>(name);
    }
    change(tensors);
    std::map<std::string, const Tensor<float>*> view;
    for (const auto& [name, tensor] : tensors) view[name] = &tensor;
    io::write_safetensors(path, view);
}

std::string load_error(const std::string& folder) {
    try {
        (void)io::load_model<float>(folder);
    } catch (const io_error& e) {
        return e.what();
    }
    return "(loaded without error)";
}

TEST(HuggingFaceFolder, IsRecognisedByItsConfigJson) {
    EXPECT_TRUE(io::huggingface::is_model_folder(fixture("vit_model")));
    EXPECT_FALSE(io::huggingface::is_model_folder(fixture("vit_model/model.safetensors")));
    EXPECT_FALSE(io::huggingface::is_model_folder(vit3d::test::FixturePath("timm")));
}

TEST(HuggingFaceFolder, DescribesTheModelItsConfigNames) {
    const io::LoadedModel<float> model = io::load_model<float>(fixture("clip_full"));
    EXPECT_EQ(model.family(), "transformers");
    EXPECT_EQ(model.kind(), "vit2d");
    EXPECT_EQ(model.description().key_map, "transformers_clip");
    EXPECT_EQ(nlohmann::json::parse(model.description().source).at("architecture"), "CLIPModel");
    EXPECT_EQ(model.source(), fixture("clip_full"));
    EXPECT_TRUE(model.dynamic_size());
    // CLIPModel: the vision tower with its projection; the text tower is skipped.
    const auto* vit = model.get_if<vit3d::models::ViT<float>>();
    ASSERT_NE(vit, nullptr);
    EXPECT_TRUE(vit->config.pre_norm);
    EXPECT_FALSE(vit->config.final_norm);
    EXPECT_TRUE(vit->config.head_norm);
    EXPECT_EQ(vit->config.num_classes, 24);
    EXPECT_FALSE(vit->config.head_bias);
    EXPECT_EQ(vit->config.activation, vit3d::nn::Activation::quick_gelu);
}

TEST(HuggingFaceFolder, ReadsThePreprocessorConfig) {
    {  // BiT's processor: the shorter side to 18, a 16 x 16 crop, bicubic, ImageNet statistics. The position
       // table covers 5 x 5 patches (image_size 20): the model runs at the crop's size by default.
        const io::LoadedModel<float> dinov2 = io::load_model<float>(fixture("dinov2"));
        const transforms::Preprocessing& p = dinov2.preprocess();
        EXPECT_EQ(p.input_size, (std::vector<vit3d::Index>{16, 16}));
        EXPECT_EQ(p.resize_size, 18);
        EXPECT_FALSE(p.resize_shape);
        EXPECT_EQ(p.interpolation, "bicubic");
        EXPECT_EQ(p.channel_order, "RGB");
        EXPECT_NEAR(*p.rescale, 1.0 / 255.0, 1e-15);
        EXPECT_EQ(*p.mean, (std::vector<double>{0.485, 0.456, 0.406}));
        EXPECT_EQ(*p.std, (std::vector<double>{0.229, 0.224, 0.225}));
        EXPECT_EQ(dinov2.input_shape(), (Shape{3, 16, 16}));
        EXPECT_EQ(dinov2.get_if<vit3d::models::ViT<float>>()->config.input_size,
                  (std::array<vit3d::Index, 2>{20, 20}));
    }
    {  // DeiT's: both sides to 20, then a 16 x 16 crop.
        const transforms::Preprocessing p = io::load_model<float>(fixture("deit_model")).preprocess();
        EXPECT_EQ(p.resize_shape, (std::vector<vit3d::Index>{20, 20}));
        EXPECT_FALSE(p.resize_size);
        EXPECT_EQ(p.input_size, (std::vector<vit3d::Index>{16, 16}));
    }
    {  // ViT's: straight to 16 x 16, bilinear, mean and std 0.5.
        const transforms::Preprocessing p = io::load_model<float>(fixture("vit_model")).preprocess();
        EXPECT_FALSE(p.resize_size);
        EXPECT_FALSE(p.resize_shape);
        EXPECT_EQ(p.interpolation, "bilinear");
        EXPECT_EQ(*p.mean, (std::vector<double>{0.5, 0.5, 0.5}));
    }
    {  // Without a preprocessor_config.json the model takes its input as given, at image_size.
        const std::string folder = copy_of("vit_model");
        fs::remove(folder + "/preprocessor_config.json");
        const transforms::Preprocessing p = io::load_model<float>(folder).preprocess();
        EXPECT_FALSE(p.rescale);
        EXPECT_FALSE(p.mean);
        EXPECT_EQ(p.input_size, (std::vector<vit3d::Index>{16, 16}));
    }
}

TEST(HuggingFaceFolder, ShardsAreReadFromTheFilesTheIndexNames) {
    const auto shards =
        io::huggingface::ShardedSafetensors::open(fixture("sharded/model.safetensors.index.json"));
    EXPECT_EQ(shards.shard_count(), 2u);
    const nlohmann::json index = read_json(fixture("sharded/model.safetensors.index.json"));
    EXPECT_EQ(shards.names().size(), index.at("weight_map").size());
    for (const auto& [name, file] : index.at("weight_map").items()) {
        const io::Safetensors shard = io::Safetensors::read(fixture("sharded/" + file.get<std::string>()));
        Tensor<double> ours = Tensor<double>::empty(shards.shape(name));
        shards.get_into(name, ours.data(), ours.size());
        EXPECT_TRUE(same(ours, shard.get<double>(name))) << name;
    }
}

TEST(HuggingFaceFolder, QueryKeyAndValueAreJoinedRowWise) {
    const io::Safetensors file = io::Safetensors::read(fixture("vit_model/model.safetensors"));
    io::huggingface::AssembledTensors tensors(file);
    const std::string layer = "encoder.layer.0.attention.attention.";
    tensors.assemble(
        layer + "qkv.weight",
        {{layer + "query.weight", 0, 16}, {layer + "key.weight", 0, 16}, {layer + "value.weight", 2, 14}});
    EXPECT_EQ(tensors.shape(layer + "qkv.weight"), (Shape{46, 16}));
    EXPECT_FALSE(tensors.contains(layer + "query.weight"));
    EXPECT_TRUE(tensors.contains(layer + "query.bias"));
    Tensor<float> qkv = Tensor<float>::empty({46, 16});
    tensors.get_into(layer + "qkv.weight", qkv.data(), qkv.size());
    EXPECT_TRUE(same(qkv.narrow(0, 0, 16), file.get<float>(layer + "query.weight")));
    EXPECT_TRUE(same(qkv.narrow(0, 16, 16), file.get<float>(layer + "key.weight")));
    EXPECT_TRUE(same(qkv.narrow(0, 32, 14), file.get<float>(layer + "value.weight").narrow(0, 2, 14)));
    EXPECT_THAT(
        [&] {
            tensors.assemble("x", {{layer + "query.weight", 10, 7}});
        },
        ThrowsMessage<io_error>(HasSubstr("tensor \"x\": expected rows [10, 17) of "
                                          "\"encoder.layer.0.attention.attention.query.weight\", which "
                                          "has shape [16, 16]")));
    EXPECT_THAT(
        [&] {
            tensors.assemble("y", {{layer + "query.weight", 0, 16}, {layer + "query.bias", 0, 16}});
        },
        ThrowsMessage<io_error>(HasSubstr("its pieces disagree")));
}

// The folder errors: one clear message naming the file, the key and the values.
TEST(HuggingFaceFolder, AnUnsupportedModelTypeOrArchitectureIsRefusedNamingTheSupportedOnes) {
    const std::string folder = copy_of("vit_model");
    nlohmann::json config = read_json(folder + "/config.json");
    config["model_type"] = "bert";
    write_json(folder + "/config.json", config);
    EXPECT_THAT(
        load_error(folder),
        AllOf(HasSubstr("config.json: model_type \"bert\" is not a vision model vit3d loads; supported: "
                        "vit, deit, dinov2, dinov2_with_registers, clip, clip_vision_model, siglip, "
                        "siglip_vision_model")));
    config["model_type"] = "dinov2";
    config["architectures"] = {"Dinov2ForImageClassification"};
    write_json(folder + "/config.json", config);
    EXPECT_THAT(load_error(folder), HasSubstr("config.json: architectures: vit3d loads Dinov2Model for "
                                              "model_type \"dinov2\", got \"Dinov2ForImageClassification\""));
}

TEST(HuggingFaceFolder, AnOptionVit3dDoesNotComputeIsRefusedByName) {
    const std::string folder = copy_of("vit_model");
    nlohmann::json config = read_json(folder + "/config.json");
    config["hidden_act"] = "mish";
    write_json(folder + "/config.json", config);
    EXPECT_THAT(load_error(folder), HasSubstr("config.json: hidden_act: vit3d computes the activations gelu, "
                                              "gelu_pytorch_tanh, gelu_new, quick_gelu, silu, swish, relu, "
                                              "sigmoid, tanh, linear, got \"mish\""));
    config["hidden_act"] = "gelu";
    config["hidden_size"] = "sixteen";
    write_json(folder + "/config.json", config);
    EXPECT_THAT(load_error(folder),
                HasSubstr("config.json: hidden_size: expected a positive integer, got string \"sixteen\""));
    std::ofstream(folder + "/config.json") << "{\"model_type\": ";
    EXPECT_THAT(load_error(folder), HasSubstr("config.json: not valid JSON"));
}

TEST(HuggingFaceFolder, AMissingOrMisshapenTensorIsNamed) {
    const std::string folder = copy_of("vit_model");
    rewrite_weights(folder, [](auto& t) { t.erase("encoder.layer.1.output.dense.bias"); });
    EXPECT_THAT(load_error(folder),
                AllOf(HasSubstr(folder), HasSubstr("missing tensor for parameter "
                                                   "\"blocks.1.mlp.fc2.bias\" of shape [16]")));
    const std::string other = copy_of("siglip_vision");
    rewrite_weights(other, [](auto& t) { t["head.probe"] = Tensor<float>(Shape{1, 2, 16}); });
    EXPECT_THAT(
        load_error(other),
        HasSubstr("tensor \"head.probe\" has shape [1, 2, 16], parameter \"attn_pool.latent\" expects "
                  "[1, 1, 16]"));
    // A value projection missing beside its query and key.
    const std::string third = copy_of("vit_model");
    rewrite_weights(third, [](auto& t) { t.erase("encoder.layer.0.attention.attention.value.weight"); });
    EXPECT_THAT(load_error(third),
                HasSubstr("no tensor named \"encoder.layer.0.attention.attention.value.weight\""));
}

// model.safetensors as older transformers wrote it: the float tensors plus an I64 position_ids buffer
// (vit3d's writer writes floats only, so the file is put together here).
void add_position_ids(const std::string& folder, const std::string& name, vit3d::Index count) {
    const std::string path = folder + "/model.safetensors";
    const io::Safetensors file = io::Safetensors::read(path);
    nlohmann::json header = nlohmann::json::object();
    std::vector<std::uint8_t> data;
    for (const std::string& tensor : file.names()) {
        const Tensor<float> t = file.get<float>(tensor);
        header[tensor] = {{"dtype", "F32"},
                          {"shape", t.shape()},
                          {"data_offsets", {data.size(), data.size() + 4 * t.size()}}};
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(t.data());
        data.insert(data.end(), bytes, bytes + 4 * t.size());
    }
    header[name] = {
        {"dtype", "I64"}, {"shape", {1, count}}, {"data_offsets", {data.size(), data.size() + 8 * count}}};
    for (std::int64_t i = 0; i < count; ++i)
        for (int b = 0; b < 8; ++b) data.push_back(static_cast<std::uint8_t>(i >> (8 * b)));
    const std::string text = header.dump();
    std::vector<std::uint8_t> bytes(8);
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<std::uint8_t>(text.size() >> (8 * b));
    bytes.insert(bytes.end(), text.begin(), text.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    vit3d::test::WriteBytes(path, bytes);
}

TEST(HuggingFaceFolder, AnIntegerBufferIsSkipped) {
    const std::string folder = copy_of("clip_vision");
    add_position_ids(folder, "embeddings.position_ids", 17);
    ASSERT_EQ(
        io::Safetensors::read(folder + "/model.safetensors").info("embeddings.position_ids").other_dtype,
        "I64");
    const io::LoadedModel<float> model = io::load_model<float>(folder);
    const Tensor<float> x(Shape{1, 3, 16, 16});
    EXPECT_TRUE(same(model.forward(x, io::ModelOutput::pooled),
                     io::load_model<float>(fixture("clip_vision")).forward(x, io::ModelOutput::pooled)));
}

TEST(HuggingFaceFolder, AShardIndexNamingAMissingFileOrTensorIsRefused) {
    const std::string folder = copy_of("sharded");
    nlohmann::json index = read_json(folder + "/model.safetensors.index.json");
    const std::string key = index["weight_map"].begin().key();
    index["weight_map"][key] = "model-00009-of-00009.safetensors";
    write_json(folder + "/model.safetensors.index.json", index);
    EXPECT_THAT(load_error(folder), AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr(key),
                                          HasSubstr("names the shard \"model-00009-of-00009.safetensors\", "
                                                    "which is missing")));
    index = read_json(fixture("sharded/model.safetensors.index.json"));
    index["weight_map"]["embeddings.not_there"] = index["weight_map"][key];
    write_json(folder + "/model.safetensors.index.json", index);
    EXPECT_THAT(load_error(folder), HasSubstr("weight_map.embeddings.not_there names the shard"));
    EXPECT_THAT(load_error(folder), HasSubstr("which holds no such tensor"));
}

TEST(HuggingFaceFolder, AFolderWithoutSafetensorsWeightsIsRefused) {
    const std::string folder = copy_of("vit_model");
    fs::remove(folder + "/model.safetensors");
    EXPECT_THAT(load_error(folder), HasSubstr("expected the weights in model.safetensors or in the shards "
                                              "model.safetensors.index.json lists; the folder has neither"));
    std::ofstream(folder + "/pytorch_model.bin") << "pickle";
    EXPECT_THAT(load_error(folder), HasSubstr("the weights are in pytorch_model.bin (a pickle), which vit3d "
                                              "does not read"));
}

TEST(HuggingFaceFolder, ADirectoryWithoutConfigJsonIsNamedAsSuch) {
    const std::string folder = copy_of("vit_model");
    fs::remove(folder + "/config.json");
    EXPECT_THAT(load_error(folder),
                HasSubstr("): a directory without config.json: expected a weights file or a "
                          "Hugging Face model folder"));
}

TEST(HuggingFaceFolder, AnInputSizeThePatchesDoNotDivideIsRefusedNamingBoth) {
    const io::LoadedModel<float> model = io::load_model<float>(fixture("vit_model"));
    EXPECT_THAT(
        [&] {
            (void)model.forward(Tensor<float>(Shape{1, 3, 18, 16}), io::ModelOutput::tokens);
        },
        ThrowsMessage<vit3d::shape_error>(AllOf(HasSubstr("18"), HasSubstr("4"))));
}

TEST(HuggingFaceFolder, AnUnusableProcessorSettingIsRefused) {
    const std::string folder = copy_of("vit_model");
    nlohmann::json processor = read_json(folder + "/preprocessor_config.json");
    processor["size"] = {{"shortest_edge", 16}};
    write_json(folder + "/preprocessor_config.json", processor);
    EXPECT_THAT(load_error(folder),
                HasSubstr("preprocessor_config.json: size {\"shortest_edge\": 16} without "
                          "do_center_crop"));
    processor["size"] = {{"longest_edge", 16}};
    write_json(folder + "/preprocessor_config.json", processor);
    EXPECT_THAT(load_error(folder), HasSubstr("preprocessor_config.json: size: vit3d resizes to"));
    processor["size"] = {{"height", 16}, {"width", 16}};
    processor["image_mean"] = {0.5, 0.5};
    write_json(folder + "/preprocessor_config.json", processor);
    EXPECT_THAT(load_error(folder),
                HasSubstr("image_mean: expected 3 numbers (one per channel), got array [0.5,0.5]"));
}

}  // namespace
