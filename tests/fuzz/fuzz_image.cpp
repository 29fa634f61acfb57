// libFuzzer target for vit3d::io::decode_image, i.e. the stb_image decoders that vit3d/formats/image.hpp
// compiles (with ASan and UBSan here, as a private static copy). Any input must either decode or throw
// vit3d::io_error; every other exception, a crash, a leak or a sanitizer report is a bug. An image that
// decodes must decode the same in every element type and whatever the stack held before, and written back as
// a PNG decode to the same bytes.

#include <vit3d/formats/image.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>

namespace {

// Like assert, but also in release builds.
void require(bool condition) {
    if (!condition) std::abort();
}

// Fills a stretch of the stack below the caller with `value`. ASan does not see a read of stack memory that
// was never written; decoding after two different fills and comparing does (stb_image read a palette entry
// beyond a BMP's palette from such memory).
__attribute__((noinline)) void fill_the_stack(std::uint8_t value) {
    volatile std::uint8_t stack[1 << 15];
    for (std::size_t i = 0; i < sizeof stack; ++i) stack[i] = value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vit3d;
    using namespace vit3d::io;
    std::optional<ImageInfo> info;
    try {
        info.emplace(image_info(data, size, "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    // Keep to images the fuzzer decodes quickly (stb accepts up to 2^24 pixels a side): the decoders' logic
    // is the same for small images, and large ones only slow the search down.
    if (info->width * info->height > (Index(1) << 12)) return 0;
    std::optional<Tensor<std::uint8_t>> bytes;
    try {
        fill_the_stack(0x00);
        bytes.emplace(decode_image<std::uint8_t>(data, size, ImageChannels::as_stored, "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    fill_the_stack(0xFF);
    const Tensor<std::uint8_t> again =
        decode_image<std::uint8_t>(data, size, ImageChannels::as_stored, "fuzz");
    require(again.shape() == bytes->shape());
    for (Index i = 0; i < again.size(); ++i) require(again.data()[i] == bytes->data()[i]);
    require(bytes->rank() == 3 && bytes->dim(1) == info->height && bytes->dim(2) == info->width);
    const Tensor<float> floats = decode_image<float>(data, size, ImageChannels::as_stored, "fuzz");
    require(floats.shape() == bytes->shape());
    const Tensor<std::uint8_t> rgb = decode_image<std::uint8_t>(data, size, ImageChannels::rgb, "fuzz");
    require(rgb.dim(0) == 3 && rgb.dim(1) == info->height);
    if (info->bits_per_channel == 8) {
        for (Index i = 0; i < floats.size(); ++i) require(floats.data()[i] == bytes->data()[i] / 255.0f);
        const std::vector<std::uint8_t> png = encode_png(*bytes);
        const Tensor<std::uint8_t> back =
            decode_image<std::uint8_t>(png.data(), png.size(), ImageChannels::as_stored);
        require(back.shape() == bytes->shape());
        for (Index i = 0; i < back.size(); ++i) require(back.data()[i] == bytes->data()[i]);
    }
    return 0;
}
