// Tests for vit3d/io/model_input.hpp and the value steps of vit3d/transforms/preprocess.hpp: a model's input
// from an image (against torchvision's transforms on a committed fixture,
// tests/fixtures/make_model_input_samples.py), a NIfTI volume and a .npy array, each step and their order
// checked against expectations computed here from the metadata schema (docs/weights.md), and the errors for
// inputs that do not fit the model.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/model_description_json.hpp>
#include <vit3d/io/model_input.hpp>
#include <vit3d/io/transform_json.hpp>
#include <vit3d/transforms/preprocess.hpp>
#include <vit3d/transforms/resample.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {
using transforms::center_crop;
using transforms::intensity_window;
using transforms::IntensityWindow;
using transforms::Preprocessing;
using transforms::resample_trilinear;
using transforms::rescale;
using transforms::ResizeFilter;

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

const std::vector<double> imagenet_mean_list{0.485, 0.456, 0.406};
const std::vector<double> imagenet_std_list{0.229, 0.224, 0.225};

std::string Sample(const std::string& name) { return test::FixturePath("model_input/" + name); }

Preprocessing Described(const std::string& layout, std::vector<Index> input_size) {
    Preprocessing p;
    p.layout = layout;
    p.input_size = std::move(input_size);
    return p;
}

// An 8-bit image [C, H, W] with every value 0..255 appearing, written as PNG.
Tensor<std::uint8_t> WritePattern(const std::string& path, Index channels, Index height, Index width) {
    Tensor<std::uint8_t> image({channels, height, width});
    for (Index i = 0; i < image.size(); ++i) image.data()[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
    write_png(path, image);
    return image;
}

Tensor<float> AsFloat(const Tensor<std::uint8_t>& t) {
    Tensor<float> f(t.shape());
    for (Index i = 0; i < t.size(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
    return f;
}

// --- images against torchvision ---------------------------------------------------------------------------

// ToTensor and Normalize at the image's own size: torchvision's tensor bit for bit (the rescale is
// ToTensor's division, the normalisation Normalize's arithmetic).
TEST(ModelInput, ImageValueStepsAreTorchvisionsExactly) {
    Preprocessing p = Described("BCHW", {45, 61});
    p.channel_order = "RGB";
    p.rescale = 1.0 / 255.0;
    p.mean = imagenet_mean_list;
    p.std = imagenet_std_list;
    const ImageInput in = read_image_input(Sample("rgb_45x61.png"), {3, 45, 61}, p);
    EXPECT_TENSOR_EQ(in.batch, read_npy<float>(Sample("rgb_normalized.npy")).unsqueeze(0));
    EXPECT_TENSOR_EQ(in.view, read_image<float>(Sample("rgb_45x61.png"), ImageChannels::rgb));
    EXPECT_EQ(in.stored.width, 61);
    EXPECT_EQ(in.stored.height, 45);
    EXPECT_EQ(in.stored.bits_per_channel, 8);
}

// ToTensor, Resize(36, bicubic), CenterCrop(32), Normalize: what a timm description asks for. Equal up to
// the bicubic resize's rounding (vit3d/transforms/resample.hpp: 1.1e-6 before Normalize's division by std
// 0.225).
TEST(ModelInput, ImageIsTorchvisionsEvalTransform) {
    Preprocessing p = Described("BCHW", {32, 32});
    p.channel_order = "RGB";
    p.rescale = 1.0 / 255.0;
    p.mean = imagenet_mean_list;
    p.std = imagenet_std_list;
    p.resize_size = 36;
    p.interpolation = "bicubic";
    const ImageInput in = read_image_input(Sample("rgb_45x61.png"), {3, 32, 32}, p);
    const Tensor<float> expected = read_npy<float>(Sample("rgb_bicubic_crop.npy"));
    EXPECT_TENSOR_CLOSE(in.batch, expected.unsqueeze(0), 0.0, 5e-6);
    // The view is the cropped image before Normalize: ToTensor, Resize, CenterCrop.
    const Tensor<float> image = read_image<float>(Sample("rgb_45x61.png"), ImageChannels::rgb);
    EXPECT_TENSOR_EQ(
        in.view, center_crop(resize_shorter_side(image, 36, ResizeFilter::bicubic), Index(32), Index(32)));
    // From memory: the same.
    const std::vector<std::uint8_t> bytes = test::ReadBytes(Sample("rgb_45x61.png"));
    EXPECT_TENSOR_EQ(image_input(bytes.data(), bytes.size(), {3, 32, 32}, p, "rgb").batch, in.batch);
}

// Channel order L (PIL's convert("L")), no resize_size: straight to the input size, bilinear (within 1 ulp
// of torch before Normalize's division by 0.5).
TEST(ModelInput, GrayImageIsTorchvisionsResizeToTheInputSize) {
    Preprocessing p = Described("BCHW", {24, 20});
    p.channel_order = "L";
    p.rescale = 1.0 / 255.0;
    p.mean = std::vector<double>{0.5};
    p.std = std::vector<double>{0.5};
    const Tensor<float> expected = read_npy<float>(Sample("gray_bilinear.npy")).unsqueeze(0);
    const Tensor<float> gray = read_image_input(Sample("rgb_45x61.png"), {1, 24, 20}, p).batch;
    EXPECT_TENSOR_CLOSE(gray, expected, 0.0, 2.5e-7);
    p.channel_order.reset();  // one channel without an order: gray as well
    p.interpolation = "bilinear";
    EXPECT_TENSOR_EQ(read_image_input(Sample("rgb_45x61.png"), {1, 24, 20}, p).batch, gray);
}

// --- images: each step ------------------------------------------------------------------------------------

// Without a rescale the model gets the raw values 0..255 (docs/weights.md's schema), and the view is on [0,
// 1].
TEST(ModelInput, ImageWithoutRescaleGivesRawValues) {
    const std::string path = test::TempPath("raw.png");
    const Tensor<std::uint8_t> image = WritePattern(path, 3, 8, 10);
    const Preprocessing p = Described("BCHW", {8, 10});
    const ImageInput in = read_image_input(path, {3, 8, 10}, p);
    EXPECT_TENSOR_EQ(in.batch, AsFloat(image).unsqueeze(0));
    Tensor<float> unit = AsFloat(image);
    for (float& v : unit) v = static_cast<float>(static_cast<double>(v) / 255.0);
    EXPECT_TENSOR_EQ(in.view, unit);
}

// rescale 1/255 is ToTensor's v / 255, not v * float(1/255), which differs for some values.
TEST(ModelInput, RescaleOf1Over255IsToTensorsDivision) {
    Tensor<float> values({256});
    for (Index v = 0; v < 256; ++v) values(v) = static_cast<float>(v);
    const Tensor<float> scaled = rescale(values, 1.0 / 255.0);
    Index differ = 0;
    for (Index v = 0; v < 256; ++v) {
        EXPECT_EQ(scaled(v), static_cast<float>(v) / 255.0f) << v;
        differ += scaled(v) != static_cast<float>(v) * static_cast<float>(1.0 / 255.0);
    }
    EXPECT_GT(differ, 0);  // so the special case matters
    EXPECT_TENSOR_EQ(rescale(values, 0.5), values * 0.5f);
    EXPECT_THROW(rescale(values, std::numeric_limits<double>::infinity()), std::invalid_argument);
}

// The value steps run in the schema's order: rescale, window, then (x - mean) / std. Any other order gives
// other numbers here (the window clips, the mean is not 0, the std not 1).
TEST(ModelInput, ValueStepsRunRescaleWindowThenMeanStd) {
    const std::string path = test::TempPath("steps.png");
    const Tensor<std::uint8_t> image = WritePattern(path, 1, 6, 7);
    Preprocessing p = Described("BCHW", {6, 7});
    p.rescale = 2.0;
    p.intensity_window = IntensityWindow{100, 300, {-1.0, 1.0}, true};
    p.mean = std::vector<double>{0.25};
    p.std = std::vector<double>{0.5};
    const auto expected_for = [&](bool clip) {
        Tensor<float> x({1, 1, 6, 7});
        for (Index i = 0; i < image.size(); ++i) {
            double v = static_cast<double>(static_cast<float>(image.data()[i]) * 2.0f);
            if (clip) v = std::min(std::max(v, 100.0), 300.0);
            const auto windowed = static_cast<float>((v - 100.0) / 200.0 * 2.0 - 1.0);
            x.data()[i] = (windowed - 0.25f) / 0.5f;
        }
        return x;
    };
    EXPECT_TENSOR_EQ(read_image_input(path, {1, 6, 7}, p).batch, expected_for(true));
    p.intensity_window->clip = false;  // values outside the window map beyond [-1, 1]
    const Tensor<float> unclipped = read_image_input(path, {1, 6, 7}, p).batch;
    EXPECT_TENSOR_EQ(unclipped, expected_for(false));
    EXPECT_LT(*std::min_element(unclipped.begin(), unclipped.end()), (-1.0f - 0.25f) / 0.5f);
    // apply_value_steps is the same on the tensor itself, channel axis found from input_size.
    p.intensity_window->clip = true;
    EXPECT_TENSOR_EQ(apply_value_steps(AsFloat(image), p), expected_for(true).squeeze(0));
    EXPECT_TENSOR_EQ(apply_value_steps(AsFloat(image).unsqueeze(0), p), expected_for(true));
}

// Only a mean: std 1; only a std: mean 0; per channel along the channel axis.
TEST(ModelInput, MeanOrStdAloneAndPerChannel) {
    Preprocessing p = Described("BCHW", {2, 2});
    Tensor<float> x({3, 2, 2});
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i);
    p.mean = std::vector<double>{1, 2, 3};
    Tensor<float> expected = x;
    for (Index i = 0; i < x.size(); ++i) expected.data()[i] -= static_cast<float>(1 + i / 4);
    EXPECT_TENSOR_EQ(apply_value_steps(x, p), expected);
    p.mean.reset();
    p.std = std::vector<double>{1, 2, 4};
    for (Index i = 0; i < x.size(); ++i) expected.data()[i] = x.data()[i] / static_cast<float>(1 << (i / 4));
    EXPECT_TENSOR_EQ(apply_value_steps(x, p), expected);
    EXPECT_THAT(
        [&] {
            apply_value_steps(Tensor<float>({2, 2}), p);
        },
        ThrowsMessage<shape_error>(HasSubstr("expected [C, spatial...] or [B, C, spatial...] with 2 "
                                             "spatial axes")));
}

TEST(ModelInput, IntensityWindowKeepsNanAndRefusesAnEmptyWindow) {
    Tensor<float> x({3});
    x(0) = std::numeric_limits<float>::quiet_NaN();
    x(1) = -5;
    x(2) = 5;
    const Tensor<float> y = intensity_window(x, IntensityWindow{0, 2, {10, 20}, true});
    EXPECT_TRUE(std::isnan(y(0)));
    EXPECT_EQ(y(1), 10.0f);
    EXPECT_EQ(y(2), 20.0f);
    const Tensor<float> unit = intensity_window(x, IntensityWindow{-1, 1}),
                        plain = intensity_window(x, -1, 1);
    EXPECT_TRUE(std::isnan(unit(0)) && std::isnan(plain(0)));
    EXPECT_EQ(unit(1), plain(1));
    EXPECT_EQ(unit(2), plain(2));
    EXPECT_THAT(
        [&] {
            intensity_window(x, IntensityWindow{1, 1});
        },
        ThrowsMessage<std::invalid_argument>(HasSubstr("expected finite low < high")));
}

// A 16-bit PNG: with rescale 1/255 exactly read_image<float>'s v / 65535; without, the 8-bit range v / 257.
TEST(ModelInput, SixteenBitImage) {
    const std::string path = test::FixturePath("images/gray16.png");
    const ImageInfo info = read_image_info(path);
    ASSERT_EQ(info.bits_per_channel, 16);
    Preprocessing p = Described("BCHW", {info.height, info.width});
    p.rescale = 1.0 / 255.0;
    const Shape shape{1, info.height, info.width};
    const ImageInput in = read_image_input(path, shape, p);
    EXPECT_TENSOR_EQ(in.batch, read_image<float>(path, ImageChannels::gray).unsqueeze(0));
    EXPECT_EQ(in.stored.bits_per_channel, 16);
    p.rescale.reset();
    const Tensor<std::uint16_t> raw = read_image<std::uint16_t>(path, ImageChannels::gray);
    Tensor<float> expected(raw.shape());
    for (Index i = 0; i < raw.size(); ++i) expected.data()[i] = static_cast<float>(raw.data()[i]) / 257.0f;
    EXPECT_TENSOR_EQ(read_image_input(path, shape, p).batch, expected.unsqueeze(0));
}

TEST(ModelInput, BgrReversesTheChannels) {
    const std::string path = test::TempPath("bgr.png");
    const Tensor<float> rgb = AsFloat(WritePattern(path, 3, 5, 4));
    Preprocessing p = Described("BCHW", {5, 4});
    p.channel_order = "BGR";
    const Tensor<float> x = read_image_input(path, {3, 5, 4}, p).batch;
    for (Index c = 0; c < 3; ++c) EXPECT_TENSOR_EQ(x.select(0, 0).select(0, c), rgb.select(0, 2 - c)) << c;
}

// resize_size: the shorter side to it, then the central crop; without it straight to the input size.
TEST(ModelInput, ResizeSizeThenCenterCrop) {
    const std::string path = test::TempPath("wide.png");
    const Tensor<float> image = AsFloat(WritePattern(path, 3, 20, 30));
    Preprocessing p = Described("BCHW", {12, 12});
    p.resize_size = 14;  // 20 x 30 -> 14 x 21, cropped to 12 x 12 at (1, 4) (round half to even of 4.5)
    const Tensor<float> resized = resize(image, 14, 21, ResizeFilter::bilinear, true);
    const Tensor<float> x = read_image_input(path, {3, 12, 12}, p).batch.select(0, 0);
    ASSERT_EQ(x.shape(), (Shape{3, 12, 12}));
    for (Index c = 0; c < 3; ++c)
        for (Index y = 0; y < 12; ++y)
            for (Index col = 0; col < 12; ++col)
                ASSERT_EQ(x(c, y, col), resized(c, y + 1, col + 4)) << y << col;
    p.resize_size.reset();
    EXPECT_TENSOR_EQ(read_image_input(path, {3, 12, 12}, p).batch,
                     resize(image, 12, 12, ResizeFilter::bilinear, true).unsqueeze(0));
    p.interpolation = "nearest";
    EXPECT_THAT(
        [&] {
            read_image_input(path, {3, 12, 12}, p);
        },
        ThrowsMessage<config_error>(HasSubstr("preprocess.interpolation: expected bilinear or bicubic")));
}

TEST(ModelInput, ImageChannelsMustFitTheModel) {
    const std::string path = test::TempPath("rgba.png");
    const Tensor<std::uint8_t> rgba = WritePattern(path, 4, 4, 4);
    Preprocessing p = Described("BCHW", {4, 4});
    // Without an order: the model's channel count picks gray, gray + alpha, RGB or RGBA.
    EXPECT_TENSOR_EQ(read_image_input(path, {4, 4, 4}, p).batch, AsFloat(rgba).unsqueeze(0));
    EXPECT_EQ(read_image_input(path, {2, 4, 4}, p).batch.shape(), (Shape{1, 2, 4, 4}));
    EXPECT_THAT(
        [&] {
            read_image_input(path, {5, 4, 4}, p);
        },
        ThrowsMessage<shape_error>(HasSubstr("the model takes 5 channel(s), but an image gives 1 (gray), "
                                             "2 (gray + alpha), 3 (RGB) or 4 (RGBA)")));
    p.channel_order = "L";
    EXPECT_THAT(
        [&] {
            read_image_input(path, {3, 4, 4}, p);
        },
        ThrowsMessage<shape_error>(HasSubstr("the model takes 3 channel(s), but channel order L gives 1")));
    p.channel_order = "RGB";
    EXPECT_THAT(
        [&] {
            read_image_input(path, {1, 4, 4}, p);
        },
        ThrowsMessage<shape_error>(HasSubstr("the model takes 1 channel(s), but channel order RGB gives 3")));
    const Preprocessing volume = Described("BCHWD", {4, 4, 4});
    EXPECT_THAT(
        [&] {
            read_image_input(path, {1, 4, 4, 4}, volume);
        },
        ThrowsMessage<shape_error>(HasSubstr("an image feeds a 2D model (layout BCHW); this model takes "
                                             "volumes (layout BCHWD, input [1, 4, 4, 4])")));
    p.channel_order.reset();
    EXPECT_THAT(
        [&] {
            read_image_input(path, {3, 4, 5}, p);
        },
        ThrowsMessage<shape_error>(HasSubstr("agrees with preprocess.input_size [4, 4], got [3, 4, 5]")));
    EXPECT_THAT(
        [&] {
            read_image_input(test::TempPath("absent.png"), {3, 4, 4}, p);
        },
        ThrowsMessage<io_error>(HasSubstr("vit3d::io::read_image_input(")));
}

// --- volumes ----------------------------------------------------------------------------------------------

// Voxel (i, j, k) holds 10000 k + 100 j + i: any axis mix-up shows in the values.
Volume<float> IndexVolume(Index nz, Index ny, Index nx) {
    Volume<float> v;
    v.data = Tensor<float>({nz, ny, nx});
    for (Index k = 0; k < nz; ++k)
        for (Index j = 0; j < ny; ++j)
            for (Index i = 0; i < nx; ++i) v.data(k, j, i) = static_cast<float>(10000 * k + 100 * j + i);
    return v;
}

TEST(ModelInput, VolumeAxesFollowTheLayout) {
    const Volume<float> v = IndexVolume(3, 4, 5);  // [z, y, x]
    const Tensor<float> d = volume_input(v, {1, 3, 4, 5}, Described("BCDHW", {3, 4, 5}));
    EXPECT_TENSOR_EQ(d, v.data.unsqueeze(0).unsqueeze(0));  // [z, y, x] kept
    const Tensor<float> h = volume_input(v, {1, 5, 4, 3}, Described("BCHWD", {5, 4, 3}));
    ASSERT_EQ(h.shape(), (Shape{1, 1, 5, 4, 3}));
    for (Index k = 0; k < 3; ++k)
        for (Index j = 0; j < 4; ++j)
            for (Index i = 0; i < 5; ++i)
                ASSERT_EQ(h(0, 0, i, j, k), v.data(k, j, i)) << i << j << k;  // [x, y, z]
}

// Transposed first, rescaled, resampled to the input size, then windowed and normalised per channel; a 4D
// volume's t axis gives the channels.
TEST(ModelInput, VolumeStepsInOrder) {
    Volume<float> v;
    v.data = Tensor<float>({2, 3, 4, 5});  // [t, z, y, x]
    for (Index i = 0; i < v.data.size(); ++i) v.data.data()[i] = static_cast<float>((i * 7) % 23) - 5.0f;
    Preprocessing p = Described("BCHWD", {6, 4, 2});
    p.rescale = 10.0;
    p.intensity_window = IntensityWindow{-20, 120, {0, 1}, true};
    p.mean = std::vector<double>{0.1, 0.2};
    p.std = std::vector<double>{2, 4};
    Tensor<float> t = Tensor<float>::empty({2, 5, 4, 3});  // [t, x, y, z], written axis by axis
    for (Index c = 0; c < 2; ++c)
        for (Index k = 0; k < 3; ++k)
            for (Index j = 0; j < 4; ++j)
                for (Index i = 0; i < 5; ++i) t(c, i, j, k) = v.data(c, k, j, i) * 10.0f;
    Tensor<float> expected = resample_trilinear(t, {6, 4, 2});
    for (Index c = 0; c < 2; ++c)
        for (Index n = 0; n < 48; ++n) {
            float& x = expected.data()[c * 48 + n];
            const double w = std::min(std::max(static_cast<double>(x), -20.0), 120.0);
            const auto windowed = static_cast<float>((w + 20.0) / 140.0);
            x = (windowed - static_cast<float>((*p.mean)[c])) / static_cast<float>((*p.std)[c]);
        }
    EXPECT_TENSOR_EQ(volume_input(v, {2, 6, 4, 2}, p), expected.unsqueeze(0));
    // From a file, .nii.gz: the same.
    const std::string path = test::TempPath("v.nii.gz");
    write_nifti(path, v);
    EXPECT_TENSOR_EQ(read_nifti_input(path, {2, 6, 4, 2}, p), expected.unsqueeze(0));
}

TEST(ModelInput, VolumeMustFitTheModel) {
    Volume<float> two;
    two.data = Tensor<float>({2, 3, 4, 5});
    const Preprocessing p = Described("BCDHW", {3, 4, 5});
    EXPECT_THAT(
        [&] {
            volume_input(two, {1, 3, 4, 5}, p);
        },
        ThrowsMessage<shape_error>(
            HasSubstr("the model takes 1 channel(s); the volume [2, 3, 4, 5] gives 2")));
    Volume<float> flat;
    flat.data = Tensor<float>({4, 5});
    EXPECT_THAT(
        [&] {
            volume_input(flat, {1, 3, 4, 5}, p);
        },
        ThrowsMessage<shape_error>(HasSubstr("expected a 3D volume [z, y, x] or a 4D one [t, z, y, x], got "
                                             "[4, 5]")));
    EXPECT_THAT(
        [&] {
            volume_input(IndexVolume(3, 4, 5), {3, 8, 8}, Described("BCHW", {8, 8}));
        },
        ThrowsMessage<shape_error>(HasSubstr("a NIfTI volume feeds a 3D model (layout BCDHW or BCHWD)")));
}

// --- .npy -------------------------------------------------------------------------------------------------

TEST(ModelInput, NpyOneSampleOrBatchAsStoredOrPreprocessed) {
    Preprocessing p = Described("BCHW", {2, 3});
    p.rescale = 0.5;
    p.mean = std::vector<double>{1.0};
    const Tensor<std::uint8_t> one = test::Iota<std::uint8_t>({1, 2, 3});
    const std::string path = test::TempPath("one.npy");
    write_npy(path, one);
    EXPECT_TENSOR_EQ(read_npy_input(path, {1, 2, 3}, p), AsFloat(one).unsqueeze(0));
    EXPECT_TENSOR_EQ(read_npy_input(path, {1, 2, 3}, p, NpyValues::preprocessed),
                     (AsFloat(one) * 0.5f - 1.0f).unsqueeze(0));
    const Tensor<float> batch = Tensor<float>::randn({4, 1, 2, 3}, 3);
    const std::vector<std::uint8_t> bytes = serialize_npy(batch);
    EXPECT_TENSOR_EQ(npy_input(bytes.data(), bytes.size(), {1, 2, 3}, p), batch);
}

TEST(ModelInput, NpyMustFitTheModel) {
    const Preprocessing p = Described("BCHW", {2, 3});
    const std::string path = test::TempPath("bad.npy");
    write_npy(path, Tensor<std::int64_t>({1, 2, 3}));
    EXPECT_THAT(
        [&] {
            read_npy_input(path, {1, 2, 3}, p);
        },
        ThrowsMessage<io_error>(HasSubstr("unsupported .npy dtype int64: expected float16, float32, float64, "
                                          "uint8, int8, uint16 or int16")));
    write_npy(path, Tensor<float>({2, 3}));
    EXPECT_THAT(
        [&] {
            read_npy_input(path, {1, 2, 3}, p);
        },
        ThrowsMessage<shape_error>(
            HasSubstr("shape [2, 3] does not fit the model: expected one sample [1, 2, "
                      "3] or a batch [B, 1, 2, 3] (layout BCHW)")));
}

// preprocess.steps on a CT stored LPS and the same CT stored RAS: both give MONAI's input (LoadImage, then
// the chain; tests/fixtures/make_transform_samples.py) bit for bit, in either 3D layout.
TEST(ModelInput, VolumeStepsGiveMonaisInputForLpsAndRasFiles) {
    std::ifstream chain(test::FixturePath("transforms/ct_chain.json"));
    Preprocessing p;
    p.layout = "BCHWD";
    p.input_size = {12, 8, 8};
    p.steps = transforms_from_json(nlohmann::json::parse(chain), "", "steps");
    const Tensor<float> expected = read_npy<float>(test::FixturePath("transforms/ct_lps_model_input.npy"))
                                       .unsqueeze(0);  // [1, 1, i, j, k]
    for (const char* file : {"transforms/ct_lps.nii.gz", "transforms/ct_ras.nii.gz"}) {
        EXPECT_TENSOR_EQ(read_nifti_input(test::FixturePath(file), {1, 12, 8, 8}, p), expected) << file;
        Preprocessing torch_order = p;
        torch_order.layout = "BCDHW";
        torch_order.input_size = {8, 8, 12};
        EXPECT_TENSOR_EQ(read_nifti_input(test::FixturePath(file), {1, 8, 8, 12}, torch_order),
                         expected.permute({0, 1, 4, 3, 2}))
            << file;
    }
    Preprocessing other_size = p;
    other_size.input_size = {10, 8, 8};
    EXPECT_THAT(
        [&] {
            read_nifti_input(test::FixturePath("transforms/ct_lps.nii.gz"), {1, 10, 8, 8}, other_size);
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("preprocess.steps give [1, 12, 8, 8]"),
                                         HasSubstr("end the steps with ResizeWithPadOrCrop"))));
}

// preprocess.preset in a weights file's description: read as the preset's steps, written back by name; a
// run's record (expand_preset) holds the steps too.
TEST(ModelInput, PresetInMetadataIsItsSteps) {
    const auto read = [](const std::string& extra) {
        const nlohmann::json pre = nlohmann::json::parse(
            R"({"layout": "BCHWD", "input_size": [224, 224, 160], "channel_order": null, "rescale": null,
                "mean": null, "std": null, "intensity_window": null, "resize_size": null, "interpolation": null)" +
            extra + "}");
        nlohmann::json holder = {{"preprocess", pre}};
        detail::JsonFields f(holder, "file.safetensors: ", "");
        return detail::parse_preprocessing(f, "preprocess", 1);
    };
    const Preprocessing p = read(R"(, "preset": "merlin")");
    ASSERT_TRUE(p.steps && p.preset);
    EXPECT_EQ(transforms_json(*p.steps), transforms_json(transforms::preset("merlin").steps));
    const nlohmann::json written = detail::preprocessing_json_with_steps(p, false);
    EXPECT_EQ(written["preset"], "merlin");
    EXPECT_FALSE(written.contains("steps"));
    EXPECT_TRUE(detail::preprocessing_json_with_steps(p).contains("steps"));
    EXPECT_THAT(
        [&] { read(R"(, "preset": "merlin2")"); },
        ThrowsMessage<io_error>(HasSubstr("preprocess.preset: expected one of merlin, monai_unetr_btcv")));
    EXPECT_THAT([&] { read(R"(, "preset": "merlin", "steps": [])"); },
                ThrowsMessage<io_error>(HasSubstr("preprocess.preset: expected null with steps")));
}

}  // namespace
}  // namespace vit3d::io
