// Tests for vit3d/transforms/spacing.hpp against MONAI 1.6.1's Spacing
// (tests/fixtures/make_spacing_fixtures.py): output shapes, affines and voxels for diagonal, LPS-like,
// permuted, oblique and sheared affines, up- and downsampling, short, long and non-positive pixdim,
// min_pixdim / max_pixdim, border, zeros and reflection padding, bilinear and nearest, diagonal=True,
// resampling in float64 and in float32 (dtype=None), float and double, volumes, images and a single
// slice; CT-sized geometries; integer label maps; and the errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>
#include <vit3d/formats/npy.hpp>
#include <vit3d/transforms/spacing.hpp>

#include "support/enum_tables.hpp"
#include "support/io_testing.hpp"

namespace vit3d::transforms {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// The fixtures' voxel values lie in [-1000, 1000) (labels: 0..5).
constexpr double kValueScale = 1000.0;
// spacing() follows the order of operations of MONAI, torch and the BLAS / LAPACK under them, so that on
// these fixtures every output affine and voxel is bit-identical (x86-64; RecordProperty keeps the figures),
// which MatchesMonaiOnEveryFixture expects.
// The tolerances leave room for a compiler that fuses multiplies and adds on its own: affines absolute,
// voxels relative to the value scale; resampling in float (dtype=None) carries float rounding in the
// source positions.
constexpr double kAffineTolerance = 1e-12;
constexpr double kFloatTolerance = 2.4e-7;
constexpr double kDoubleTolerance = 1e-14;
constexpr double kFloatComputeTolerance = 1e-5;

nlohmann::json Cases() {
    std::ifstream in(test::FixturePath("spacing/cases.json"));
    return nlohmann::json::parse(in);
}

Affine ToAffine(const nlohmann::json& rows) {
    Affine a{};
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c) a[r][c] = rows.at(r).at(c).get<double>();
    return a;
}

std::vector<double> Bounds(const nlohmann::json& value) {
    std::vector<double> out;
    if (value.is_null()) return out;
    for (const auto& v : value)
        out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
    return out;
}

SpacingOptions Options(const nlohmann::json& c) {
    SpacingOptions o;
    o.mode = c.at("mode") == "nearest" ? SpacingMode::nearest : SpacingMode::bilinear;
    o.padding = c.at("padding") == "zeros"        ? SpacingPadding::zeros
                : c.at("padding") == "reflection" ? SpacingPadding::reflection
                                                  : SpacingPadding::border;
    o.min_pixdim = Bounds(c.at("min_pixdim"));
    o.max_pixdim = Bounds(c.at("max_pixdim"));
    o.resample_in_input_type = c.at("resample_dtype") == "input";
    o.diagonal = c.at("diagonal").get<bool>();
    return o;
}

double MaxAffineError(const Affine& a, const Affine& b) {
    double worst = 0.0;
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c) worst = std::max(worst, std::abs(a[r][c] - b[r][c]));
    return worst;
}

struct Comparison {
    double max_error = 0.0;  // max |actual - expected|
    Index differing = 0;     // elements not bit-identical
};

template <class T>
Comparison Compare(const Tensor<T>& actual, const Tensor<T>& expected) {
    Comparison c;
    for (Index i = 0; i < actual.size(); ++i) {
        const double d = std::abs(double(actual.data()[i]) - double(expected.data()[i]));
        c.max_error = std::max(c.max_error, d);
        c.differing += actual.data()[i] != expected.data()[i];
    }
    return c;
}

// The worst figures per kind of case ("float", "double", "float resampled in float"), for the test's record.
struct Stats {
    double max_error = 0.0;
    Index not_identical = 0, voxels = 0;
};
using Measured = std::map<std::string, Stats>;

template <class T>
void CheckCase(const nlohmann::json& c, double& worst_affine, Measured& measured) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const SpatialImage<T> image{
        io::read_npy<T>(test::FixturePath("spacing/" + c.at("input").get<std::string>() + ".npy")),
        ToAffine(c.at("affine"))};
    const auto pixdim = c.at("pixdim").get<std::vector<double>>();
    const SpacingOptions options = Options(c);
    const SpatialImage<T> out = spacing(image, pixdim, options);
    const Tensor<T> expected = io::read_npy<T>(test::FixturePath("spacing/" + name + ".npy"));
    ASSERT_EQ(out.data.shape(), c.at("shape").get<Shape>());
    ASSERT_EQ(out.data.shape(), expected.shape());
    const double affine_error = MaxAffineError(out.affine, ToAffine(c.at("out_affine")));
    EXPECT_LE(affine_error, kAffineTolerance);
    const Comparison cmp = Compare(out.data, expected);
    const bool in_float = std::is_same_v<T, float>;
    if (options.mode == SpacingMode::nearest) {
        EXPECT_EQ(cmp.differing, 0) << "max |error| " << cmp.max_error;
    } else {
        const double tolerance = in_float && options.resample_in_input_type ? kFloatComputeTolerance
                                 : in_float                                 ? kFloatTolerance
                                                                            : kDoubleTolerance;
        EXPECT_LE(cmp.max_error, tolerance * kValueScale);
    }
    // The geometry alone is the resampled image's.
    const SpacingGeometry g = spacing_geometry(image.affine, image.spatial_shape(), pixdim, options);
    EXPECT_EQ(g.spatial_shape, out.spatial_shape());
    EXPECT_EQ(g.affine, out.affine);
    worst_affine = std::max(worst_affine, affine_error);
    Stats& stats = measured[std::string(in_float ? "float" : "double") +
                            (options.resample_in_input_type && in_float ? "_resampled_in_float" : "")];
    stats.max_error = std::max(stats.max_error, cmp.max_error);
    stats.not_identical += cmp.differing;
    stats.voxels += out.data.size();
}

TEST(Spacing, MatchesMonaiOnEveryFixture) {
    const nlohmann::json cases = Cases();
    ASSERT_EQ(cases.at("monai"), "1.6.1");
    ASSERT_GE(cases.at("cases").size(), 50u);
    double worst_affine = 0.0;
    Measured m;
    for (const auto& c : cases.at("cases")) {
        if (c.at("dtype") == "float64")
            CheckCase<double>(c, worst_affine, m);
        else
            CheckCase<float>(c, worst_affine, m);
    }
    RecordProperty("max_affine_error", message(worst_affine));
    EXPECT_EQ(worst_affine, 0.0);  // as for the voxels below: bit-identical when built as this project builds
    for (const auto& [kind, stats] : m) {
        RecordProperty(kind + "_max_error", message(stats.max_error));
        RecordProperty(kind + "_not_bit_identical", message(stats.not_identical, " of ", stats.voxels));
        // Built as this project builds its tests (no -march, so nothing fused that the header does not
        // fuse), every voxel is MONAI's.
        EXPECT_EQ(stats.not_identical, 0) << kind << ": max |error| " << stats.max_error;
    }
}

TEST(Spacing, GeometryOfCtSizedVolumesMatchesMonai) {
    // 512 x 512 x 300 at 0.7 x 0.7 x 1.5 mm to 1.5 x 1.5 x 3 mm and the like: shapes and affines only
    // (the z extent 299 * 1.5 / 3 + 1 = 150.5 rounds half to even, to 150).
    const nlohmann::json cases = Cases();
    ASSERT_GE(cases.at("geometry").size(), 5u);
    for (const auto& c : cases.at("geometry")) {
        SCOPED_TRACE(c.at("name").get<std::string>());
        const SpacingGeometry g =
            spacing_geometry(ToAffine(c.at("affine")), c.at("spatial_shape").get<Shape>(),
                             c.at("pixdim").get<std::vector<double>>());
        EXPECT_TRUE(g.resampled);
        EXPECT_EQ(g.spatial_shape, c.at("out_spatial_shape").get<Shape>());
        EXPECT_EQ(MaxAffineError(g.affine, ToAffine(c.at("out_affine"))), 0.0);
    }
}

TEST(Spacing, UnchangedSpacingReturnsTheInput) {
    Affine a = identity_affine();
    a[0][0] = 0.7;
    a[1][1] = 0.8;
    a[2][2] = 1.5;
    a[0][3] = 12.0;
    const SpatialImage<float> image{Tensor<float>::rand({2, 6, 5, 4}, 1), a};
    const SpatialImage<float> out = spacing(image, {0.7005, 0.8, 1.5});  // within MONAI's 1e-3
    EXPECT_EQ(out.affine, image.affine);
    ASSERT_EQ(out.data.shape(), image.data.shape());
    EXPECT_TRUE(std::equal(out.data.begin(), out.data.end(), image.data.begin()));
}

TEST(Spacing, ThreadCountDoesNotChangeTheResult) {
    Affine a = identity_affine();
    a[0][0] = 0.7;
    a[0][1] = 0.2;
    a[1][1] = -0.8;
    a[2][2] = 1.5;
    const SpatialImage<float> image{Tensor<float>::rand({2, 40, 30, 20}, 7), a};
    for (const SpacingMode mode : {SpacingMode::bilinear, SpacingMode::nearest}) {
        SpacingOptions options;
        options.mode = mode;
        const int saved = num_threads();
        set_num_threads(1);
        const SpatialImage<float> one = spacing(image, {0.5, 1.1, 0.9}, options);
        set_num_threads(2);
        const SpatialImage<float> two = spacing(image, {0.5, 1.1, 0.9}, options);
        set_num_threads(saved);
        ASSERT_EQ(one.data.shape(), two.data.shape());
        EXPECT_TRUE(std::equal(one.data.begin(), one.data.end(), two.data.begin()));
    }
}

TEST(Spacing, IntegerLabelMapsTakeNearestAndKeepTheirValues) {
    const nlohmann::json cases = Cases();
    int checked = 0;
    for (const auto& c : cases.at("cases")) {
        if (c.at("input") != "labels_f32" || c.at("resample_dtype") != "float64") continue;
        SCOPED_TRACE(c.at("name").get<std::string>());
        const Tensor<float> labels = io::read_npy<float>(test::FixturePath("spacing/labels_f32.npy"));
        Tensor<std::uint8_t> as_bytes = Tensor<std::uint8_t>::empty(labels.shape());
        std::transform(labels.begin(), labels.end(), as_bytes.begin(),
                       [](float v) { return static_cast<std::uint8_t>(v); });
        const SpatialImage<std::uint8_t> image{as_bytes, ToAffine(c.at("affine"))};
        const SpatialImage<std::uint8_t> out =
            spacing(image, c.at("pixdim").get<std::vector<double>>(), Options(c));
        const Tensor<float> expected =
            io::read_npy<float>(test::FixturePath("spacing/" + c.at("name").get<std::string>() + ".npy"));
        ASSERT_EQ(out.data.shape(), expected.shape());
        EXPECT_TRUE(std::equal(out.data.begin(), out.data.end(), expected.begin(),
                               [](std::uint8_t a, float b) { return float(a) == b; }));
        EXPECT_LE(MaxAffineError(out.affine, ToAffine(c.at("out_affine"))), kAffineTolerance);
        ++checked;
    }
    EXPECT_GE(checked, 6);
}

TEST(Spacing, ModesAndPaddingsHaveMonaisNames) {
    test::expect_complete_enum_table<SpacingMode, 8>();
    test::expect_complete_enum_table<SpacingPadding, 8>();
    EXPECT_EQ(enum_from_name<SpacingPadding>("reflection"), SpacingPadding::reflection);
    EXPECT_STREQ(enum_name(SpacingMode::nearest), "nearest");
}

// ---- errors -----------------------------------------------------------------------------------------------

SpatialImage<float> SmallVolume() {
    Affine a = identity_affine();
    a[0][0] = 0.7;
    a[1][1] = 0.8;
    a[2][2] = 1.5;
    return {Tensor<float>::zeros({1, 4, 3, 2}), a};
}

TEST(Spacing, RejectsImagesOfOtherRanksAndEmptyAxes) {
    const Affine a = identity_affine();
    EXPECT_THAT(
        [&] {
            spacing(SpatialImage<float>{Tensor<float>::zeros({1, 4}), a}, {1.0});
        },
        ThrowsMessage<shape_error>(HasSubstr(
            "vit3d::transforms::spacing: expected an image [C, i, j] or [C, i, j, k], got [1, 4]")));
    EXPECT_THAT(
        [&] {
            spacing(SpatialImage<double>{Tensor<double>::zeros({1, 2, 3, 4, 5}), a}, {1.0});
        },
        ThrowsMessage<shape_error>(HasSubstr("got [1, 2, 3, 4, 5]")));
    EXPECT_THAT(
        [&] {
            spacing(SpatialImage<float>{Tensor<float>::zeros({1, 4, 0, 2}), a}, {1.0});
        },
        ThrowsMessage<shape_error>(HasSubstr("expected spatial sizes >= 1, got [4, 0, 2]")));
    EXPECT_THAT(
        [&] {
            spacing_geometry(a, Shape{4, 3, 2, 1}, {1.0});
        },
        ThrowsMessage<shape_error>(HasSubstr(
            "vit3d::transforms::spacing_geometry: expected 2 or 3 spatial sizes, got [4, 3, 2, 1]")));
}

TEST(Spacing, RejectsMissingAndNonFinitePixdim) {
    const SpatialImage<float> image = SmallVolume();
    EXPECT_THAT([&] { spacing(image, {}); },
                ThrowsMessage<std::invalid_argument>(
                    HasSubstr("vit3d::transforms::spacing: expected 1 to 3 pixdim values, got none")));
    EXPECT_THAT(
        [&] {
            spacing(image, {1.0, std::nan(""), 1.0});
        },
        ThrowsMessage<std::invalid_argument>(HasSubstr("expected finite pixdim values, got [1, nan, 1]")));
    EXPECT_THAT(
        [&] {
            spacing(image, {1.0, 1.0, INFINITY});
        },
        ThrowsMessage<std::invalid_argument>(HasSubstr("got [1, 1, inf]")));
}

TEST(Spacing, RejectsContradictoryPixdimBounds) {
    SpacingOptions options;
    options.min_pixdim = {2.0};
    options.max_pixdim = {1.0};
    EXPECT_THAT([&] { spacing(SmallVolume(), {1.0}, options); },
                ThrowsMessage<std::invalid_argument>(HasSubstr(
                    "expected 0 <= min_pixdim <= max_pixdim, got min_pixdim [2] and max_pixdim [1]")));
    options.min_pixdim = {-1.0};
    options.max_pixdim = {1.0};
    EXPECT_THAT([&] { spacing(SmallVolume(), {1.0}, options); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("got min_pixdim [-1] and max_pixdim [1]")));
}

TEST(Spacing, RejectsInterpolatingIntegerImages) {
    const SpatialImage<std::int16_t> labels{Tensor<std::int16_t>::zeros({1, 4, 3, 2}), SmallVolume().affine};
    EXPECT_THAT(
        [&] { spacing(labels, {1.0}); },
        ThrowsMessage<std::invalid_argument>(HasSubstr(
            "vit3d::transforms::spacing: expected mode nearest for an integer image (a label map), got "
            "mode bilinear")));
    SpacingOptions options;
    options.mode = SpacingMode::nearest;
    options.resample_in_input_type = true;
    EXPECT_THAT([&] { spacing(labels, {1.0}, options); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("expected resample_in_input_type false")));
}

TEST(Spacing, RejectsNonFiniteAndSingularAffines) {
    SpatialImage<float> image = SmallVolume();
    image.affine[1][3] = NAN;
    EXPECT_THAT(
        [&] { spacing(image, {1.0}); },
        ThrowsMessage<std::invalid_argument>(HasSubstr(
            "vit3d::transforms::spacing: expected a finite affine, got [[0.7, 0, 0, 0], [0, 0.8, 0, nan]")));
    image = SmallVolume();
    image.affine[1][1] = 0.0;  // a zero column
    EXPECT_THAT([&] { spacing(image, {1.0}); }, ThrowsMessage<std::invalid_argument>(HasSubstr(
                                                    "expected an affine whose 3 x 3 spatial block is "
                                                    "invertible, got [[0.7, 0, 0, 0], [0, 0, 0, 0]")));
    image = SmallVolume();
    image.affine[0][2] = 0.7;  // column k parallel to column i
    image.affine[2][2] = 0.0;
    EXPECT_THAT([&] { spacing(image, {1.0}); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("spatial block is invertible")));
    // Images use the 2 x 2 block only: a k column of zeros is fine, a singular 2 x 2 block is not.
    SpatialImage<float> flat{Tensor<float>::zeros({1, 4, 3}), identity_affine()};
    flat.affine[2][2] = 0.0;
    EXPECT_NO_THROW(spacing(flat, {0.5}));
    flat.affine[1][0] = 1.0;
    flat.affine[1][1] = 0.0;
    flat.affine[0][0] = 0.0;
    flat.affine[0][1] = 0.0;
    EXPECT_THAT(
        [&] { spacing(flat, {0.5}); },
        ThrowsMessage<std::invalid_argument>(HasSubstr("expected an affine whose 2 x 2 spatial block")));
}

}  // namespace
}  // namespace vit3d::transforms
