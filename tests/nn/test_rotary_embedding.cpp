// The rotary position embeddings of timm's eva models against timm's own modules
// (tests/fixtures/rotary/, made by tests/fixtures/make_rotary_fixtures.py), and their error cases.
//
// Only the headers this test needs are included (not <vit3d.hpp> or support/fixtures.hpp, which includes
// it), so that it builds whatever state the other modules are in.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "support/enum_tables.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/nn/rotary_embedding.hpp"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using vit3d::config_error;
using vit3d::Index;
using vit3d::shape_error;
using vit3d::Tensor;
namespace nn = vit3d::nn;

// The project's parity tolerance (tests/support/fixtures.hpp): max |actual - expected| <= tol * scale,
// scale = max(1, max |expected|).
template <class T>
constexpr double parity_tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

// The tolerance of tables timm computes in float32 (in a float32 module; the float64 tables of 'mixed'; those
// a float64 model caches at construction), tighter than the parity tolerance. Their values lie within 1, so
// one float32 ulp is at most 6e-8: timm's float32 sin and cos (vectorised, within an ulp) and vit3d's
// (correctly rounded) differ by that much at most when the angles are the same float32 numbers, while an
// angle rounded otherwise than timm's (2 pi not rounded to float32 first, a product not rounded) shows as
// several ulps.
constexpr double float32_table_tolerance = 1e-7;

// Compares with the parity rule and records the worst error relative to the scale as a test property
// (--gtest_output=json shows it).
template <class T>
::testing::AssertionResult matches(const Tensor<T>& actual, const Tensor<T>& expected, double tolerance,
                                   const std::string& what) {
    if (actual.shape() != expected.shape())
        return ::testing::AssertionFailure() << what << ": shape " << vit3d::message(actual.shape())
                                             << ", reference " << vit3d::message(expected.shape());
    double scale = 1.0, worst = 0.0;
    Index at = 0;
    for (Index i = 0; i < actual.size(); ++i) {
        scale = std::max(scale, std::abs(static_cast<double>(expected.data()[i])));
        const double error = std::abs(static_cast<double>(actual.data()[i]) - expected.data()[i]);
        if (!(error <= worst)) {
            worst = error;
            at = i;
        }
    }
    char relative[32];
    std::snprintf(relative, sizeof relative, "%.3g", worst / scale);
    ::testing::Test::RecordProperty(what, relative);
    if (worst <= tolerance * scale) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": max abs error " << worst << " > " << tolerance
                                         << " x scale " << scale << " at flat index " << at << ": actual "
                                         << actual.data()[at] << ", reference " << expected.data()[at];
}

// A fixture file and the settings in its metadata.
template <class T>
struct RotaryFixture {
    vit3d::io::Safetensors file;
    nn::RotaryEmbeddingConfig config;
    std::array<Index, 2> grid{};
    Index prefix = 0, heads = 0, depth = 0;

    explicit RotaryFixture(const std::string& name)
        : file(vit3d::io::Safetensors::read(std::string(VIT3D_TEST_FIXTURE_DIR) + "/rotary/" + name +
                                            (std::is_same_v<T, float> ? "_f32" : "_f64") + ".safetensors")) {
        // The config is read through its field list, so that a field the script writes and the config
        // lacks (or the reverse) fails here.
        const nlohmann::json json = nlohmann::json::parse(file.metadata().at("config"));
        std::size_t fields = 0;
        config.visit_fields([&](const auto& field) {
            using Value = std::remove_reference_t<decltype(field.value)>;
            const nlohmann::json& value = json.at(field.name);
            if constexpr (std::is_enum_v<Value>)
                field.value = vit3d::enum_from_name<Value>(value.get<std::string>()).value();
            else
                field.value = value.get<Value>();
            ++fields;
        });
        EXPECT_EQ(fields, json.size()) << "the fixture's config has fields RotaryEmbeddingConfig lacks";
        const nlohmann::json setting = nlohmann::json::parse(file.metadata().at("setting"));
        grid = setting.at("grid").get<std::array<Index, 2>>();
        prefix = setting.at("prefix").get<Index>();
        heads = setting.at("heads").get<Index>();
        depth = setting.at("depth").get<Index>();
    }

    bool mixed() const { return config.variant == nn::RotaryVariant::mixed; }

    // The tables vit3d computes for this fixture (of the last block, for 'mixed').
    nn::RotaryTables<T> tables(Index block = -1) const {
        if (!mixed()) return nn::rotary_tables<T>(config, grid);
        nn::RotaryEmbeddingMixed<T> rope;
        rope.freqs = file.get<T>("param.rope.freqs");
        return nn::mixed_rotary_tables(config, rope, block < 0 ? depth - 1 : block, grid);
    }

    // The tolerance of the tables: float32 ones (always for 'mixed', which timm computes in float32) to an
    // ulp, float64 ones to the parity tolerance.
    double table_tolerance() const {
        return std::is_same_v<T, float> || mixed() ? float32_table_tolerance : parity_tolerance<double>();
    }
    // The parity tolerance of the rotated queries and keys, float32's for 'mixed'.
    double tolerance() const { return mixed() ? parity_tolerance<float>() : parity_tolerance<T>(); }
};

// Tables [heads or 1, N, P] in timm's get_embed layout [heads or 1, N, 2 * head_dim]: [sin | cos], each value
// of pair p at columns 2p and 2p + 1 (interleaved) or p and p + P (rotate_half).
template <class T>
Tensor<T> timm_layout(const nn::RotaryTables<T>& tables) {
    const Index H = tables.sin.dim(0), N = tables.sin.dim(1), P = tables.sin.dim(2), D = 2 * P;
    Tensor<T> out({H, N, 2 * D});
    for (Index h = 0; h < H; ++h)
        for (Index n = 0; n < N; ++n) {
            T* row = out.data() + (h * N + n) * 2 * D;
            for (Index p = 0; p < P; ++p) {
                const Index first = tables.rotate_half ? p : 2 * p,
                            second = tables.rotate_half ? p + P : 2 * p + 1;
                const T s = tables.sin.data()[(h * N + n) * P + p],
                        c = tables.cos.data()[(h * N + n) * P + p];
                row[first] = row[second] = s;
                row[D + first] = row[D + second] = c;
            }
        }
    return out;
}

// timm's table of `block` for one head set: [N, 2 * head_dim] for cat / dinov3, [heads, N, 2 * head_dim] of
// one block for 'mixed' ([depth, heads, N, 2 * head_dim] in the file); both as [heads or 1, N, 2 * head_dim].
template <class T>
Tensor<T> reference_table(const RotaryFixture<T>& fx, const std::string& key, Index block) {
    const Tensor<T> rope = fx.file.template get<T>(key);
    if (!fx.mixed()) return rope.reshape({1, rope.dim(0), rope.dim(1)});
    return rope.select(0, block);
}

const char* const cases[] = {"cat_eva02",       "cat_rope_reg4",    "cat_naver",
                             "cat_pe_core",     "cat_pe_gigantic",  "dinov3",
                             "dinov3_sapiens2", "dinov3_xy_offset", "mixed_naver"};

class RotaryParity : public ::testing::TestWithParam<const char*> {};

template <class T>
void expect_tables_match_timm(const std::string& name) {
    const RotaryFixture<T> fx(name);
    const Index blocks = fx.mixed() ? fx.depth : 1;
    for (Index block = 0; block < blocks; ++block)
        EXPECT_TRUE(matches(timm_layout(fx.tables(block)), reference_table(fx, "out.rope", block),
                            fx.table_tolerance(), "tables.block" + std::to_string(block)));
}

// The fixture's queries (and keys) in a fused qkv buffer [B, N, 3, heads, head_dim] of two samples (both the
// fixture's), the rest random; rotated in place, then compared with timm's; every other value must be
// untouched.
template <class T>
void expect_rotation_matches_timm(const std::string& name) {
    const RotaryFixture<T> fx(name);
    const bool keys = fx.file.contains("in.k");
    const Tensor<T> q = fx.file.template get<T>("in.q");  // [1, heads, N, head_dim]
    const Index heads = q.dim(1), N = q.dim(2), d = q.dim(3), B = 2, width = heads * d;
    ASSERT_EQ(heads, fx.heads);
    Tensor<T> qkv = Tensor<T>::randn({B, N, 3, heads, d}, 7);
    const auto at = [&](Tensor<T>& t, Index b, Index n, Index slot, Index h) {
        return t.data() + ((b * N + n) * 3 + slot) * width + h * d;
    };
    const Index slots = keys ? 2 : 1;
    for (Index slot = 0; slot < slots; ++slot) {
        const Tensor<T> in = fx.file.template get<T>(slot == 0 ? "in.q" : "in.k");
        for (Index b = 0; b < B; ++b)
            for (Index n = 0; n < N; ++n)
                for (Index h = 0; h < heads; ++h)
                    std::copy_n(in.data() + (h * N + n) * d, d, at(qkv, b, n, slot, h));
    }
    const Tensor<T> before = qkv;
    const nn::RotaryTables<T> tables = fx.tables();
    for (Index slot = 0; slot < slots; ++slot) {
        const nn::RotaryRows<T> rows{qkv.data() + slot * width, B, N, heads, d, N * 3 * width, 3 * width};
        nn::apply_rotary_embedding(rows, fx.prefix, tables);
    }
    for (Index slot = 0; slot < 3; ++slot)
        for (Index b = 0; b < B; ++b) {
            if (slot < slots) {
                Tensor<T> got({1, heads, N, d});
                for (Index n = 0; n < N; ++n)
                    for (Index h = 0; h < heads; ++h)
                        std::copy_n(at(qkv, b, n, slot, h), d, got.data() + (h * N + n) * d);
                const std::string what = (slot == 0 ? "q.sample" : "k.sample") + std::to_string(b);
                EXPECT_TRUE(matches(got, fx.file.template get<T>(slot == 0 ? "out.q" : "out.k"),
                                    fx.tolerance(), what));
            } else {
                for (Index n = 0; n < N; ++n)
                    for (Index h = 0; h < heads; ++h)
                        ASSERT_TRUE(std::equal(at(qkv, b, n, slot, h), at(qkv, b, n, slot, h) + d,
                                               before.data() + (at(qkv, b, n, slot, h) - qkv.data())))
                            << "slot " << slot << " of sample " << b << ", token " << n << ", head " << h
                            << " was written";
            }
        }
}

TEST_P(RotaryParity, TablesMatchTimmInFloat32) { expect_tables_match_timm<float>(GetParam()); }
TEST_P(RotaryParity, TablesMatchTimmInFloat64) { expect_tables_match_timm<double>(GetParam()); }
TEST_P(RotaryParity, RotatedQueriesAndKeysMatchTimmInFloat32) {
    expect_rotation_matches_timm<float>(GetParam());
}
TEST_P(RotaryParity, RotatedQueriesAndKeysMatchTimmInFloat64) {
    expect_rotation_matches_timm<double>(GetParam());
}

// The float32 tables of float64 timm models: cached at construction (computed in float32), 'cat''s
// get_embed(shape) without a dtype (float64 tables rounded to float32), and every table of 'mixed', as the
// header's comment says.
TEST_P(RotaryParity, Float32TablesOfFloat64TimmModelsComeFromTheFloatTables) {
    const RotaryFixture<double> fx(GetParam());
    if (fx.mixed()) {
        const nn::RotaryTables<double> tables = fx.tables();
        for (const Tensor<double>* t : {&tables.sin, &tables.cos})
            for (Index i = 0; i < t->size(); ++i)
                ASSERT_EQ(t->data()[i], static_cast<float>(t->data()[i])) << "at " << i;
        return;
    }
    const auto cached = nn::cast_rotary_tables<double>(nn::rotary_tables<float>(fx.config, fx.grid));
    EXPECT_TRUE(matches(timm_layout(cached), reference_table(fx, "out.rope_cached", 0),
                        float32_table_tolerance, "tables.cached"));
    if (fx.config.variant != nn::RotaryVariant::cat) return;
    const auto rounded = nn::cast_rotary_tables<double>(nn::cast_rotary_tables<float>(fx.tables()));
    EXPECT_TRUE(matches(timm_layout(rounded), reference_table(fx, "out.rope_default_dtype", 0),
                        float32_table_tolerance, "tables.default_dtype"));
}

INSTANTIATE_TEST_SUITE_P(Timm, RotaryParity, ::testing::ValuesIn(cases),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             return std::string(info.param);
                         });

nn::RotaryEmbeddingConfig eva02(Index head_dim = 16) {
    nn::RotaryEmbeddingConfig c;
    c.head_dim = head_dim;
    c.ref_feat_shape = {16, 16};
    return c;
}

nn::RotaryEmbeddingConfig mixed(Index head_dim = 16) {
    nn::RotaryEmbeddingConfig c;
    c.variant = nn::RotaryVariant::mixed;
    c.head_dim = head_dim;
    c.temperature = 10.0;
    c.grid_indexing = nn::GridIndexing::xy;
    return c;
}

TEST(RotaryEmbedding, ConfigListsEveryMember) {
    EXPECT_EQ(vit3d::listed_field_count<nn::RotaryEmbeddingConfig>(),
              vit3d::member_count<nn::RotaryEmbeddingConfig>());
}

TEST(RotaryEmbedding, EnumsHaveCompleteNameTables) {
    vit3d::test::expect_complete_enum_table<nn::RotaryVariant, 8>();
    vit3d::test::expect_complete_enum_table<nn::GridIndexing, 8>();
}

TEST(RotaryEmbedding, MixedFrequenciesHaveTimmsParameterName) {
    const nn::RotaryEmbeddingMixed<float> rope(2, 3, 16);
    std::vector<std::string> names;
    rope.visit_parameters(
        [&](const std::string& name, const Tensor<float>& t) {
            names.push_back(name);
            EXPECT_EQ(t.shape(), (vit3d::Shape{2, 2, 3, 8}));
        },
        "rope");
    EXPECT_EQ(names, std::vector<std::string>{"rope.freqs"});
}

TEST(RotaryEmbedding, RejectsAnEmptyGridAndNamesIt) {
    EXPECT_THAT(
        [] {
            nn::rotary_tables<float>(eva02(), {0, 3});
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("vit3d::nn::rotary_tables"),
                                         HasSubstr("at least one patch along each axis, got [0, 3]"))));
    const nn::RotaryEmbeddingMixed<float> rope(2, 2, 16);
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(mixed(), rope, 0, {4, -1});
        },
        ThrowsMessage<shape_error>(
            AllOf(HasSubstr("vit3d::nn::mixed_rotary_tables"), HasSubstr("got [4, -1]"))));
}

TEST(RotaryEmbedding, RejectsAHeadDimNotDivisibleByFour) {
    EXPECT_THAT(
        [] {
            nn::rotary_tables<double>(eva02(18), {5, 3});
        },
        ThrowsMessage<config_error>(
            AllOf(HasSubstr("vit3d::nn::rotary_tables: expected head_dim divisible by 4"),
                  HasSubstr("got head_dim 18"))));
    const nn::RotaryEmbeddingMixed<float> rope(2, 2, 18);
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(mixed(18), rope, 0, {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("got head_dim 18")));
}

TEST(RotaryEmbedding, RejectsMixedFrequenciesOfAnotherShapeOrBlock) {
    nn::RotaryEmbeddingMixed<float> rope;
    rope.freqs = Tensor<float>({2, 2, 3, 7});
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(mixed(16), rope, 0, {5, 3});
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("vit3d::nn::mixed_rotary_tables"),
                                         HasSubstr("expected freqs [2, depth, heads, 8]"),
                                         HasSubstr("got [2, 2, 3, 7]"))));
    rope.freqs = Tensor<float>({2, 2, 3, 8});
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(mixed(16), rope, 2, {5, 3});
        },
        ThrowsMessage<shape_error>(HasSubstr("expected a block in [0, 2) (freqs [2, 2, 3, 8]), got 2")));
}

TEST(RotaryEmbedding, RejectsSettingsTimmDropsOrRefuses) {
    nn::RotaryEmbeddingConfig dinov3;
    dinov3.variant = nn::RotaryVariant::dinov3;
    dinov3.head_dim = 16;
    dinov3.ref_feat_shape = {14, 14};
    EXPECT_THAT(
        [&] {
            nn::rotary_tables<float>(dinov3, {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("expected ref_feat_shape [0, 0] for dinov3")));
    nn::RotaryEmbeddingConfig half = mixed();
    half.rotate_half = true;
    const nn::RotaryEmbeddingMixed<float> rope(2, 2, 16);
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(half, rope, 0, {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("expected rotate_half false for mixed")));
    nn::RotaryEmbeddingConfig ref = eva02();
    ref.ref_feat_shape = {16, 0};
    EXPECT_THAT(
        [&] {
            nn::rotary_tables<float>(ref, {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("two positive sizes, got [16, 0]")));
    EXPECT_THAT(
        [] {
            nn::rotary_tables<float>(mixed(), {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("expected variant cat or dinov3, got mixed")));
    EXPECT_THAT(
        [&] {
            nn::mixed_rotary_tables(eva02(), rope, 0, {5, 3});
        },
        ThrowsMessage<config_error>(HasSubstr("expected variant mixed, got cat")));
}

TEST(RotaryEmbedding, RejectsRowsThatDoNotFitTheTables) {
    const auto tables = nn::rotary_tables<float>(eva02(), {5, 3});  // 15 patches, head_dim 16
    Tensor<float> q({1, 16, 2 * 16});
    const nn::RotaryRows<float> rows{q.data(), 1, 16, 2, 16, 16 * 32, 32};
    EXPECT_THAT([&] { nn::apply_rotary_embedding(rows, 2, tables); },
                ThrowsMessage<shape_error>(AllOf(HasSubstr("vit3d::nn::apply_rotary_embedding"),
                                                 HasSubstr("expected 15 patch tokens after 2 prefix tokens "
                                                           "(tables [1, 15, 8]), got 16 tokens"))));
    nn::RotaryRows<float> wide = rows;
    wide.heads = 1, wide.head_dim = 32;
    EXPECT_THAT(
        [&] { nn::apply_rotary_embedding(wide, 1, tables); },
        ThrowsMessage<shape_error>(HasSubstr("of head_dim 16 (twice the tables' last axis), got batch 1, 1 "
                                             "heads of head_dim 32")));
    nn::RotaryRows<float> overlapping = rows;
    overlapping.token_stride = 16;
    EXPECT_THAT([&] { nn::apply_rotary_embedding(overlapping, 1, tables); },
                ThrowsMessage<shape_error>(HasSubstr("token_stride >= 32")));
    nn::RotaryEmbeddingMixed<float> rope(2, 3, 16);
    const auto per_head = nn::mixed_rotary_tables(mixed(), rope, 1, {5, 3});  // 3 heads
    EXPECT_THAT(
        [&] { nn::apply_rotary_embedding(rows, 1, per_head); },
        ThrowsMessage<shape_error>(HasSubstr("expected tables for 1 or 2 heads, got sin [3, 15, 8]")));
}

}  // namespace
