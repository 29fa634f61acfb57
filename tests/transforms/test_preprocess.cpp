// Tests for vit3d/transforms/preprocess.hpp: center_crop and normalize against torchvision
// (tests/fixtures/make_resample_samples.py), and the intensity window.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vit3d.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/transforms/preprocess.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::transforms {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Tensor<float> Fixture(const std::string& name) {
    return io::read_npy<float>(test::FixturePath("resample/" + name + ".npy"));
}

TEST(Preprocess, CenterCropIsTorchvisions) {
    const Tensor<float> image = Fixture("image");  // [3, 37, 53]
    // Even margins, odd margins (round half to even: top round(0.5) = 0, left round(1.5) = 2), a crop
    // larger than the image (zero padding), and larger in one axis only.
    for (const char* size : {"30x40", "36x50", "40x60", "20x60"}) {
        const Tensor<float> expected = Fixture(std::string("crop_") + size);
        EXPECT_TENSOR_EQ(center_crop(image, expected.dim(1), expected.dim(2)), expected) << size;
    }
    EXPECT_TENSOR_EQ(center_crop(image, 37, 53), image);
    EXPECT_EQ(center_crop(image.select(0, 0), 5, 5).shape(), (Shape{5, 5}));
    EXPECT_EQ(detail::half_rounded_to_even(5), 2);  // round(2.5) = 2
    EXPECT_EQ(detail::half_rounded_to_even(7), 4);  // round(3.5) = 4
    EXPECT_THAT([&] { center_crop(image, 0, 4); },
                ThrowsMessage<shape_error>(
                    HasSubstr("vit3d::transforms::center_crop: expected an image [..., H, W] and a crop "
                              "size >= 1, got [3, 37, 53] and 0 x 4")));
}

TEST(Preprocess, NormalizeIsTorchvisionsBitForBit) {
    const Tensor<float> image = Fixture("image");
    EXPECT_TENSOR_EQ(normalize(image, imagenet_mean, imagenet_std), Fixture("normalized"));
    EXPECT_TENSOR_EQ(normalize(image, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}), Fixture("normalized"));
    // Channels of a volume [C, D, H, W] are axis -4.
    const Tensor<double> volume = Tensor<double>::full({2, 3, 4, 5}, 1.0);
    const Tensor<double> out = normalize(volume, {0.5, 2.0}, {0.25, 4.0}, -4);
    EXPECT_EQ(out(0, 2, 3, 4), 2.0);
    EXPECT_EQ(out(1, 0, 0, 0), -0.25);
    EXPECT_THAT(
        [&] {
            normalize(image, {0.5, 0.5}, {0.5, 0.5});
        },
        ThrowsMessage<shape_error>(
            HasSubstr("vit3d::transforms::normalize: expected 3 means and standard deviations "
                      "for axis 0 of [3, 37, 53], got 2 and 2")));
    EXPECT_THAT(
        [&] {
            normalize(image, {0.5, 0.5, 0.5}, {0.5, 0.0, 0.5});
        },
        ThrowsMessage<std::invalid_argument>(HasSubstr("expected finite nonzero standard deviations")));
}

TEST(Preprocess, IntensityWindowClipsThenMapsOntoTheUnitInterval) {
    const Tensor<float> hu({6}, {-2000.0f, -1000.0f, 0.0f, 200.0f, 400.0f, 3000.0f});
    EXPECT_TENSOR_EQ(intensity_window(hu, -1000.0, 400.0),
                     Tensor<float>({6}, {0.0f, 0.0f, 1000.0f / 1400.0f, 1200.0f / 1400.0f, 1.0f, 1.0f}));
    // Level 40, width 400: [-160, 240].
    EXPECT_TENSOR_EQ(intensity_window_level(hu, 40.0, 400.0),
                     Tensor<float>({6}, {0.0f, 0.0f, 160.0f / 400.0f, 360.0f / 400.0f, 1.0f, 1.0f}));
    const Tensor<double> nan = intensity_window(Tensor<double>({1}, {std::nan("")}), 0.0, 1.0);
    EXPECT_TRUE(std::isnan(nan(0)));
    EXPECT_THAT([&] { intensity_window(hu, 5.0, 5.0); },
                ThrowsMessage<std::invalid_argument>(
                    HasSubstr("vit3d::transforms::intensity_window: expected finite lo < hi, "
                              "got [5, 5]")));
}

}  // namespace
}  // namespace vit3d::transforms
