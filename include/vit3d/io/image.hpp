#pragma once
// Reading images into [C, H, W] tensors and writing PNGs, with stb_image and stb_image_write (public
// domain; Debian libstb-dev; CMake target vit3d::image). stb_image decodes PNG (8 and 16 bits per channel),
// JPEG (baseline and progressive; the EXIF orientation is ignored, as PIL ignores it), BMP, TGA, GIF (first
// frame), PSD (composite image), Radiance HDR (tone-mapped to 8 bits by stb: gamma 2.2), PIC and PNM.
//
// How stb is compiled: this header defines STB_IMAGE_STATIC and STB_IMAGE_WRITE_STATIC together with the
// two IMPLEMENTATION macros, so every translation unit that includes it compiles its own private copy of the
// decoders, with internal linkage. A header-only library has no translation unit of its own to hold the one
// copy stb otherwise wants, and static copies cannot clash with the program's: another library (or the
// program itself) may link its own stb, of another version, without a duplicate symbol or an ODR violation.
// The price is code size (~150 KB) in each translation unit that includes this header, usually one or two
// per program. Include this header before any stb header in a translation unit (it refuses to come after
// one, whose declarations would not be static); stb's functions are then also usable in that unit.
// stb reports errors through a thread-local reason string (stb_image 2.27 and later with C++11), so the
// readers are safe to call from several threads.
//
// Values: read_image<float> and <double> give [0, 1] (8-bit v / 255, exactly as torchvision's ToTensor;
// 16-bit v / 65535); <std::uint8_t> gives 0..255 (16-bit samples rounded to the nearest 8-bit value);
// <std::uint16_t> gives 0..65535 (8-bit v * 257). Channel conversions are vit3d's, the same as PIL's
// Image.convert: to gray from RGB by ITU-R 601-2 luma L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
// (PIL's fixed-point formula, so 8-bit results equal PIL's convert("L")), alpha dropped when not asked
// for, and added as opaque when asked for and absent.

#if defined(STBI_INCLUDE_STB_IMAGE_H) || defined(INCLUDE_STB_IMAGE_WRITE_H)
#error \
    "vit3d/io/image.hpp compiles a private (static) copy of stb_image and stb_image_write: include it before stb_image.h and stb_image_write.h in this translation unit"
#endif

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/io/atomic_file_writer.hpp"
#include "vit3d/io/read_file.hpp"
#include "vit3d/tensor/tensor.hpp"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // files are read by vit3d, so that their errors name the file and the reason
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if defined(_MSC_VER)
#pragma warning(push, 0)
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(_MSC_VER)
#pragma warning(pop)
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace vit3d::io {

// The channels to read an image with.
enum class ImageChannels {
    as_stored = 0,   // what the file holds (a palette image as RGB or RGBA)
    gray = 1,        // one channel, luma
    gray_alpha = 2,  // luma and alpha
    rgb = 3,
    rgba = 4,
};

// What an image file holds, before any conversion.
struct ImageInfo {
    Index height = 0;
    Index width = 0;
    int channels = 0;          // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
    int bits_per_channel = 8;  // 8, or 16 for 16-bit PNG (and PNM)
};

}  // namespace vit3d::io

namespace vit3d::detail {

// The formats in stb_image 2.27, for messages.
inline constexpr const char* stb_formats = "PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PIC or PNM";

inline int checked_stb_length(std::size_t size, const std::string& where) {
    if (size > static_cast<std::size_t>(INT_MAX))
        throw io_error(where + "the file has " + std::to_string(size) +
                       " bytes, more than stb_image decodes (2^31 - 1)");
    return static_cast<int>(size);
}

inline io::ImageInfo stb_image_info(const std::uint8_t* bytes, std::size_t size, const std::string& where) {
    const int length = checked_stb_length(size, where);
    int width = 0, height = 0, channels = 0;
    if (size == 0 || !stbi_info_from_memory(bytes, length, &width, &height, &channels))
        throw io_error(where + "cannot decode the image: " +
                       (size == 0 ? std::string("the file is empty") : std::string(stbi_failure_reason())) +
                       " (expected " + stb_formats + ")");
    // stb accepts a PNM header with a zero size (found by fuzz_image); an image has pixels.
    if (width < 1 || height < 1)
        throw io_error(where + "the image is " + std::to_string(width) + " x " + std::to_string(height) +
                       " pixels, expected at least 1 x 1");
    io::ImageInfo info;
    info.height = height;
    info.width = width;
    info.channels = channels;
    info.bits_per_channel = stbi_is_16_bit_from_memory(bytes, length) ? 16 : 8;
    return info;
}

// Releases stb's pixel buffer however the decoding continues.
struct StbPixels {
    void* pixels = nullptr;
    ~StbPixels() { stbi_image_free(pixels); }
};

// Luma of 8- or 16-bit R, G, B by PIL's fixed-point ITU-R 601-2 weights (exact for 16 bits in 64 bits).
template <class S>
S luma(S r, S g, S b) {
    const std::uint64_t l = 19595ull * r + 38470ull * g + 7471ull * b + 0x8000ull;
    return static_cast<S>(l >> 16);
}

// One sample of an S-typed image (8 or 16 bits) as T.
template <class T, class S>
T sample_as(S v) {
    constexpr bool sixteen = std::is_same_v<S, std::uint16_t>;
    if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(v) / static_cast<T>(sixteen ? 65535 : 255);
    } else if constexpr (std::is_same_v<T, std::uint8_t>) {
        return sixteen ? static_cast<std::uint8_t>((static_cast<unsigned>(v) + 128u) / 257u)
                       : static_cast<std::uint8_t>(v);
    } else {
        return sixteen ? static_cast<std::uint16_t>(v) : static_cast<std::uint16_t>(v * 257u);
    }
}

// Interleaved pixels [H, W, stored] -> planar [wanted, H, W] as T, converting the channels as PIL does.
template <class T, class S>
Tensor<T> planar_image(const S* pixels, Index height, Index width, int stored, int wanted) {
    Tensor<T> out = Tensor<T>::empty({wanted, height, width});
    const Index plane = height * width;
    constexpr S opaque = static_cast<S>(std::is_same_v<S, std::uint16_t> ? 65535 : 255);
    T* dst = out.data();
    for (Index p = 0; p < plane; ++p) {
        const S* px = pixels + p * stored;
        const bool color = stored >= 3;
        const S alpha = stored == 2 ? px[1] : stored == 4 ? px[3] : opaque;
        switch (wanted) {
            case 1:
                dst[p] = sample_as<T>(color ? luma(px[0], px[1], px[2]) : px[0]);
                break;
            case 2:
                dst[p] = sample_as<T>(color ? luma(px[0], px[1], px[2]) : px[0]);
                dst[plane + p] = sample_as<T>(alpha);
                break;
            default:
                for (int c = 0; c < 3; ++c) dst[c * plane + p] = sample_as<T>(color ? px[c] : px[0]);
                if (wanted == 4) dst[3 * plane + p] = sample_as<T>(alpha);
        }
    }
    return out;
}

template <class T>
Tensor<T> decode_image_at(const std::uint8_t* bytes, std::size_t size, io::ImageChannels channels,
                          const std::string& where) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::uint8_t> ||
                      std::is_same_v<T, std::uint16_t>,
                  "vit3d::io::read_image reads into float, double (values in [0, 1]), std::uint8_t or "
                  "std::uint16_t");
    const int wanted_code = static_cast<int>(channels);
    if (wanted_code < 0 || wanted_code > 4)
        throw io_error(where +
                       "expected channels as_stored, gray, gray_alpha, rgb or rgba, got ImageChannels(" +
                       std::to_string(wanted_code) + ")");
    const io::ImageInfo info = stb_image_info(bytes, size, where);
    const int length = static_cast<int>(size);
    int width = 0, height = 0, stored = 0;
    StbPixels decoded;
    if (info.bits_per_channel == 16)
        decoded.pixels = stbi_load_16_from_memory(bytes, length, &width, &height, &stored, 0);
    else
        decoded.pixels = stbi_load_from_memory(bytes, length, &width, &height, &stored, 0);
    if (decoded.pixels == nullptr)
        throw io_error(where + "cannot decode the image: " + stbi_failure_reason() + " (a " +
                       std::to_string(info.width) + " x " + std::to_string(info.height) + " image with " +
                       std::to_string(info.channels) + " channels; truncated or corrupt file?)");
    if (width != info.width || height != info.height || stored != info.channels)
        throw io_error(where + "stb_image decoded a " + std::to_string(width) + " x " +
                       std::to_string(height) + " image with " + std::to_string(stored) +
                       " channels, but its header says " + std::to_string(info.width) + " x " +
                       std::to_string(info.height) + " with " + std::to_string(info.channels));
    const int wanted = wanted_code == 0 ? stored : wanted_code;
    if (info.bits_per_channel == 16)
        return planar_image<T>(static_cast<const std::uint16_t*>(decoded.pixels), height, width, stored,
                               wanted);
    return planar_image<T>(static_cast<const std::uint8_t*>(decoded.pixels), height, width, stored, wanted);
}

// [C, H, W] or [H, W] with C in 1..4, H and W positive, as stb_image_write's arguments.
inline void check_png_shape(const Shape& shape, const std::string& where, int& channels, int& height,
                            int& width) {
    const bool ok = (shape.size() == 2 || (shape.size() == 3 && shape[0] >= 1 && shape[0] <= 4)) &&
                    shape[shape.size() - 2] >= 1 && shape.back() >= 1;
    if (!ok)
        throw shape_error(where +
                          "expected an image [C, H, W] with C = 1 (gray), 2 (gray + alpha), 3 (RGB) "
                          "or 4 (RGBA), or [H, W], with H, W >= 1; got " +
                          shape_to_string(shape));
    channels = shape.size() == 3 ? static_cast<int>(shape[0]) : 1;
    const Index h = shape[shape.size() - 2], w = shape.back();
    if (h > INT_MAX || w > INT_MAX / channels)
        throw shape_error(where + "image " + shape_to_string(shape) +
                          " is larger than stb_image_write takes");
    height = static_cast<int>(h);
    width = static_cast<int>(w);
}

inline void append_bytes(void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    const auto* p = static_cast<const std::uint8_t*>(data);
    out->insert(out->end(), p, p + size);
}

// 8-bit interleaved samples of a planar image, from uint8 as they are, from float/double in [0, 1] by
// round(255 v) after clamping, as torchvision.utils.save_image (NaN is refused).
template <class T>
std::vector<std::uint8_t> interleaved_8bit(const Tensor<T>& image, int channels, const std::string& where) {
    const Index plane = image.size() / channels;
    std::vector<std::uint8_t> out(static_cast<std::size_t>(image.size()));
    for (int c = 0; c < channels; ++c)
        for (Index p = 0; p < plane; ++p) {
            const T v = image.data()[c * plane + p];
            std::uint8_t byte;
            if constexpr (std::is_same_v<T, std::uint8_t>) {
                byte = v;
            } else {
                if (std::isnan(v))
                    throw io_error(where + "element [" + std::to_string(c) + ", " +
                                   std::to_string(p / image.dim(-1)) + ", " +
                                   std::to_string(p % image.dim(-1)) + "] of image " +
                                   shape_to_string(image.shape()) + " is NaN; expected values in [0, 1]");
                byte = static_cast<std::uint8_t>(std::clamp(v * T(255) + T(0.5), T(0), T(255)));
            }
            out[static_cast<std::size_t>(p * channels + c)] = byte;
        }
    return out;
}

template <class T>
std::vector<std::uint8_t> encode_png_at(const Tensor<T>& image, const std::string& where) {
    static_assert(
        std::is_same_v<T, std::uint8_t> || std::is_same_v<T, float> || std::is_same_v<T, double>,
        "vit3d::io::write_png writes std::uint8_t images, or float/double images with values in [0, 1]");
    int channels = 0, height = 0, width = 0;
    check_png_shape(image.shape(), where, channels, height, width);
    const std::vector<std::uint8_t> samples = interleaved_8bit(image, channels, where);
    std::vector<std::uint8_t> png;
    if (!stbi_write_png_to_func(append_bytes, &png, width, height, channels, samples.data(),
                                width * channels))
        throw io_error(where + "stb_image_write could not encode the image " +
                       shape_to_string(image.shape()));
    return png;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// Format, size and channels of an image held in memory, without decoding the pixels.
inline ImageInfo image_info(const std::uint8_t* bytes, std::size_t size,
                            const std::string& source_name = "<memory>") {
    return detail::stb_image_info(bytes, size,
                                  "vit3d::io::image_info(" + detail::quoted_path(source_name) + "): ");
}

// ... of the image file at `path` (reading the whole file).
inline ImageInfo read_image_info(const std::string& path) {
    const std::string where = "vit3d::io::read_image_info(" + detail::quoted_path(path) + "): ";
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::stb_image_info(bytes.data(), bytes.size(), where);
}

// Decodes an image held in memory into [C, H, W] (see the top of this file for the values of each T).
template <class T>
Tensor<T> decode_image(const std::uint8_t* bytes, std::size_t size,
                       ImageChannels channels = ImageChannels::as_stored,
                       const std::string& source_name = "<memory>") {
    return detail::decode_image_at<T>(bytes, size, channels,
                                      "vit3d::io::decode_image(" + detail::quoted_path(source_name) + "): ");
}

// Reads the image file at `path` into [C, H, W]: read_image<float>("slice.png", ImageChannels::rgb) is
// [3, H, W] in [0, 1], what torchvision's ToTensor gives for PIL's Image.open(path).convert("RGB").
template <class T>
Tensor<T> read_image(const std::string& path, ImageChannels channels = ImageChannels::as_stored) {
    const std::string where = "vit3d::io::read_image(" + detail::quoted_path(path) + "): ";
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::decode_image_at<T>(bytes.data(), bytes.size(), channels, where);
}

// The bytes of an 8-bit PNG of `image`: [C, H, W] (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) or [H, W]
// (gray); std::uint8_t as it is, float or double in [0, 1] clamped and rounded to 8 bits.
template <class T>
std::vector<std::uint8_t> encode_png(const Tensor<T>& image) {
    return detail::encode_png_at(image, "vit3d::io::encode_png: ");
}

// Writes encode_png(image) to `path`, through a temporary file that replaces `path` only when complete.
template <class T>
void write_png(const std::string& path, const Tensor<T>& image) {
    const std::string where = "vit3d::io::write_png(" + detail::quoted_path(path) + "): ";
    const std::vector<std::uint8_t> png = detail::encode_png_at(image, where);
    AtomicFileWriter file(path, where);
    file.write(png.data(), png.size());
    file.commit();
}

}  // namespace vit3d::io
