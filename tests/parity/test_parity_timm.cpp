// Parity with timm's modern ViT features (registers, LayerScale, norm_pre, QuickGELU, attention pooling,
// RMSNorm, SwiGLU and GluMlp, q/k norms, avgmax and max pooling, ResPostBlock, DeiT's distillation token,
// an input size the patch does not divide),
// through the user's path: a weights file written by tools/export_weights.py, loaded by io::load_model, in
// float32 and float64. Fixtures: tests/fixtures/make_timm_fixtures.py.

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vit3d.hpp>
#include <vit3d/io/load_model.hpp>

#include "support/fixtures.hpp"

namespace {

using vit3d::Tensor;
namespace io = vit3d::io;

std::string timm_fixture(const std::string& name) {
    return std::string(VIT3D_TEST_FIXTURE_DIR) + "/timm/" + name + ".safetensors";
}

class TimmParity : public ::testing::TestWithParam<const char*> {};

template <class T>
void expect_parity(const std::string& name) {
    SCOPED_TRACE(name + (std::is_same_v<T, float> ? " float32" : " float64"));
    const io::LoadedModel<T> model = io::load_model<T>(timm_fixture(name));
    const io::Safetensors expected = io::Safetensors::read(timm_fixture(name + "_expected"));
    const std::string prefix = std::is_same_v<T, float> ? "f32." : "f64.";
    const auto out = model.forward(
        expected.get<T>("in.x"), {io::ModelOutput::tokens, io::ModelOutput::pooled, io::ModelOutput::logits});
    EXPECT_MATCHES_REFERENCE(out.at(io::ModelOutput::tokens), expected.get<T>(prefix + "tokens"));
    EXPECT_MATCHES_REFERENCE(out.at(io::ModelOutput::pooled), expected.get<T>(prefix + "pooled"));
    EXPECT_MATCHES_REFERENCE(out.at(io::ModelOutput::logits), expected.get<T>(prefix + "logits"));
}

TEST_P(TimmParity, TokensPooledAndLogitsMatchTimm) {
    expect_parity<float>(GetParam());
    expect_parity<double>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, TimmParity,
                         ::testing::Values("dinov2_registers", "clip", "siglip", "aimv2", "qk_norm",
                                           "max_prefix", "glu", "swiglu_packed", "res_post", "deit_distilled",
                                           "remainder"));

}  // namespace
