// Parity with Hugging Face transformers' vision models through the user's path: a model folder as
// save_pretrained writes it (config.json, model.safetensors or its shards, preprocessor_config.json),
// loaded by io::load_model with no export step, in float32 and float64, at the size its processor makes
// and at another one (transformers' interpolate_pos_encoding). The cases cover ViTModel (pooler) and
// ViTForImageClassification, DeiT's three classes, Dinov2Model (MLP and SwiGLU), Dinov2WithRegistersModel,
// CLIP's vision tower alone, with its projection and inside CLIPModel, SigLIP's alone and inside
// SiglipModel, and a sharded checkpoint. Fixtures: tests/fixtures/make_hf_fixtures.py.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vit3d.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/safetensors.hpp>

#include "support/fixtures.hpp"

namespace {

namespace io = vit3d::io;

std::string hf_fixture(const std::string& name) {
    return std::string(VIT3D_TEST_FIXTURE_DIR) + "/huggingface/" + name;
}

const nlohmann::json& cases() {
    static const nlohmann::json listing = [] {
        std::ifstream file(hf_fixture("cases.json"));
        return nlohmann::json::parse(file);
    }();
    return listing;
}

// transformers' DINOv2 models resample their position table in float32 whatever the model's dtype
// (interpolate_pos_encoding casts it), and their processors' crops are smaller than the table's grid, so
// a float64 model carries float32 rounding at every size: vit3d resamples in float64.
double float64_tolerance(const std::string& name) {
    for (const char* float32_table : {"dinov2", "dinov2_swiglu", "dinov2_registers", "sharded"})
        if (name == float32_table) return 2e-7;
    return vit3d::test::parity_tolerance<double>();
}

class HuggingFaceParity : public ::testing::TestWithParam<const char*> {};

template <class T>
void expect_parity(const std::string& name, bool other_size) {
    SCOPED_TRACE(name + (std::is_same_v<T, float> ? " float32" : " float64") +
                 (other_size ? " at another input size" : ""));
    const io::LoadedModel<T> model = io::load_model<T>(hf_fixture(name));
    const io::Safetensors expected = io::Safetensors::read(hf_fixture(name + "_expected.safetensors"));
    const std::string prefix =
        std::string(std::is_same_v<T, float> ? "f32." : "f64.") + (other_size ? "other." : "");
    std::vector<io::ModelOutput> wanted;
    for (const auto& output : cases().at(name).at("outputs"))
        wanted.push_back(*vit3d::enum_from_name<io::ModelOutput>(output.get<std::string>()));
    const auto out = model.forward(expected.get<T>(other_size ? "in.x_other" : "in.x"), wanted);
    const double tolerance =
        std::is_same_v<T, float> ? vit3d::test::parity_tolerance<float>() : float64_tolerance(name);
    for (io::ModelOutput output : wanted) {
        const std::string key = io::output_name(output);
        EXPECT_TRUE(vit3d::test::MatchesReference(out.at(output), expected.get<T>(prefix + key), tolerance))
            << key;
    }
}

TEST_P(HuggingFaceParity, OutputsMatchTransformers) {
    expect_parity<float>(GetParam(), false);
    expect_parity<double>(GetParam(), false);
}

TEST_P(HuggingFaceParity, MatchesTransformersAtAnotherInputSize) {
    expect_parity<float>(GetParam(), true);
    expect_parity<double>(GetParam(), true);
}

INSTANTIATE_TEST_SUITE_P(Cases, HuggingFaceParity,
                         ::testing::Values("vit_model", "vit_classifier", "deit_model", "deit_classifier",
                                           "deit_teacher", "dinov2", "dinov2_swiglu", "dinov2_registers",
                                           "clip_vision", "clip_projection", "clip_full", "siglip_vision",
                                           "siglip_full", "sharded"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             return std::string(info.param);
                         });

TEST(HuggingFaceParity, EveryFixtureIsTested) { EXPECT_EQ(cases().size(), 14u); }

}  // namespace
