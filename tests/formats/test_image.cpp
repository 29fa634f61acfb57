// Tests for vit3d/formats/image.hpp: images written by PIL (tests/fixtures/make_image_samples.py) read as PIL
// reads them in every channel mode, 16-bit PNGs, values of every element type, each kind of unreadable
// file with its message, and PNGs written by vit3d (read back, and checked chunk by chunk).

#include <vit3d/formats/image.hpp>  // first: it compiles stb itself

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/npy.hpp>

#include "support/enum_tables.hpp"
#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {

using test::FixturePath;
using test::ReadBytes;
using test::TempPath;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;

std::string Image(const std::string& name) { return FixturePath("images/" + name); }

// Recomputes the CRC of the PNG chunk at byte `at` (its length, type and data are as the bytes now hold
// them): the CRC-32 of ISO 3309 that PNG uses, bit by bit.
void refresh_png_crc(std::vector<std::uint8_t>& png, std::size_t at) {
    const std::size_t length = (std::size_t(png[at]) << 24) | (std::size_t(png[at + 1]) << 16) |
                               (std::size_t(png[at + 2]) << 8) | png[at + 3];
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = at + 4; i < at + 8 + length; ++i) {
        crc ^= png[i];
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xFFFFFFFFu;
    for (int i = 0; i < 4; ++i) png[at + 8 + length + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
}

// PIL's decoding [H, W, C] or [H, W] (tests/fixtures/images/<image>.<mode>.npy) as [C, H, W].
template <class T = std::uint8_t>
Tensor<T> Pil(const std::string& image, const std::string& mode) {
    const Tensor<T> hwc = read_npy<T>(Image(image + "." + mode + ".npy"));
    return hwc.rank() == 2 ? hwc.unsqueeze(0) : hwc.permute({2, 0, 1});
}

const std::pair<ImageChannels, const char*> kModes[] = {{ImageChannels::gray, "L"},
                                                        {ImageChannels::gray_alpha, "LA"},
                                                        {ImageChannels::rgb, "RGB"},
                                                        {ImageChannels::rgba, "RGBA"}};

TEST(Image, ReadsEachFormatAsStoredLikePil) {
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("rgb.png")), Pil("rgb.png", "RGB"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("rgba.png")), Pil("rgba.png", "RGBA"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("gray.png")), Pil("gray.png", "L"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("gray_alpha.png")), Pil("gray_alpha.png", "LA"));
    // A palette with a transparent entry is expanded to RGBA, as PIL's convert("RGBA") expands it.
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("palette.png")), Pil("palette.png", "RGBA"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("rgb.bmp")), Pil("rgb.bmp", "RGB"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("gray.pgm")), Pil("gray.pgm", "L"));
    EXPECT_EQ(read_image<std::uint8_t>(Image("rgb.png")).shape(), (Shape{3, 6, 8}));  // [C, H, W]
}

TEST(Image, ConvertsChannelsExactlyAsPilDoes) {
    // Luma by PIL's fixed-point ITU-R 601-2 weights, alpha dropped or added as opaque, gray replicated.
    for (const char* name :
         {"rgb.png", "rgba.png", "gray.png", "gray_alpha.png", "palette.png", "rgb.bmp", "gray.pgm"})
        for (const auto& [channels, mode] : kModes)
            EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image(name), channels), Pil(name, mode))
                << name << " as " << mode;
}

TEST(Image, JpegDecodesWithinTwoLevelsOfPil) {
    // stb_image and libjpeg (PIL) differ in their inverse DCT, so a JPEG decodes to slightly different
    // values.
    for (const char* name : {"rgb_q95.jpg", "rgb_progressive.jpg"}) {
        const Tensor<std::uint8_t> ours = read_image<std::uint8_t>(Image(name), ImageChannels::rgb);
        const Tensor<std::uint8_t> pil = Pil(name, "RGB");
        ASSERT_EQ(ours.shape(), pil.shape());
        int worst = 0;
        for (Index i = 0; i < ours.size(); ++i)
            worst = std::max(worst, std::abs(int(ours.data()[i]) - int(pil.data()[i])));
        EXPECT_LE(worst, 2) << name;
    }
}

TEST(Image, FloatValuesAreTheBytesOver255AsToTensorGives) {
    const Tensor<std::uint8_t> bytes = read_image<std::uint8_t>(Image("rgba.png"), ImageChannels::rgb);
    const Tensor<float> f = read_image<float>(Image("rgba.png"), ImageChannels::rgb);
    const Tensor<double> d = read_image<double>(Image("rgba.png"), ImageChannels::rgb);
    ASSERT_EQ(f.shape(), bytes.shape());
    for (Index i = 0; i < f.size(); ++i) {
        ASSERT_EQ(f.data()[i], static_cast<float>(bytes.data()[i]) / 255.0f) << i;
        ASSERT_EQ(d.data()[i], static_cast<double>(bytes.data()[i]) / 255.0) << i;
    }
    const Tensor<std::uint16_t> wide = read_image<std::uint16_t>(Image("gray.png"));
    const Tensor<std::uint8_t> narrow = read_image<std::uint8_t>(Image("gray.png"));
    for (Index i = 0; i < wide.size(); ++i) ASSERT_EQ(wide.data()[i], narrow.data()[i] * 257) << i;
}

TEST(Image, Reads16BitPngsAtFullPrecision) {
    const ImageInfo info = read_image_info(Image("gray16.png"));
    EXPECT_EQ(info.bits_per_channel, 16);
    EXPECT_EQ(info.channels, 1);
    const Tensor<std::uint16_t> exact = read_image<std::uint16_t>(Image("gray16.png"));
    EXPECT_TENSOR_EQ(exact, Pil<std::uint16_t>("gray16.png", "I16"));
    const Tensor<float> f = read_image<float>(Image("gray16.png"));
    const Tensor<std::uint8_t> rounded = read_image<std::uint8_t>(Image("gray16.png"));
    for (Index i = 0; i < exact.size(); ++i) {
        ASSERT_EQ(f.data()[i], static_cast<float>(exact.data()[i]) / 65535.0f) << i;
        ASSERT_EQ(rounded.data()[i], static_cast<int>(std::lround(exact.data()[i] / 257.0))) << i;
    }
    EXPECT_EQ(rounded(0, 0, 2), 0);    // 128 / 257 = 0.498
    EXPECT_EQ(rounded(0, 0, 3), 128);  // 32895 / 257 = 127.996
    EXPECT_EQ(read_image<std::uint8_t>(Image("gray16.png"), ImageChannels::rgb).shape(), (Shape{3, 6, 8}));
}

// Found reading images as a user would; each case failed before vit3d read PNM itself and checked BMP and
// PNG files before stb_image (Debian 12's 2.27) decodes them. Values against Pillow.
TEST(Image, ATopDownBmpReadsUprightAsPillowReadsIt) {
    const ImageInfo info = read_image_info(Image("rgb_topdown.bmp"));
    EXPECT_EQ(info.height, 6);
    EXPECT_EQ(info.width, 8);
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("rgb_topdown.bmp")), Pil("rgb_topdown.bmp", "RGB"));
    EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("rgb_topdown.bmp")), Pil("rgb.bmp", "RGB"));
}

TEST(Image, PnmSamplesAreBigEndianAndScaledByTheirMaximumValueAsPillowReadsThem) {
    EXPECT_EQ(read_image_info(Image("gray16.pgm")).bits_per_channel, 16);
    EXPECT_TENSOR_EQ(read_image<std::uint16_t>(Image("gray16.pgm")), Pil<std::uint16_t>("gray16.pgm", "I16"));
    EXPECT_TENSOR_EQ(read_image<std::uint16_t>(Image("gray16.pgm")), Pil<std::uint16_t>("gray16.png", "I16"));
    // maxval 1000, 16-bit samples: scaled to 0..65535 (samples above 1000 count as 1000).
    EXPECT_TENSOR_EQ(read_image<std::uint16_t>(Image("gray_maxval1000.pgm")),
                     Pil<std::uint16_t>("gray_maxval1000.pgm", "I16"));
    // maxval 100, 8-bit samples, some above it: scaled to 0..255, in every channel conversion.
    EXPECT_EQ(read_image_info(Image("gray_maxval100.pgm")).bits_per_channel, 8);
    for (const auto& [channels, mode] : kModes)
        EXPECT_TENSOR_EQ(read_image<std::uint8_t>(Image("gray_maxval100.pgm"), channels),
                         Pil("gray_maxval100.pgm", mode))
            << mode;
    // A 16-bit PPM: Pillow gives 8 bits, round(v / maxval * 255); vit3d keeps 16 (round(v / maxval * 65535))
    // and rounds those to 8 when asked for bytes: at most one level apart, where the two roundings differ.
    const Tensor<std::uint8_t> ours = read_image<std::uint8_t>(Image("rgb_maxval1000.ppm"));
    const Tensor<std::uint8_t> pil = Pil("rgb_maxval1000.ppm", "RGB");
    ASSERT_EQ(ours.shape(), pil.shape());
    for (Index i = 0; i < ours.size(); ++i)
        ASSERT_LE(std::abs(int(ours.data()[i]) - int(pil.data()[i])), 1) << i;
}

TEST(Image, RefusesPnmHeadersAndDataThatPillowRefuses) {
    const auto refused = [](const std::string& bytes) {
        const std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
        try {
            (void)decode_image<std::uint8_t>(data.data(), data.size(), ImageChannels::as_stored, "x.pgm");
        } catch (const io_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_THAT(refused("P5\n2 1\n0\n\1\2"), HasSubstr("the maximum value is 0, expected 1 to 65535"));
    EXPECT_THAT(refused("P5\n2 1\n65536\n\1\2\3\4"), HasSubstr("the maximum value is 65536"));
    EXPECT_THAT(refused("P5\n2 1\n255"), HasSubstr("expected one whitespace byte after the maximum value"));
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("truncated.ppm")); },
        ThrowsMessage<io_error>(HasSubstr("truncated PNM: a 8 x 6 image with 3 channels of 8-bit samples "
                                          "needs 144 bytes after its header, the file holds 134")));
}

TEST(Image, RefusesATruncatedBmp) {
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("truncated.bmp")); },
        ThrowsMessage<io_error>(HasSubstr("truncated.bmp\"): cannot decode the image: truncated BMP: its 8 "
                                          "x 6 24-bit pixels need bytes 54 to 198, the file holds 188")));
}

TEST(Image, PngCrcsAreCheckedAndSizesNamed) {
    const std::vector<std::uint8_t> png = ReadBytes(Image("rgb.png"));
    // A bad CRC of the header, a critical chunk: refused.
    std::vector<std::uint8_t> bad = png;
    bad[29] ^= 1;
    EXPECT_THAT([&] { decode_image<std::uint8_t>(bad.data(), bad.size(), ImageChannels::rgb, "bad.png"); },
                ThrowsMessage<io_error>(
                    HasSubstr("corrupt PNG: the CRC of its IHDR chunk at byte 8 does not match")));
    // An ancillary chunk (tEXt) with a bad CRC is dropped, as libpng drops it: the pixels are the same.
    std::vector<std::uint8_t> text(png.begin(), png.begin() + 33);
    const std::vector<std::uint8_t> chunk{0, 0, 0, 5, 't', 'E', 'X', 't', 'a', 0, 'b', 'c', 'd', 1, 2, 3, 4};
    text.insert(text.end(), chunk.begin(), chunk.end());
    text.insert(text.end(), png.begin() + 33, png.end());
    EXPECT_TENSOR_EQ(decode_image<std::uint8_t>(text.data(), text.size(), ImageChannels::rgb, "text.png"),
                     Pil("rgb.png", "RGB"));
    // A zero or too large size in the header is named, not an "unknown image type".
    for (const auto& [width, expected] :
         {std::pair{0u, "declares a 0 x 6 image"}, std::pair{1u << 25, "declares a 33554432 x 6 image"}}) {
        std::vector<std::uint8_t> sized = png;
        for (int i = 0; i < 4; ++i) sized[16 + i] = static_cast<std::uint8_t>(width >> (24 - 8 * i));
        refresh_png_crc(sized, 8);
        EXPECT_THAT([&] { (void)image_info(sized.data(), sized.size(), "sized.png"); },
                    ThrowsMessage<io_error>(HasSubstr(expected)));
    }
}

TEST(Image, InfoDescribesTheFileWithoutConverting) {
    const ImageInfo info = read_image_info(Image("rgba.png"));
    EXPECT_EQ(info.width, 8);
    EXPECT_EQ(info.height, 6);
    EXPECT_EQ(info.channels, 4);
    EXPECT_EQ(info.bits_per_channel, 8);
    const std::vector<std::uint8_t> bytes = ReadBytes(Image("rgb_q95.jpg"));
    EXPECT_EQ(image_info(bytes.data(), bytes.size()).channels, 3);
}

TEST(Image, RefusesMissingEmptyAndUndecodableFilesWithTheReason) {
    const std::string missing = TempPath("missing.png");
    EXPECT_THAT([&] { read_image<float>(missing); },
                ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::read_image(\"" + missing + "\"): "),
                                              HasSubstr("cannot read the file: No such file or directory"))));
    EXPECT_THAT([] { read_image<float>(::testing::TempDir()); },
                ThrowsMessage<io_error>(HasSubstr("cannot read the file: it is a directory")));
    const std::string empty = TempPath("empty.png");
    test::WriteBytes(empty, {});
    EXPECT_THAT(
        [&] { read_image<float>(empty); },
        ThrowsMessage<io_error>(HasSubstr("cannot decode the image: the file is empty (expected PNG, JPEG")));
    EXPECT_THAT(
        [] { read_image<float>(Image("not_an_image.png")); },
        ThrowsMessage<io_error>(HasSubstr("not_an_image.png\"): cannot decode the image: unknown image type "
                                          "(expected PNG, JPEG, BMP or PNM)")));
    EXPECT_THAT([] { read_image<std::uint8_t>(Image("truncated.png")); },
                ThrowsMessage<io_error>(HasSubstr("truncated.png\"): cannot decode the image: ")));
    // Its compressed data scrambled, its CRC left as it was: refused by the CRC check.
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("corrupt.png")); },
        ThrowsMessage<io_error>(HasSubstr("corrupt.png\"): cannot decode the image: corrupt PNG: the CRC "
                                          "of its IDAT chunk at byte 33 does not match its data")));
    // The same with a CRC that fits: stb's decoder finds the data corrupt.
    std::vector<std::uint8_t> scrambled = ReadBytes(Image("corrupt.png"));
    refresh_png_crc(scrambled, 33);
    EXPECT_THAT(
        [&] { decode_image<std::uint8_t>(scrambled.data(), scrambled.size(), ImageChannels::rgb, "x"); },
        ThrowsMessage<io_error>(HasSubstr("(a 8 x 6 image with 3 channels; truncated or corrupt file?)")));
    const std::vector<std::uint8_t> bytes = ReadBytes(Image("rgb.png"));
    EXPECT_THAT(
        [&] { decode_image<float>(bytes.data(), bytes.size(), static_cast<ImageChannels>(7), "x.png"); },
        ThrowsMessage<io_error>(HasSubstr("vit3d::io::decode_image(\"x.png\"): expected channels as_stored, "
                                          "gray, gray_alpha, rgb or rgba, got ImageChannels(7)")));
}

TEST(Image, EveryChannelChoiceHasAName) { test::expect_complete_enum_table<ImageChannels, 8>(); }

TEST(Image, RefusesTheFormatsItDoesNotCompile) {
    // TGA and GIF (and PSD, HDR, PIC) decoders are left out of the build: see vit3d/formats/image.hpp.
    for (const char* name : {"rgb.tga", "rgb.gif"})
        EXPECT_THAT(
            [&] { read_image<std::uint8_t>(Image(name)); },
            ThrowsMessage<io_error>(HasSubstr("cannot decode the image: unknown image type (expected PNG, "
                                              "JPEG, BMP or PNM)")))
            << name;
}

TEST(Image, RefusesJpegHuffmanTablesThatWouldOverrunStb) {
    // Found by fuzz_image: a DHT segment declaring more than 256 codes, which makes stb_image 2.27 write past
    // its tables (stb issues #1289, #1291; UBSan: index 257 out of bounds for type 'stbi_uc[257]').
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("fuzz_huffman_overflow.jpg")); },
        ThrowsMessage<io_error>(HasSubstr("fuzz_huffman_overflow.jpg\"): cannot decode the image: corrupt "
                                          "JPEG: a Huffman table (DHT at byte ")));
    EXPECT_THAT([] { read_image_info(Image("fuzz_huffman_overflow.jpg")); },
                ThrowsMessage<io_error>(HasSubstr("codes, at most 256 exist")));
    // The same, with stray bytes after a segment, which stb skips before the frame header (and so must the
    // check, to reach the table stb reads).
    EXPECT_THAT([] { read_image<std::uint8_t>(Image("fuzz_huffman_overflow_after_garbage.jpg")); },
                ThrowsMessage<io_error>(HasSubstr("codes, at most 256 exist")));
    // And with 0xFF fill bytes before the start-of-image marker, which stb accepts.
    EXPECT_THAT([] { read_image<std::uint8_t>(Image("fuzz_huffman_overflow_fill_before_soi.jpg")); },
                ThrowsMessage<io_error>(HasSubstr("codes, at most 256 exist")));
    // Real JPEGs, baseline and progressive (with tables between scans), pass the check.
    EXPECT_EQ(read_image<std::uint8_t>(Image("rgb_q95.jpg")).shape(), (Shape{3, 6, 8}));
    EXPECT_EQ(read_image<std::uint8_t>(Image("rgb_progressive.jpg")).shape(), (Shape{3, 6, 8}));
}

TEST(Image, RefusesPnmHeadersWhoseNumbersOverflowStb) {
    // Found by fuzz_image: a PGM whose maximum value has 40 digits, which stb_image 2.27 reads into an int
    // (UBSan: signed integer overflow in stbi__pnm_getinteger).
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("fuzz_pnm_overflow.pgm")); },
        ThrowsMessage<io_error>(HasSubstr("fuzz_pnm_overflow.pgm\"): cannot decode the image: corrupt PNM "
                                          "header: the maximum value has more digits than fit 31 bits")));
    EXPECT_EQ(read_image_info(Image("gray.pgm")).width, 8);
}

TEST(Image, DecodesTheSameWhateverTheHeapHeld) {
    // Found by fuzz_image: a corrupt JPEG whose scans leave blocks unwritten decoded to whatever the heap
    // held (the sum of its pixels changed with the heap's earlier contents). stb's allocations are now
    // zeroed.
    const std::vector<std::uint8_t> jpeg = ReadBytes(Image("fuzz_uninitialized_blocks.jpg"));
    std::vector<Tensor<std::uint8_t>> decoded;
    for (const int fill : {0x00, 0xAB, 0xFF}) {
        std::vector<void*> blocks;
        for (int i = 0; i < 64; ++i) {
            const std::size_t size = 4096 * static_cast<std::size_t>(i % 8 + 1);
            blocks.push_back(std::malloc(size));
            std::memset(blocks.back(), fill, size);
        }
        for (void* block : blocks) std::free(block);
        decoded.push_back(decode_image<std::uint8_t>(jpeg.data(), jpeg.size()));
    }
    EXPECT_TENSOR_EQ(decoded[1], decoded[0]);
    EXPECT_TENSOR_EQ(decoded[2], decoded[0]);
}

// Fills a stretch of the stack below the caller with a pattern, so that a decoder that reads stack memory it
// never wrote sees the pattern rather than, by luck, zeros.
__attribute__((noinline)) void PoisonTheStack() {
    volatile std::uint8_t stack[1 << 16];
    for (std::size_t i = 0; i < sizeof stack; ++i) stack[i] = 0xAB;
}

void PutLittle(std::vector<std::uint8_t>& out, std::uint32_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}
void PutBig(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// A 3 x 1 BMP, 8 bits per pixel, whose 2-entry palette (red, green) is indexed by `indices`; `header` is 40
// (BITMAPINFOHEADER) or 12 (OS/2).
std::vector<std::uint8_t> PaletteBmp(const std::array<std::uint8_t, 3>& indices, std::uint32_t header = 40) {
    const std::uint32_t entry = header == 12 ? 3 : 4;
    const std::uint32_t offset = 14 + header + 2 * entry + (header == 12 ? 12 : 0);  // stb's OS/2 arithmetic
    std::vector<std::uint8_t> bmp = {'B', 'M'};
    PutLittle(bmp, offset + 4, 4);  // file size
    PutLittle(bmp, 0, 4);
    PutLittle(bmp, offset, 4);
    PutLittle(bmp, header, 4);
    if (header == 12) {
        PutLittle(bmp, 3, 2);  // width
        PutLittle(bmp, 1, 2);  // height
        PutLittle(bmp, 1, 2);  // planes
        PutLittle(bmp, 8, 2);  // bits per pixel
    } else {
        PutLittle(bmp, 3, 4);
        PutLittle(bmp, 1, 4);
        PutLittle(bmp, 1, 2);
        PutLittle(bmp, 8, 2);
        for (int field = 0; field < 6; ++field) PutLittle(bmp, 0, 4);  // BI_RGB, sizes, resolutions, colours
    }
    for (const std::uint32_t bgr : {0xFF0000u, 0x00FF00u})
        PutLittle(bmp, bgr, entry);  // red, green (B, G, R bytes)
    bmp.resize(offset, 0);
    bmp.insert(bmp.end(), indices.begin(), indices.end());
    bmp.push_back(0);  // rows are padded to 4 bytes
    return bmp;
}

void PutChunk(std::vector<std::uint8_t>& png, const char* type, const std::vector<std::uint8_t>& data) {
    PutBig(png, static_cast<std::uint32_t>(data.size()));
    std::vector<std::uint8_t> typed(type, type + 4);
    typed.insert(typed.end(), data.begin(), data.end());
    png.insert(png.end(), typed.begin(), typed.end());
    PutBig(png, stbiw__crc32(typed.data(), static_cast<int>(typed.size())));
}

// A 3 x 1 palette PNG (colour type 3, 8 bits) whose 2-entry palette (red, green) is indexed by `indices`;
// the pixels are one stored (uncompressed) deflate block.
std::vector<std::uint8_t> PalettePng(const std::array<std::uint8_t, 3>& indices,
                                     bool empty_idat_first = false) {
    std::vector<std::uint8_t> png = {137, 80, 78, 71, 13, 10, 26, 10};
    std::vector<std::uint8_t> header;
    PutBig(header, 3);
    PutBig(header, 1);
    header.insert(header.end(), {8, 3, 0, 0, 0});
    PutChunk(png, "IHDR", header);
    PutChunk(png, "PLTE", {255, 0, 0, 0, 255, 0});
    const std::vector<std::uint8_t> row = {0, indices[0], indices[1], indices[2]};  // filter 0, then pixels
    std::vector<std::uint8_t> zlib = {0x78, 0x01, 0x01};  // zlib header, final stored block
    PutLittle(zlib, static_cast<std::uint32_t>(row.size()), 2);
    PutLittle(zlib, static_cast<std::uint32_t>(~row.size()) & 0xFFFFu, 2);
    zlib.insert(zlib.end(), row.begin(), row.end());
    std::uint32_t a = 1, b = 0;  // Adler-32
    for (const std::uint8_t byte : row) {
        a = (a + byte) % 65521;
        b = (b + a) % 65521;
    }
    PutBig(zlib, b << 16 | a);
    if (empty_idat_first) PutChunk(png, "IDAT", {});
    PutChunk(png, "IDAT", zlib);
    PutChunk(png, "IEND", {});
    return png;
}

Tensor<std::uint8_t> DecodeOnAPoisonedStack(const std::vector<std::uint8_t>& file) {
    PoisonTheStack();
    return decode_image<std::uint8_t>(file.data(), file.size(), ImageChannels::rgb);
}

TEST(Image, APaletteIndexBeyondThePaletteIsBlackAsInLibpng) {
    // Found by fuzz_image: stb_image reads the colour of an index beyond the stored palette from stack memory
    // it never wrote, so one BMP decoded to different pixels from run to run. PNG has the same flaw. vit3d
    // pads a short palette with black; indices inside the palette keep their colours.
    const Tensor<std::uint8_t> expected =
        Tensor<std::uint8_t>({3, 1, 3}, std::vector<std::uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 0});
    for (const std::uint32_t header : {40u, 12u}) {
        SCOPED_TRACE("BMP header of " + std::to_string(header) + " bytes");
        EXPECT_TENSOR_EQ(DecodeOnAPoisonedStack(PaletteBmp({0, 1, 200}, header)), expected);
        EXPECT_TENSOR_EQ(DecodeOnAPoisonedStack(PaletteBmp({0, 1, 2}, header)), expected);
    }
    SCOPED_TRACE("PNG");
    EXPECT_TENSOR_EQ(DecodeOnAPoisonedStack(PalettePng({0, 1, 200})), expected);
    EXPECT_TENSOR_EQ(DecodeOnAPoisonedStack(PalettePng({0, 1, 2})), expected);
    const std::vector<std::uint8_t> in_palette = PalettePng({1, 0, 1});
    EXPECT_TENSOR_EQ(
        decode_image<std::uint8_t>(in_palette.data(), in_palette.size(), ImageChannels::rgb),
        Tensor<std::uint8_t>({3, 1, 3}, std::vector<std::uint8_t>{0, 255, 0, 255, 0, 255, 0, 0, 0}));
}

TEST(Image, AnEmptyIdatChunkBeforeTheDataChangesNothing) {
    // Found by fuzz_image under UBSan: for an empty first IDAT chunk stb passes a null pointer to memcpy.
    const std::vector<std::uint8_t> with_empty = PalettePng({1, 0, 1}, true);
    const std::vector<std::uint8_t> without = PalettePng({1, 0, 1});
    EXPECT_TENSOR_EQ(decode_image<std::uint8_t>(with_empty.data(), with_empty.size()),
                     decode_image<std::uint8_t>(without.data(), without.size()));
}

TEST(Image, RefusesAPngChunkLongerThanTheFile) {
    // Found by fuzz_image: stb allocated the 1.8 GB an IDAT chunk of a 900-byte file declared.
    std::vector<std::uint8_t> png = PalettePng({0, 1, 0});
    const std::size_t idat = png.size() - 12 - 12 - 15;  // IDAT: 15 bytes of zlib data, then IEND
    ASSERT_EQ(std::string(png.begin() + static_cast<std::ptrdiff_t>(idat) + 4,
                          png.begin() + static_cast<std::ptrdiff_t>(idat) + 8),
              "IDAT");
    for (int i = 0; i < 4; ++i) png[idat + i] = static_cast<std::uint8_t>(0x70000071u >> (8 * (3 - i)));
    EXPECT_THAT(
        [&] { decode_image<std::uint8_t>(png.data(), png.size(), ImageChannels::rgb, "long.png"); },
        ThrowsMessage<io_error>(HasSubstr("corrupt PNG: its IDAT chunk at byte " + std::to_string(idat) +
                                          " declares 1879048305 bytes of data, but the file holds 27 "
                                          "more")));
}

TEST(Image, RefusesABmpWhosePixelsStartInsideItsHeader) {
    // stb would then read the whole palette from memory it never wrote.
    std::vector<std::uint8_t> bmp = PaletteBmp({0, 1, 0});
    for (int i = 0; i < 4; ++i) bmp[10 + i] = static_cast<std::uint8_t>(40u >> (8 * i));
    EXPECT_THAT(
        [&] { decode_image<std::uint8_t>(bmp.data(), bmp.size(), ImageChannels::rgb, "corrupt.bmp"); },
        ThrowsMessage<io_error>(HasSubstr("corrupt BMP: the pixels start at byte 40, inside the 54-byte "
                                          "header")));
}

TEST(Image, RefusesImagesWithoutPixels) {
    // Found by fuzz_image: stb_image reads a PGM height of byte 0x7f as 0 and "decodes" the image. vit3d
    // reads PNM headers itself: the height is missing.
    EXPECT_THAT(
        [] { read_image<std::uint8_t>(Image("fuzz_zero_height.pgm")); },
        ThrowsMessage<io_error>(HasSubstr("fuzz_zero_height.pgm\"): cannot decode the image: corrupt PNM "
                                          "header: expected the height at byte 4")));
    const std::string zero = "P5\n8 0\n255\n";
    const std::vector<std::uint8_t> bytes(zero.begin(), zero.end());
    EXPECT_THAT([&] { (void)image_info(bytes.data(), bytes.size(), "zero.pgm"); },
                ThrowsMessage<io_error>(HasSubstr("the image is 8 x 0 pixels, expected at least 1 x 1")));
}

TEST(Image, DecodingIsSafeFromSeveralThreads) {
    // stb keeps its failure reason per thread; concurrent good and bad decodes keep their own results.
    const std::vector<std::uint8_t> good = ReadBytes(Image("rgb.png")), bad = ReadBytes(Image("corrupt.png"));
    const Tensor<std::uint8_t> expected = read_image<std::uint8_t>(Image("rgb.png"));
    std::vector<int> failures(2, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                if (t == 0 &&
                    !test::TensorsEqual(decode_image<std::uint8_t>(good.data(), good.size()), expected))
                    ++failures[0];
                if (t == 1) try {
                        decode_image<std::uint8_t>(bad.data(), bad.size());
                        ++failures[1];
                    } catch (const io_error& e) {
                        if (std::string(e.what()).find("cannot decode") == std::string::npos) ++failures[1];
                    }
            }
        });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(failures, (std::vector<int>{0, 0}));
}

// ---- writing
// -----------------------------------------------------------------------------------------------

std::uint32_t Crc32(const std::uint8_t* p, std::size_t n) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}
std::uint32_t Be32(const std::uint8_t* p) { return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }

// The PNG's signature, IHDR (size, 8 bits, colour type) and every chunk's CRC, independently of stb.
::testing::AssertionResult IsPng(const std::vector<std::uint8_t>& png, int width, int height,
                                 int colour_type) {
    static const std::uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (png.size() < 8 || !std::equal(signature, signature + 8, png.begin()))
        return ::testing::AssertionFailure() << "no PNG signature";
    std::size_t at = 8;
    std::string last;
    int chunks = 0;
    while (at + 12 <= png.size()) {
        const std::uint32_t length = Be32(&png[at]);
        if (at + 12 + length > png.size()) return ::testing::AssertionFailure() << "chunk past the end";
        const std::string type(png.begin() + at + 4, png.begin() + at + 8);
        if (Crc32(&png[at + 4], length + 4) != Be32(&png[at + 8 + length]))
            return ::testing::AssertionFailure() << "bad CRC in " << type;
        if (chunks++ == 0) {
            if (type != "IHDR" || length != 13)
                return ::testing::AssertionFailure() << "first chunk " << type;
            const std::uint8_t* ihdr = &png[at + 8];
            if (Be32(ihdr) != std::uint32_t(width) || Be32(ihdr + 4) != std::uint32_t(height) ||
                ihdr[8] != 8 || ihdr[9] != colour_type)
                return ::testing::AssertionFailure()
                       << "IHDR " << Be32(ihdr) << " x " << Be32(ihdr + 4) << ", " << int(ihdr[8])
                       << " bits, colour type " << int(ihdr[9]);
        }
        last = type;
        at += 12 + length;
    }
    if (last != "IEND" || at != png.size()) return ::testing::AssertionFailure() << "does not end with IEND";
    return ::testing::AssertionSuccess();
}

TEST(Image, WritesPngsThatReadBackExactly) {
    const int colour_types[] = {0, 4, 2, 6};  // gray, gray + alpha, RGB, RGBA
    for (Index c = 1; c <= 4; ++c) {
        Tensor<std::uint8_t> image = Tensor<std::uint8_t>::empty({c, 5, 7});
        Index k = 0;
        for (auto& v : image) v = static_cast<std::uint8_t>((k++ * 53) % 256);
        const std::string path = TempPath("written_" + std::to_string(c) + ".png");
        write_png(path, image);
        EXPECT_TRUE(IsPng(ReadBytes(path), 7, 5, colour_types[c - 1])) << c << " channels";
        EXPECT_TENSOR_EQ(read_image<std::uint8_t>(path), image);
        EXPECT_TRUE(test::TemporaryFilesFor(path).empty());
    }
    const Tensor<std::uint8_t> gray = read_image<std::uint8_t>(Image("gray.png")).squeeze(0);
    const std::vector<std::uint8_t> png = encode_png(gray);  // [H, W] is a gray image
    EXPECT_TRUE(IsPng(png, 8, 6, 0));
    EXPECT_TENSOR_EQ(decode_image<std::uint8_t>(png.data(), png.size()), gray.unsqueeze(0));
}

TEST(Image, WritesFloatsClampedAndRoundedAsSaveImage) {
    // torchvision.utils.save_image: (255 v + 0.5) clamped to [0, 255], truncated.
    const Tensor<float> values({1, 1, 7}, {-1.0f, 0.0f, 1.0f / 255, 0.5f, 0.2f, 1.0f, 2.0f});
    const std::vector<std::uint8_t> png = encode_png(values);
    EXPECT_TENSOR_EQ(decode_image<std::uint8_t>(png.data(), png.size()),
                     Tensor<std::uint8_t>({1, 1, 7}, std::vector<std::uint8_t>{0, 0, 1, 128, 51, 255, 255}));
    const Tensor<double> as_double({1, 1, 2}, {0.5, 0.75});
    const std::vector<std::uint8_t> png2 = encode_png(as_double);
    EXPECT_TENSOR_EQ(decode_image<std::uint8_t>(png2.data(), png2.size()),
                     Tensor<std::uint8_t>({1, 1, 2}, std::vector<std::uint8_t>{128, 191}));
    EXPECT_THAT(
        [] {
            encode_png(Tensor<float>({2, 2}, {0.0f, std::nanf(""), 0.0f, 0.0f}));
        },
        ThrowsMessage<io_error>(HasSubstr("vit3d::io::encode_png: element [0, 0, 1] of image [2, 2] is NaN; "
                                          "expected values in [0, 1]")));
}

TEST(Image, RefusesShapesThatAreNotImages) {
    for (const Shape& shape : {Shape{5, 4, 4}, Shape{3, 0, 4}, Shape{8}, Shape{1, 3, 4, 4}, Shape{0, 4, 4}})
        EXPECT_THAT([&] { write_png(TempPath("bad.png"), Tensor<std::uint8_t>(shape)); },
                    ThrowsMessage<shape_error>(AllOf(
                        HasSubstr("write_png(\""),
                        HasSubstr("expected an image [C, H, W] with C = 1 (gray), 2 (gray + alpha), 3 (RGB) "
                                  "or 4 (RGBA), or [H, W], with H, W >= 1; got " +
                                  shape_to_string(shape)))));
    const std::string dir = TempPath("no_such_dir");
    EXPECT_THAT(
        [&] {
            write_png(dir + "/x.png", Tensor<std::uint8_t>({2, 2}));
        },
        ThrowsMessage<io_error>(HasSubstr("cannot create the temporary file")));
}

}  // namespace
}  // namespace vit3d::io
