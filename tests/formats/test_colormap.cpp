// Tests for vit3d/formats/colormap.hpp: viridis gives matplotlib's bytes
// (tests/fixtures/make_colormap_samples.py) at every bin edge, and overlay_heatmap blends, normalises and
// refuses what it should.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vit3d.hpp>
#include <vit3d/formats/colormap.hpp>
#include <vit3d/formats/npy.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(Colormap, ViridisGivesMatplotlibsBytes) {
    // Steps over [0, 1], the bin edges k / 256 and the floats just below them, values outside [0, 1].
    const Tensor<float> heat = read_npy<float>(test::FixturePath("colormap/heat.npy"));
    const Tensor<std::uint8_t> expected =
        read_npy<std::uint8_t>(test::FixturePath("colormap/viridis_rgb.npy"));
    ASSERT_EQ(heat.shape(), (Shape{4, 64}));
    EXPECT_TENSOR_EQ(apply_viridis(heat), expected);
}

TEST(Colormap, ViridisEndsAndNaN) {
    const Tensor<std::uint8_t> rgb = apply_viridis(Tensor<float>({1, 3}, {0.0f, 1.0f, std::nanf("")}));
    // #440154 and matplotlib's truncation of 255 * (0.993248, 0.906157, 0.143936); NaN is matplotlib's "bad".
    EXPECT_TENSOR_EQ(
        rgb, Tensor<std::uint8_t>({3, 1, 3}, std::vector<std::uint8_t>{68, 253, 0, 1, 231, 0, 84, 36, 0}));
}

TEST(Colormap, MinMaxScalingStretchesTheMapOverTheColours) {
    Tensor<float> unit({2, 5}), shifted({2, 5});
    for (Index i = 0; i < 10; ++i) {
        unit.data()[i] = static_cast<float>(i) / 9.0f;
        shifted.data()[i] = 10.0f + 2.0f * static_cast<float>(i);
    }
    EXPECT_TENSOR_EQ(apply_viridis(shifted, HeatScaling::min_max), apply_viridis(unit));
    // A constant map takes the first colour; infinities go to the ends.
    EXPECT_TENSOR_EQ(apply_viridis(Tensor<float>::full({1, 2}, 3.0f), HeatScaling::min_max),
                     apply_viridis(Tensor<float>({1, 2})));
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_TENSOR_EQ(apply_viridis(Tensor<float>({1, 4}, {-inf, 0.0f, 1.0f, inf}), HeatScaling::min_max),
                     apply_viridis(Tensor<float>({1, 4}, {0.0f, 0.0f, 1.0f, 1.0f})));
}

TEST(Colormap, OverlayBlendsTheImageAndTheColours) {
    const Tensor<float> gray({2, 2}, {0.0f, 0.25f, 1.0f, 2.0f});  // 2.0 is clamped to 1
    const Tensor<float> heat({2, 2}, {0.0f, 1.0f, 0.5f, std::nanf("")});
    // alpha 0: the gray image alone, in all three channels.
    const Tensor<std::uint8_t> alone = overlay_heatmap(gray, heat, 0.0f, HeatScaling::unit);
    EXPECT_TENSOR_EQ(
        alone, Tensor<std::uint8_t>(
                   {3, 2, 2}, std::vector<std::uint8_t>{0, 64, 255, 255, 0, 64, 255, 255, 0, 64, 255, 255}));
    // alpha 1: the colours, rounded (not truncated as in apply_viridis); NaN shows the image.
    const Tensor<std::uint8_t> colours = overlay_heatmap(gray, heat, 1.0f, HeatScaling::unit);
    for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(colours(c, 0, 0), std::lround(255 * detail::viridis_table[0][c]));
        EXPECT_EQ(colours(c, 0, 1), std::lround(255 * detail::viridis_table[255][c]));
        EXPECT_EQ(colours(c, 1, 0), std::lround(255 * detail::viridis_table[128][c]));
        EXPECT_EQ(colours(c, 1, 1), 255);
    }
    // alpha 0.5 over an RGB image.
    Tensor<float> rgb({3, 2, 2});
    rgb.data()[0] = 1.0f;  // red at (0, 0)
    const Tensor<std::uint8_t> half = overlay_heatmap(rgb, heat, 0.5f, HeatScaling::unit);
    EXPECT_EQ(half(0, 0, 0), std::lround(255 * (0.5 + 0.5 * detail::viridis_table[0][0])));
    EXPECT_EQ(half(1, 0, 0), std::lround(255 * 0.5 * detail::viridis_table[0][1]));
    EXPECT_EQ(half(2, 1, 1), 0);  // NaN heat: the image's blue, 0
}

TEST(Colormap, OverlayRefusesMismatchedShapesAndAlphas) {
    const Tensor<float> heat({4, 5});
    EXPECT_THAT(
        [&] {
            overlay_heatmap(Tensor<float>({5, 4}), heat);
        },
        ThrowsMessage<shape_error>(
            HasSubstr("vit3d::io::overlay_heatmap: expected an image [H, W] or [3, H, W] "
                      "of the heat map's size [4, 5], got [5, 4] (resize the heat map "
                      "to the image first)")));
    EXPECT_THAT(
        [&] {
            overlay_heatmap(Tensor<float>({1, 4, 5}), heat);
        },
        ThrowsMessage<shape_error>(HasSubstr("got [1, 4, 5]")));
    EXPECT_THAT(
        [&] {
            overlay_heatmap(Tensor<float>({4, 5}), Tensor<float>({1, 4, 5}));
        },
        ThrowsMessage<shape_error>(HasSubstr("expected a heat map [H, W] with H, W >= 1, got [1, 4, 5]")));
    EXPECT_THAT(
        [&] {
            overlay_heatmap(Tensor<float>({4, 5}), heat, 1.5f);
        },
        ThrowsMessage<std::invalid_argument>(HasSubstr("expected alpha in [0, 1], got 1.5")));
    EXPECT_THAT(
        [] {
            apply_viridis(Tensor<float>({0, 3}));
        },
        ThrowsMessage<shape_error>(HasSubstr("vit3d::io::apply_viridis: expected a heat map [H, W]")));
}

}  // namespace
}  // namespace vit3d::io
