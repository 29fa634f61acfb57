// Tests for vit3d/transforms/ (orientation.hpp, crop_pad.hpp, intensity.hpp, compose.hpp) and their JSON
// (vit3d/io/transform_json.hpp) against MONAI 1.6.1: every case of tests/fixtures/transforms/cases.json
// (written by tests/fixtures/make_transform_samples.py) read with vit3d's step reader and applied to the
// same input with the same affine.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/transform_json.hpp>
#include <vit3d/transforms/compose.hpp>
#include <vit3d/transforms/presets.hpp>

#include "support/affine_testing.hpp"
#include "support/io_testing.hpp"

namespace vit3d::transforms {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

nlohmann::json Cases() {
    std::ifstream in(test::FixturePath("transforms/cases.json"));
    return nlohmann::json::parse(in)["cases"];
}

Affine AffineOf(const nlohmann::json& rows) {
    Affine a{};
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c) a[r][c] = rows[r][c].get<double>();
    return a;
}

// The largest |x - y| over the elements, scaled by max(1, max |y|).
template <class T>
double RelativeError(const Tensor<T>& x, const Tensor<T>& y) {
    double worst = 0, scale = 1;
    for (Index i = 0; i < y.size(); ++i) scale = std::max(scale, std::abs(static_cast<double>(y.data()[i])));
    for (Index i = 0; i < y.size(); ++i)
        worst =
            std::max(worst, std::abs(static_cast<double>(x.data()[i]) - static_cast<double>(y.data()[i])));
    return worst / scale;
}

template <class T>
void CheckCase(const nlohmann::json& c) {
    const std::string name = c["case"].get<std::string>();
    SCOPED_TRACE(name);
    SpatialImage<T> image{io::read_npy<T>(test::FixturePath("transforms/" + c["input"].get<std::string>())),
                          AffineOf(c["input_affine"])};
    const Tensor<T> expected =
        io::read_npy<T>(test::FixturePath("transforms/" + c["output"].get<std::string>()));
    const std::vector<Transform> steps = io::transforms_from_json(c["steps"], "cases.json: ", "steps");
    const SpatialImage<T> out = apply(steps, image);
    ASSERT_EQ(out.data.shape(), expected.shape());
    const Affine want = AffineOf(c["output_affine"]);
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t k = 0; k < 4; ++k)
            EXPECT_NEAR(out.affine[r][k], want[r][k], 1e-12) << r << ", " << k;
    // Geometry and ScaleIntensityRange reproduce MONAI's values exactly. NormalizeIntensity's mean and
    // standard deviation are reduced in double here and in float32 by torch (MONAI normalises in float32
    // whatever the input's type, then converts back): they agree to an ulp of float, which moves outputs by
    // a few ulps of float at the output's scale (measured: 1.4e-7).
    const bool statistics = name.rfind("normalize", 0) == 0 && name.find("given") == std::string::npos;
    const double tolerance = statistics ? 1e-6 : 0.0;
    EXPECT_LE(RelativeError(out.data, expected), tolerance);
}

TEST(MonaiTransforms, EveryCaseIsMonais) {
    const nlohmann::json cases = Cases();
    ASSERT_GE(cases.size(), 25u);
    for (const nlohmann::json& c : cases) {
        if (c["dtype"] == "float64")
            CheckCase<double>(c);
        else
            CheckCase<float>(c);
    }
}

TEST(MonaiTransforms, StepsRoundTripThroughJson) {
    for (const nlohmann::json& c : Cases()) {
        const std::vector<Transform> steps = io::transforms_from_json(c["steps"], "", "steps");
        const nlohmann::json written = io::transforms_json(steps);
        const std::vector<Transform> again = io::transforms_from_json(written, "", "steps");
        EXPECT_EQ(io::transforms_json(again), written) << c["case"];
        // Every parameter is written, under MONAI's names.
        for (std::size_t i = 0; i < steps.size(); ++i)
            for (const auto& [key, value] : c["steps"][i].items())
                EXPECT_TRUE(written[i].contains(key)) << c["case"] << ": " << key;
    }
}

TEST(MonaiTransforms, AxisCodesAreNibabels) {
    Affine lps = identity_affine();
    lps[0][0] = -0.7, lps[1][1] = -0.8, lps[2][2] = 1.5;
    EXPECT_EQ(axis_codes(lps), "LPS");
    EXPECT_EQ(axis_codes(identity_affine()), "RAS");
    Affine permuted{};  // i runs along -z, j along +x, k along -y
    permuted[2][0] = -2, permuted[0][1] = 1.2, permuted[1][2] = -0.8, permuted[3][3] = 1;
    EXPECT_EQ(axis_codes(permuted), "IRP");
    EXPECT_EQ(axis_codes(lps, 2), "LP");
}

TEST(MonaiTransforms, BadStepsAreRefusedByName) {
    const auto read = [](const std::string& text) {
        return io::transforms_from_json(nlohmann::json::parse(text),
                                        "file.safetensors: ", "preprocess.steps");
    };
    EXPECT_THAT([&] { read(R"([{"name": "Rotate90"}])"); },
                ThrowsMessage<io_error>(AllOf(HasSubstr("preprocess.steps[0].name: expected one of"),
                                              HasSubstr("\"Orientation\""), HasSubstr("\"Rotate90\""))));
    EXPECT_THAT([&] { read(R"([{"name": "Orientation", "axcode": "RAS"}])"); },
                ThrowsMessage<io_error>(HasSubstr("axcode")));
    EXPECT_THAT([&] { read(R"([{"name": "SpatialPad", "spatial_size": "96"}])"); },
                ThrowsMessage<io_error>(HasSubstr("preprocess.steps[0].spatial_size")));
    EXPECT_THAT([&] { read(R"([{"name": "SpatialPad", "method": "both"}])"); },
                ThrowsMessage<io_error>(HasSubstr("symmetric")));
    EXPECT_THAT([&] { read(R"({"name": "SpatialPad"})"); },
                ThrowsMessage<io_error>(HasSubstr("expected an array of steps")));
}

TEST(MonaiTransforms, BadParametersAreRefusedWhenApplied) {
    SpatialImage<float> image{Tensor<float>::zeros({1, 4, 3, 2}), identity_affine()};
    EXPECT_THAT([&] { Orientation{"RAX"}(image); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("expected axis codes from L/R, P/A, I/S")));
    EXPECT_THAT([&] { Orientation{"RRA"}(image); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("name world axis x twice")));
    EXPECT_THAT([&] { Orientation{"RA"}(image); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("expected 3 axis codes")));
    const SpatialPad two_sizes{{4, 4}};
    EXPECT_THAT([&] { two_sizes(image); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("spatial_size with 1 or 3 entries")));
    CropForeground second_channel;
    second_channel.channel_indices = {2};
    EXPECT_THAT(
        [&] { second_channel(image); },
        ThrowsMessage<std::invalid_argument>(HasSubstr("channel_indices: expected channels in [0, 1)")));
    NormalizeIntensity two_values;
    two_values.subtrahend = std::vector<double>{1, 2};
    EXPECT_THAT([&] { two_values(image); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("expected 1 value for subtrahend, got 2")));
    SpatialImage<float> flat{Tensor<float>::zeros({1, 4, 3}), identity_affine()};
    flat.affine[1][1] = 0;  // j has no direction
    EXPECT_THAT([&] { Orientation{"RA"}(flat); },
                ThrowsMessage<std::invalid_argument>(HasSubstr("index axis 1 has no direction")));
    SpatialImage<float> rank1{Tensor<float>::zeros({4, 3}), identity_affine()};
    const SpatialPad one_size{{4}};
    EXPECT_THAT([&] { one_size(rank1); },
                ThrowsMessage<shape_error>(HasSubstr("expected an image [C, i, j] or [C, i, j, k]")));
}

// Each preset is the chain the authors' own MONAI Compose gives (tests/fixtures/transforms/presets.json:
// their Compose read by the exporter's reader of MONAI transforms), parameter for parameter.
TEST(Presets, EachIsItsAuthorsCompose) {
    std::ifstream in(test::FixturePath("transforms/presets.json"));
    const nlohmann::json authors = nlohmann::json::parse(in);
    ASSERT_EQ(authors.size(), presets().size());
    for (const Preset& p : presets()) {
        ASSERT_TRUE(authors.contains(p.name)) << p.name;
        EXPECT_EQ(io::transforms_json(p.steps), authors[p.name]) << p.name;
        EXPECT_EQ(&preset(p.name), &p);
    }
    EXPECT_THAT([] { preset("merlin2"); },
                ThrowsMessage<std::invalid_argument>(
                    AllOf(HasSubstr("expected one of merlin, monai_unetr_btcv"), HasSubstr("\"merlin2\""))));
}

}  // namespace
}  // namespace vit3d::transforms
