// Tests for vit3d/transforms/resample.hpp against torch, torchvision and PIL
// (tests/fixtures/make_resample_samples.py): resize (bilinear and bicubic, with and without antialiasing,
// down, up and mixed), resize_shorter_side, trilinear volume resampling, and nearest-neighbour label
// resampling, which must be torch's exactly.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vit3d.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/transforms/resample.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::transforms {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

template <class T = float>
Tensor<T> Fixture(const std::string& name) {
    return io::read_npy<T>(test::FixturePath("resample/" + name + ".npy"));
}

// Max |actual - expected|, after checking the shapes.
template <class T>
double MaxError(const Tensor<T>& actual, const Tensor<T>& expected) {
    EXPECT_EQ(actual.shape(), expected.shape());
    if (actual.shape() != expected.shape()) return INFINITY;
    double worst = 0.0;
    for (Index i = 0; i < actual.size(); ++i)
        worst = std::max(worst, std::abs(double(actual.data()[i]) - double(expected.data()[i])));
    return worst;
}

// vit3d computes torch's source positions and weights exactly (in torch's float arithmetic) and sums in
// double; torch sums in float (with FMA in its AVX2 kernels). What remains is torch's own rounding: 1 float
// ulp for bilinear and trilinear (2 taps per axis), up to 9 ulps for bicubic (4 or more taps, weights
// beyond [0, 1], results up to 1.2), measured on these fixtures.
constexpr double kLinearTolerance = 2.4e-7;  // 2 ulps of 1.0
constexpr double kCubicTolerance = 1.5e-6;

TEST(IoResample, ResizeMatchesTorchvision) {
    const Tensor<float> image = Fixture("image");
    ASSERT_EQ(image.shape(), (Shape{3, 37, 53}));
    for (const char* filter : {"bilinear", "bicubic"})
        for (const bool antialias : {true, false})
            for (const std::array<Index, 2> size : {std::array<Index, 2>{17, 23}, {50, 70}, {60, 20}}) {
                const std::string name = std::string("resize_") + filter + (antialias ? "_aa_" : "_noaa_") +
                                         std::to_string(size[0]) + "x" + std::to_string(size[1]);
                const ResizeFilter f = filter[2] == 'l' ? ResizeFilter::bilinear : ResizeFilter::bicubic;
                const double tolerance = f == ResizeFilter::bilinear ? kLinearTolerance : kCubicTolerance;
                EXPECT_LE(MaxError(resize(image, size[0], size[1], f, antialias), Fixture(name)), tolerance)
                    << name;
            }
}

TEST(IoResample, ResizeInDoubleIsAsCloseAsTorchsFloat) {
    // The float64 resize of the float32 image: torch's float32 result is within its own rounding of it.
    const Tensor<double> image = io::read_npy<double>(test::FixturePath("resample/image.npy"));
    const Tensor<double> expected =
        io::read_npy<double>(test::FixturePath("resample/resize_bicubic_aa_17x23.npy"));
    EXPECT_LE(MaxError(resize(image, 17, 23, ResizeFilter::bicubic), expected), kCubicTolerance);
}

TEST(IoResample, ResizeShorterSideMatchesTorchvisionsIntSize) {
    const Tensor<float> out = resize_shorter_side(Fixture("image"), 20);
    EXPECT_EQ(out.shape(), (Shape{3, 20, 28}));  // int(20 * 53 / 37) = 28
    EXPECT_LE(MaxError(out, Fixture("resize_shorter_20")), kLinearTolerance);
    const Tensor<float> tall({1, 100, 30});
    EXPECT_EQ(resize_shorter_side(tall, 10).shape(), (Shape{1, 33, 10}));
    EXPECT_EQ(resize_shorter_side(tall, 10, ResizeFilter::bilinear, true, 20).shape(), (Shape{1, 20, 6}));
    EXPECT_THAT([&] { resize_shorter_side(tall, 10, ResizeFilter::bilinear, true, 10); },
                ThrowsMessage<shape_error>(HasSubstr("max_size 10 must be larger than size 10")));
}

TEST(IoResample, ResizeOfUint8ImagesIsWithinOneLevelOfPil) {
    // PIL resizes 8-bit images in fixed point; resizing the float image and rounding lands within one level.
    const Tensor<std::uint8_t> hwc = Fixture<std::uint8_t>("image_u8");
    Tensor<float> chw = Tensor<float>::empty({3, 37, 53});
    for (Index c = 0; c < 3; ++c)
        for (Index y = 0; y < 37; ++y)
            for (Index x = 0; x < 53; ++x) chw(c, y, x) = hwc(y, x, c) / 255.0f;
    for (const char* filter : {"bilinear", "bicubic"}) {
        const Tensor<float> out =
            resize(chw, 17, 23, filter[2] == 'l' ? ResizeFilter::bilinear : ResizeFilter::bicubic);
        const Tensor<std::uint8_t> pil = Fixture<std::uint8_t>(std::string("pil_") + filter + "_17x23");
        int worst = 0;
        for (Index c = 0; c < 3; ++c)
            for (Index y = 0; y < 17; ++y)
                for (Index x = 0; x < 23; ++x) {
                    const long ours = std::lround(std::clamp(out(c, y, x), 0.0f, 1.0f) * 255.0f);
                    worst = std::max(worst, static_cast<int>(std::abs(ours - pil(y, x, c))));
                }
        EXPECT_LE(worst, 1) << filter;
    }
}

TEST(IoResample, ResizeKeepsLeadingAxesAndIdentity) {
    const Tensor<float> image = Fixture("image");
    EXPECT_TENSOR_EQ(resize(image, 37, 53), image);
    // A batch [B, C, H, W] and a bare heat map [H, W] resize plane by plane.
    const Tensor<float> batch = vit3d::stack<float>({image, image}, 0);
    const Tensor<float> resized = resize(batch, 17, 23);
    EXPECT_EQ(resized.shape(), (Shape{2, 3, 17, 23}));
    EXPECT_TENSOR_EQ(resized.select(0, 1), resize(image, 17, 23));
    EXPECT_TENSOR_EQ(resize(image.select(0, 2), 17, 23), resize(image, 17, 23).select(0, 2));
    EXPECT_THAT([&] { resize(image, 0, 5); },
                ThrowsMessage<shape_error>(
                    HasSubstr("vit3d::transforms::resize: expected sizes >= 1, got [3, 37, 53] -> [0, 5]")));
    EXPECT_THAT([] { resize(Tensor<float>({4}), 2, 2); },
                ThrowsMessage<shape_error>(HasSubstr("expected a tensor [..., H, W], got [4]")));
}

TEST(IoResample, TrilinearMatchesTorch) {
    const Tensor<float> volume = Fixture("volume");
    for (const std::array<Index, 3> size :
         {std::array<Index, 3>{5, 7, 17}, {18, 22, 26}, {9, 11, 13}, {1, 1, 1}}) {
        const std::string name = "trilinear_" + std::to_string(size[0]) + "x" + std::to_string(size[1]) +
                                 "x" + std::to_string(size[2]);
        EXPECT_LE(MaxError(resample_trilinear(volume, size), Fixture(name)), kLinearTolerance) << name;
    }
    // [C, D, H, W] and [B, C, D, H, W] resample each volume.
    const Tensor<float> channels = vit3d::stack<float>({volume, volume}, 0);
    const Tensor<float> out = resample_trilinear(channels.unsqueeze(0), {5, 7, 17});
    EXPECT_EQ(out.shape(), (Shape{1, 2, 5, 7, 17}));
    EXPECT_LE(MaxError(out.select(0, 0).select(0, 1), Fixture("trilinear_5x7x17")), kLinearTolerance);
    EXPECT_THAT(
        [&] {
            resample_trilinear(volume.select(0, 0), {2, 2, 2});
        },
        ThrowsMessage<shape_error>(HasSubstr("expected a tensor [..., D, H, W], got [11, 13]")));
}

TEST(IoResample, NearestLabelsAreTorchsExactly) {
    const Tensor<std::int16_t> labels = Fixture<std::int16_t>("labels");
    for (const std::array<Index, 3> size :
         {std::array<Index, 3>{5, 7, 17}, {18, 22, 26}, {7, 13, 10}, {20, 3, 40}}) {
        const std::string dims =
            std::to_string(size[0]) + "x" + std::to_string(size[1]) + "x" + std::to_string(size[2]);
        EXPECT_TENSOR_EQ(resample_nearest(labels, size), Fixture<std::int16_t>("nearest_exact_" + dims))
            << dims;
        EXPECT_TENSOR_EQ(resample_nearest(labels, size, NearestMode::nearest),
                         Fixture<std::int16_t>("nearest_" + dims))
            << dims;
    }
    // 2D: the same rule per axis as in 3D (depth kept, which is the identity).
    const Tensor<std::int16_t> planar = resample_nearest(labels.select(0, 4), std::array<Index, 2>{3, 40});
    EXPECT_EQ(planar.shape(), (Shape{3, 40}));
    EXPECT_TENSOR_EQ(planar, resample_nearest(labels, std::array<Index, 3>{9, 3, 40}).select(0, 4));
    // Leading axes.
    const Tensor<std::int16_t> stacked = vit3d::stack<std::int16_t>({labels, labels}, 0);
    EXPECT_TENSOR_EQ(resample_nearest(stacked, std::array<Index, 3>{7, 13, 10}).select(0, 1),
                     Fixture<std::int16_t>("nearest_exact_7x13x10"));
}

}  // namespace
}  // namespace vit3d::transforms
