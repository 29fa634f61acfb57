// The anatomy-aware CT encoder against its PyTorch reference (tools/ct_encoder_reference.py, via
// make_fixtures.py): every output granularity with and without a label mask, factorized and sin-cos
// positions, float32 (1e-5 of scale) and float64 (1e-10); plus the anatomical encoder's assignment and its
// errors, the region-aware gate, and the encoder's config errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vit3d.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/save_model.hpp>
#include <vit3d/io/state_dict.hpp>

#include "support/fixtures.hpp"
#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::test::Fixture;
namespace models = vit3d::models;
namespace nn = vit3d::nn;
namespace io = vit3d::io;

template <class T>
class CTEncoderParity : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CTEncoderParity, Types);

// make_fixtures.py's ct_encoder(): [2, 1, 8, 32, 32], 2x8x8 patches, width 24, 4 heads, 2 blocks, 3 slice
// levels, 4 regions, projection heads of 8.
models::CTEncoderConfig small_config(models::PosEmbedKind positions, models::Pooling pool) {
    models::CTEncoderConfig c;
    c.input_size = {8, 32, 32};
    c.patch_size = {2, 8, 8};
    c.dim = 24;
    c.depth = 2;
    c.heads = 4;
    c.mlp_dim = 96;
    c.slice_levels = 3;
    c.regions = 4;
    c.pos_embed = positions;
    c.pool = pool;
    c.projection_dim = 8;
    return c;
}

template <class T>
Tensor<std::int16_t> labels_of(const Tensor<T>& stored) {  // the fixture stores the mask as float32
    Tensor<std::int16_t> mask = Tensor<std::int16_t>::empty(stored.shape());
    for (Index i = 0; i < stored.size(); ++i) mask.data()[i] = static_cast<std::int16_t>(stored.data()[i]);
    return mask;
}

template <class T>
void expect_outputs_match(const models::CTEncoderOutput<T>& out, const Fixture<T>& f,
                          const std::string& prefix, bool with_mask) {
    EXPECT_MATCHES_REFERENCE(out.global, f.out(prefix + "global"));
    EXPECT_MATCHES_REFERENCE(out.local, f.out(prefix + "local"));
    EXPECT_MATCHES_REFERENCE(out.cls, f.out(prefix + "cls"));
    EXPECT_MATCHES_REFERENCE(out.global_projection, f.out(prefix + "global_proj"));
    EXPECT_MATCHES_REFERENCE(out.local_projection, f.out(prefix + "local_proj"));
    const Tensor<T> positions = f.out(prefix + "positions");
    ASSERT_EQ(out.positions.shape(), positions.shape());
    for (Index i = 0; i < positions.size(); ++i)
        ASSERT_EQ(static_cast<T>(out.positions.data()[i]), positions.data()[i]) << "positions at " << i;
    if (with_mask) {
        EXPECT_MATCHES_REFERENCE(out.region, f.out(prefix + "region"));
        EXPECT_MATCHES_REFERENCE(out.assignment, f.out(prefix + "assignment"));
        EXPECT_MATCHES_REFERENCE(out.region_projection, f.out(prefix + "region_proj"));
    } else {
        EXPECT_EQ(out.region.size(), 0);
        EXPECT_EQ(out.assignment.size(), 0);
        EXPECT_EQ(out.region_projection.size(), 0);
    }
}

template <class T>
void check_fixture(const std::string& name, models::PosEmbedKind positions, models::Pooling pool) {
    Fixture<T> f(name);
    models::CTEncoder<T> encoder(small_config(positions, pool));
    const auto report = io::load_state_dict<T>(encoder, f.file, io::key_maps::ct_encoder(), "param.");
    EXPECT_TRUE(report.skipped.empty());
    if (positions == models::PosEmbedKind::sincos) {
        // MONAI computes its table in float32 even for a float64 model: vit3d's (computed in double) agrees
        // to float precision; the model is then compared with MONAI's own table, at the model's tolerance.
        const Tensor<T> monai = f.out("sincos_table");
        const Tensor<T>& own = encoder.sincos_table;
        ASSERT_EQ(own.shape(), monai.shape());
        for (Index i = 0; i < own.size(); ++i)
            ASSERT_NEAR(own.data()[i], monai.data()[i], 1e-6) << "at " << i;
        encoder.sincos_table = monai;
    }
    const Tensor<T> volume = f.in("volume");
    const Tensor<std::int16_t> mask = labels_of(f.in("mask"));

    // The pieces first, so that a divergence is located.
    EXPECT_MATCHES_REFERENCE(encoder.blocks[0].attn.slice_bias.bias(encoder.config.grid(), 1),
                             f.out("slice_bias0"));
    const auto state = encoder.embed(volume, &mask);
    EXPECT_MATCHES_REFERENCE(state.assignment, f.out("assignment_with_background"));
    EXPECT_MATCHES_REFERENCE(state.regions, f.out("region_tokens"));

    expect_outputs_match(encoder.forward(volume, mask), f, "", true);
    expect_outputs_match(encoder.forward(volume), f, "nomask.", false);
}

TYPED_TEST(CTEncoderParity, FactorizedPositionsClsPoolingWithAndWithoutAMask) {
    check_fixture<TypeParam>("ct_encoder_factorized", models::PosEmbedKind::factorized3d,
                             models::Pooling::cls);
}

TYPED_TEST(CTEncoderParity, SinCosPositionsMeanPoolingWithAndWithoutAMask) {
    check_fixture<TypeParam>("ct_encoder_sincos", models::PosEmbedKind::sincos, models::Pooling::mean);
}

TEST(CTEncoder, StagesComposeToForward) {
    models::CTEncoder<float> encoder(small_config(models::PosEmbedKind::factorized3d, models::Pooling::cls));
    std::uint64_t seed = 1;
    encoder.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.0f, 0.2f);
    });
    const auto volume = Tensor<float>::randn({1, 1, 8, 32, 32}, 100);
    auto state = encoder.embed(volume);
    for (std::size_t i = 0; i < encoder.blocks.size(); ++i) encoder.run_block(i, state);
    EXPECT_TENSOR_EQ(encoder.finish(std::move(state)).local, encoder.forward(volume).local);
}

TEST(CTEncoder, SavedAsASelfDescribingFileItLoadsBackAndGivesTheSameFeatures) {
    models::CTEncoder<float> encoder(small_config(models::PosEmbedKind::sincos, models::Pooling::mean));
    std::uint64_t seed = 30;
    encoder.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.0f, 0.2f);
    });
    const std::string path = ::testing::TempDir() + "vit3d_ct_encoder_saved.safetensors";
    io::save_model(path, encoder, io::no_preprocessing("BCDHW", {8, 32, 32}));
    const auto loaded = io::load_model<float>(path);
    std::remove(path.c_str());
    EXPECT_EQ(loaded.kind(), "ct_encoder");
    EXPECT_EQ(loaded.input_shape(), (Shape{1, 8, 32, 32}));
    const auto volume = Tensor<float>::randn({2, 1, 8, 32, 32}, 31);
    const auto direct = encoder.forward(volume);
    EXPECT_TENSOR_EQ(loaded.forward(volume, io::ModelOutput::pooled), direct.global);
    const Tensor<std::uint8_t> mask({2, 1, 8, 32, 32});
    const auto* model = loaded.get_if<models::CTEncoder<float>>();
    ASSERT_NE(model, nullptr);
    EXPECT_TENSOR_EQ(model->forward(volume, mask).region, encoder.forward(volume, mask).region);
}

TEST(CTEncoder, PresetIsTheFullSizeEncoder) {
    const auto c = models::ct_encoder();
    EXPECT_EQ(c.grid(), (std::array<Index, 3>{16, 32, 32}));
    EXPECT_EQ(c.num_patches(), 16384);
    EXPECT_EQ(c.dim, 768);
    EXPECT_EQ(c.depth, 12);
    EXPECT_EQ(c.heads, 12);
    EXPECT_EQ(c.mlp_dim, 4 * c.dim);
    EXPECT_EQ(c.slice_levels, 32);
    EXPECT_EQ(c.regions, 20);
    EXPECT_EQ(models::ct_encoder_256().num_patches(), 4096);
}

TEST(CTEncoder, RefusesContradictoryConfigsAndWrongVolumes) {
    auto c = small_config(models::PosEmbedKind::factorized3d, models::Pooling::cls);
    c.pool = models::Pooling::none;
    EXPECT_THROW(models::CTEncoder<float>{c}, vit3d::config_error);
    c = small_config(models::PosEmbedKind::learned, models::Pooling::cls);
    EXPECT_THROW(models::CTEncoder<float>{c}, vit3d::config_error);
    c = small_config(models::PosEmbedKind::factorized3d, models::Pooling::cls);
    c.input_size = {8, 30, 32};
    EXPECT_THAT([&] { models::CTEncoder<float>{c}; }, ::testing::ThrowsMessage<vit3d::config_error>(
                                                          HasSubstr("not a positive multiple of the patch")));
    c = small_config(models::PosEmbedKind::factorized3d, models::Pooling::cls);
    c.dim = 20;
    EXPECT_THROW(models::CTEncoder<float>{c}, vit3d::config_error);  // dim % 3

    const models::CTEncoder<float> encoder(
        small_config(models::PosEmbedKind::factorized3d, models::Pooling::cls));
    EXPECT_THAT(
        [&] {
            encoder.forward(Tensor<float>({1, 1, 8, 32, 16}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected a volume [B, 1, 8, 32, 32], got [1, 1, 8, 32, 16]")));
    const Tensor<std::uint8_t> small_mask({1, 1, 8, 32, 16});
    EXPECT_THAT(
        [&] {
            encoder.forward(Tensor<float>({1, 1, 8, 32, 32}), small_mask);
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected a mask [B, 1, S0, S1, S2] of the volume's size [1, 1, 8, 32, 32], got [1, 1, "
                      "8, 32, 16]")));
}

nn::AnatomicalEncoder<float> small_anatomy(Index regions) {
    nn::AnatomicalEncoderConfig c;
    c.dim = 4;
    c.regions = regions;
    c.patch = {1, 2, 2};
    return nn::AnatomicalEncoder<float>(c);
}

TEST(AnatomicalEncoder, AssignmentIsEachPatchsShareOfVoxelsPerLabel) {
    const auto anatomy = small_anatomy(3);
    // One volume [1, 1, 1, 2, 4]: two patches of 2x2 voxels.
    const Tensor<std::uint8_t> mask({1, 1, 1, 2, 4}, std::vector<std::uint8_t>{0, 1, 2, 2, 1, 1, 3, 2});
    const Tensor<float> a = anatomy.assignment(mask, {1, 1, 1, 2, 4});
    ASSERT_EQ(a.shape(), (Shape{1, 2, 4}));
    EXPECT_TENSOR_EQ(a,
                     (Tensor<float>({1, 2, 4}, std::vector<float>{0.25f, 0.75f, 0, 0, 0, 0, 0.75f, 0.25f})));
    // Any integer type, [B, S0, S1, S2] too.
    const Tensor<std::int32_t> wide({1, 1, 2, 4}, std::vector<std::int32_t>{0, 1, 2, 2, 1, 1, 3, 2});
    EXPECT_TENSOR_EQ(anatomy.assignment(wide, {1, 1, 1, 2, 4}), a);
}

TEST(AnatomicalEncoder, RejectsLabelsBeyondTheRegionsAndNegativeOnes) {
    const auto anatomy = small_anatomy(3);
    const Tensor<std::int16_t> high({1, 1, 1, 2, 4}, std::vector<std::int16_t>{0, 1, 2, 2, 1, 4, 3, 2});
    EXPECT_THAT(
        [&] {
            anatomy.assignment(high, {1, 1, 1, 2, 4});
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected labels 0..3, got 4 at flat voxel 5")));
    const Tensor<std::int16_t> negative({1, 1, 1, 2, 4}, std::vector<std::int16_t>{0, -1, 2, 2, 1, 1, 3, 2});
    EXPECT_THAT(
        [&] {
            anatomy.assignment(negative, {1, 1, 1, 2, 4});
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("got -1 at flat voxel 1")));
}

TEST(AnatomicalEncoder, AnAbsentRegionGetsItsEmbeddingOnly) {
    auto anatomy = small_anatomy(2);
    anatomy.region_embed = Tensor<float>::randn({3, 4}, 5);
    const Tensor<float> patches = Tensor<float>::randn({1, 2, 4}, 6);
    // Region 2 absent; region 1 is 3/4 of patch 0 and all of patch 1.
    const Tensor<float> a({1, 2, 3}, std::vector<float>{0.25f, 0.75f, 0, 0, 1, 0});
    const Tensor<float> g = anatomy.region_tokens(patches, a);
    for (Index d = 0; d < 4; ++d) {
        EXPECT_FLOAT_EQ(g(0, 2, d), anatomy.region_embed(2, d));
        EXPECT_NEAR(g(0, 1, d),
                    (0.75f * patches(0, 0, d) + patches(0, 1, d)) / 1.75f + anatomy.region_embed(1, d), 1e-6);
        EXPECT_NEAR(g(0, 0, d), patches(0, 0, d) + anatomy.region_embed(0, d), 1e-6);
    }
}

TEST(RegionAwareAttention, APureBackgroundPatchAndThePrefixReceiveNothing) {
    nn::RegionAwareAttentionConfig c;
    c.dim = 8;
    c.heads = 2;
    nn::RegionAwareAttention<float> attention(c);
    std::uint64_t seed = 10;
    attention.visit_parameters(
        [&](const std::string&, Tensor<float>& t) { t = Tensor<float>::randn(t.shape(), seed++); });
    const Tensor<float> x = Tensor<float>::randn({1, 3, 8}, 20),
                        regions = Tensor<float>::randn({1, 3, 8}, 21);
    // Patch 0 all background, patch 1 half region 2.
    const Tensor<float> a({1, 2, 3}, std::vector<float>{1, 0, 0, 0.5f, 0, 0.5f});
    const Tensor<float> y = attention.forward(x, regions, a, 1);
    for (Index d = 0; d < 8; ++d) {
        EXPECT_EQ(y(0, 0, d), 0.0f);  // the class token
        EXPECT_EQ(y(0, 1, d), 0.0f);  // the background patch
    }
    EXPECT_GT(y.narrow(1, 2, 1).flat().cwiseAbs().maxCoeff(), 0.0f);
}

}  // namespace
