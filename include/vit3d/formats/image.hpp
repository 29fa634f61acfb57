#pragma once
// Reading images into [C, H, W] tensors and writing PNGs, with stb_image and stb_image_write (public
// domain; Debian libstb-dev; CMake target vit3d::image). Formats read: PNG (8 and 16 bits per channel), JPEG
// (baseline and progressive; the EXIF orientation is ignored, as PIL ignores it), BMP and PNM (PGM, PPM).
//
// Why only these: stb_image is not hardened against hostile files, and Debian 12's copy (2.27) has memory
// errors that fuzzing reaches in seconds. vit3d compiles only the decoders an ML pipeline needs (STBI_ONLY_*;
// GIF, PSD, TGA, HDR and PIC are left out: the GIF decoder alone has three open GitHub Security Lab findings,
// CVE-2023-45661, -45664 and -45667) and hardens those against what fuzz_image found in them: it checks
// before stb does what stb gets wrong (a JPEG Huffman table of more than 256 codes overruns stb's tables, stb
// issues #1289 and #1291, fixed only in 2.28; a PNM header number beyond int overflows), zeroes stb's
// allocations (a corrupt JPEG otherwise decodes to uninitialised heap memory), pads a short BMP or PNG
// palette with black (stb reads an index beyond it from uninitialised stack memory), drops empty PNG IDAT
// chunks (stb passes memcpy a null pointer for one), and refuses what stb accepts but should not (an image of
// zero pixels). It also refuses what stb accepts but libpng and Pillow do not: a PNG chunk whose CRC fails
// (stb never checks them) and a BMP whose pixel rows end past the end of the file (stb reads zeros there);
// it reads a top-down BMP's negative height as the upright image stb decodes; and it reads binary PGM and
// PPM itself (io/pnm.hpp), where stb 2.27 swaps 16-bit samples and ignores the maximum value.
// tests/fuzz/fuzz_image.cpp runs these decoders under ASan and UBSan. Still, treat images from
// untrusted sources with the care any C image decoder deserves.
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
    "vit3d/formats/image.hpp compiles a private (static) copy of stb_image and stb_image_write: include it before stb_image.h and stb_image_write.h in this translation unit"
#endif

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/atomic_file_writer.hpp"
#include "vit3d/formats/byte_order.hpp"
#include "vit3d/formats/pnm.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/tensor/tensor.hpp"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // files are read by vit3d, so that their errors name the file and the reason
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
// stb's decoders can leave parts of a pixel buffer unwritten for a corrupt file (a JPEG whose scans do not
// cover every block) and then return whatever the heap held there: found by fuzz_image, whose decodes of one
// file changed with the heap's earlier contents. Zeroed allocations make such a file decode to zeros there,
// the same every time, and never to the contents of another allocation.
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(pointer, size) std::realloc(pointer, size)
#define STBI_FREE(pointer) std::free(pointer)
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
// vit3d::image puts stb's directory on the include path; without it, Debian's /usr/include/stb/ is found too.
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#include <stb_image_write.h>
#elif __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#else
#error \
    "vit3d/formats/image.hpp needs stb_image.h and stb_image_write.h (Debian: libstb-dev); link vit3d::image"
#endif
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

constexpr auto enum_names(ImageChannels) {
    return enum_table<ImageChannels>({{ImageChannels::as_stored, "as_stored"},
                                      {ImageChannels::gray, "gray"},
                                      {ImageChannels::gray_alpha, "gray_alpha"},
                                      {ImageChannels::rgb, "rgb"},
                                      {ImageChannels::rgba, "rgba"}});
}

// What an image file holds, before any conversion.
struct ImageInfo {
    Index height = 0;
    Index width = 0;
    int channels = 0;          // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
    int bits_per_channel = 8;  // 8, or 16 for 16-bit PNG (and PNM)
};

}  // namespace vit3d::io

namespace vit3d::detail {

// The formats compiled in, for messages.
inline constexpr const char* stb_formats = "PNG, JPEG, BMP or PNM";

// Refuses a JPEG with a Huffman table (DHT) of more than 256 codes, for which stb_image 2.27 writes past its
// 257-entry tables (stb issues #1289, #1291). The walk reads the file as stb_image's JPEG decoder does
// (stbi__decode_jpeg_header / _image): bytes past the end read as 0, non-marker bytes skipped before the
// frame header, each DHT table read as stb reads it (even beyond the segment's declared length), a scan's
// entropy-coded data followed to the first marker stb would stop at. Anything else malformed is left to stb.
inline void check_jpeg_huffman_tables(const std::uint8_t* p, std::size_t size, const std::string& where) {
    std::size_t at = 0;
    const auto get8 = [&]() -> unsigned { return at < size ? p[at++] : 0u; };
    const auto get16 = [&]() -> unsigned {
        const unsigned high = get8();
        return (high << 8) | get8();
    };
    const auto skip = [&](long n) { at = n <= 0 ? at : std::min(size, at + static_cast<std::size_t>(n)); };
    // Start of image, after any 0xFF fill bytes (which stb accepts there too).
    if (get8() != 0xFF) return;
    unsigned first = 0xFF;
    while (first == 0xFF && at < size) first = get8();
    if (first != 0xD8) return;  // not a JPEG
    bool frame = false;         // after the SOF segment stb no longer skips stray bytes
    unsigned pending = 0;       // a marker stb found at the end of a scan's data
    while (at < size || pending != 0) {
        unsigned m = pending;
        pending = 0;
        if (m == 0) {
            unsigned x = get8();
            if (x != 0xFF) {
                if (frame) return;  // stb: "expected marker"
                continue;
            }
            while (x == 0xFF && at < size) x = get8();
            m = x;
        }
        if (m == 0xD9) return;  // end of image
        if (m == 0xC4) {
            long length = static_cast<long>(get16()) - 2;
            const std::size_t segment = at - 4;
            while (length > 0 && at < size) {
                get8();  // table class and index
                unsigned codes = 0;
                for (int i = 0; i < 16; ++i) codes += get8();
                if (codes > 256)
                    throw io_error(
                        message(where, "cannot decode the image: corrupt JPEG: a Huffman table (DHT at byte ",
                                segment, ") declares ", codes, " codes, at most 256 exist"));
                skip(codes);
                length -= 17 + static_cast<long>(codes);
            }
        } else if (m == 0xDA) {  // a scan: entropy-coded data to the first marker (FF 00 and FF FF are data)
            skip(static_cast<long>(get16()) - 2);
            while (at < size && pending == 0) {
                if (p[at++] != 0xFF) continue;
                unsigned c = get8();
                while (c == 0xFF && at < size) c = get8();
                if (c != 0 && !(c >= 0xD0 && c <= 0xD7)) pending = c;
            }
        } else if (m == 0xDC) {  // DNL
            skip(4);
        } else if (m == 0xC0 || m == 0xC1 || m == 0xC2 || m == 0xDB || m == 0xDD ||
                   (m >= 0xE0 && m <= 0xEF) || m == 0xFE) {
            if (m == 0xC0 || m == 0xC1 || m == 0xC2) frame = true;
            skip(static_cast<long>(get16()) - 2);
        } else {
            return;  // stb: "unknown marker"
        }
    }
}

// Refuses a BMP whose uncompressed pixel rows (BI_RGB, BI_BITFIELDS) end past the end of the file: stb reads
// the missing bytes as zeros, where Pillow and libraries built on the format's size rules refuse the file.
// Pixel rows are padded to 4 bytes; the height's sign only says the row order (negative: top-down).
inline void check_bmp_pixels(const std::uint8_t* p, std::size_t size, const std::string& where) {
    if (size < 30 || p[0] != 'B' || p[1] != 'M') return;
    const auto header = load_unsigned<std::uint32_t>(p + 14, false);
    if (header < 40 || size < 34) return;  // the OS/2 header is left to stb
    const auto width = static_cast<std::int32_t>(load_unsigned<std::uint32_t>(p + 18, false));
    const auto height = static_cast<std::int32_t>(load_unsigned<std::uint32_t>(p + 22, false));
    const unsigned bits = load_unsigned<std::uint16_t>(p + 28, false);
    const auto compression = load_unsigned<std::uint32_t>(p + 30, false);
    if ((compression != 0 && compression != 3) || width <= 0 || height == 0 || height == INT32_MIN ||
        bits == 0)
        return;  // RLE, or a size stb refuses itself
    const auto offset = load_unsigned<std::uint32_t>(p + 10, false);
    const unsigned long long stride = (static_cast<unsigned long long>(width) * bits + 31) / 32 * 4;
    const unsigned long long rows =
        static_cast<unsigned long long>(height < 0 ? -static_cast<long long>(height) : height);
    const unsigned long long end = offset + stride * rows;
    if (end > size)
        throw io_error(message(where, "cannot decode the image: truncated BMP: its ", width, " x ", rows, " ",
                               bits, "-bit pixels need bytes ", offset, " to ", end, ", the file holds ",
                               size));
}

// A copy of [bytes, bytes + size) with `count` zero bytes inserted at `at`; a file shorter than `at` is
// first extended with zeros, which is what stb reads past the end of a file in memory.
inline std::vector<std::uint8_t> with_zeros_inserted(const std::uint8_t* bytes, std::size_t size,
                                                     std::size_t at, std::size_t count) {
    std::vector<std::uint8_t> out(std::max(size, at) + count, 0);
    std::copy(bytes, bytes + std::min(size, at), out.begin());
    if (size > at) std::copy(bytes + at, bytes + size, out.begin() + static_cast<std::ptrdiff_t>(at + count));
    return out;
}

// stb_image 2.27 reads a palette entry for each index a BMP or PNG pixel holds, also for an index beyond the
// palette the file stores, and those entries are uninitialised stack memory (found by fuzz_image: one file
// decoded to different pixels from run to run). Such an index is malformed; libpng shows it as black, and so
// does vit3d: a palette of fewer than 256 entries is padded with black (opaque) entries, in a copy of the
// file, before stb reads it. Each function below makes the copy only when it is needed; it then fills its
// last argument with it and returns true.
//
// BMP: stb reads a palette for 1 to 15 bits per pixel, of (offset - 14 - header) / 4 entries after the info
// header ((offset - 38) / 3 of 3 bytes for the 12-byte OS/2 header), as stbi__bmp_load computes them, and the
// pixels at `offset`. Padding inserts the missing entries after the stored ones and moves `offset` on by as
// much, so that stb sees 256 entries and the same pixels.
inline bool bmp_with_full_palette(const std::uint8_t* p, std::size_t size, std::vector<std::uint8_t>& padded,
                                  const std::string& where) {
    if (size < 30 || p[0] != 'B' || p[1] != 'M') return false;
    const auto offset = load_unsigned<std::uint32_t>(p + 10, false);
    const auto header = load_unsigned<std::uint32_t>(p + 14, false);
    if (header != 12 && header != 40 && header != 56 && header != 108 && header != 124) return false;
    const unsigned bits = load_unsigned<std::uint16_t>(p + (header == 12 ? 24 : 28), false);
    if (bits >= 16 || offset > std::uint32_t(INT_MAX)) return false;  // no palette, or stb refuses the file
    const long long entry_bytes = header == 12 ? 3 : 4;
    const long long palette_bytes = static_cast<long long>(offset) - 14 - (header == 12 ? 24 : header);
    if (palette_bytes < 0)
        throw io_error(message(where, "cannot decode the image: corrupt BMP: the pixels start at byte ",
                               offset, ", inside the ", 14 + header,
                               "-byte header, where its palette should be"));
    const long long entries = palette_bytes / entry_bytes;
    if (entries == 0 || entries >= 256) return false;  // stb refuses no palette and reads a full one
    const std::size_t palette_end = 14 + header + static_cast<std::size_t>(entries * entry_bytes);
    const std::size_t missing = static_cast<std::size_t>((256 - entries) * entry_bytes);
    padded = with_zeros_inserted(p, size, palette_end, missing);
    store_unsigned(padded.data() + 10, offset + static_cast<std::uint32_t>(missing), false);
    return true;
}

// PNG: every chunk's CRC is checked, which stb does not do: a critical chunk (IHDR, PLTE, IDAT, IEND: an
// upper-case first letter) that fails is refused, as libpng refuses it (Pillow checks the chunks it parses
// itself, IHDR for one, but not IDAT); an ancillary one is dropped, as libpng drops it. Then two rewrites, in
// a copy made only when one is needed. For a palette image (colour type 3) the first PLTE chunk of fewer than
// 256 entries is padded to 256, with its CRC recomputed (the copy stays a valid PNG). Empty IDAT chunks,
// which add nothing to the image data, are dropped: for one that comes before any data stb passes a null
// pointer to memcpy (undefined behaviour; found by fuzz_image under UBSan). A chunk longer than the rest of
// the file is refused here: stb allocates its declared length (up to 2^30 bytes, rounded up to 2 GB) before
// it finds the data missing (found by fuzz_image).
inline bool png_for_stb(const std::uint8_t* p, std::size_t size, std::vector<std::uint8_t>& rewritten,
                        const std::string& where) {
    static constexpr std::uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (size < 8 || !std::equal(signature, signature + 8, p)) return false;
    const bool palette_image =
        size >= 26 && std::string(reinterpret_cast<const char*>(p + 12), 4) == "IHDR" && p[8 + 8 + 9] == 3;
    std::vector<std::uint8_t> out;
    std::size_t copied = 0;  // p[0, copied) is in `out`, as rewritten so far
    bool changed = false, palette_seen = false;
    const auto copy_up_to = [&](std::size_t end) {
        out.insert(out.end(), p + copied, p + end);
        copied = end;
    };
    std::size_t at = 8;
    while (size - at >= 12) {
        const std::size_t length = load_unsigned<std::uint32_t>(p + at, true);
        const std::string type(reinterpret_cast<const char*>(p + at + 4), 4);
        if (length > size - at - 12)  // stb would first allocate the declared length, up to 2 GB
            throw io_error(message(where, "cannot decode the image: corrupt PNG: its ", type,
                                   " chunk at byte ", at, " declares ", length,
                                   " bytes of data, but the file holds ", size - at - 12,
                                   " more (truncated file?)"));
        const std::size_t end = at + 12 + length;
        const std::uint32_t stored_crc = load_unsigned<std::uint32_t>(p + at + 8 + length, true);
        const std::uint32_t crc =
            stbiw__crc32(const_cast<std::uint8_t*>(p + at + 4), static_cast<int>(4 + length));
        const bool critical = (p[at + 4] & 0x20) == 0;  // an upper-case first letter
        if (crc != stored_crc && critical)
            throw io_error(message(where, "cannot decode the image: corrupt PNG: the CRC of its ", type,
                                   " chunk at byte ", at, " does not match its data (stored ", stored_crc,
                                   ", computed ", crc, ")"));
        if (crc != stored_crc || (type == "IDAT" && length == 0)) {  // an ancillary chunk libpng would drop
            copy_up_to(at);
            copied = end;
            changed = true;
        } else if (type == "PLTE" && palette_image && !palette_seen && length % 3 == 0 && length > 0 &&
                   length < 768) {
            copy_up_to(at + 8 + length);
            out.resize(out.size() + 768 - length, 0);
            std::uint8_t* chunk = out.data() + out.size() - 8 - 768;
            store_unsigned(chunk, std::uint32_t(768), true);
            const std::uint32_t crc = stbiw__crc32(chunk + 4, 4 + 768);
            out.resize(out.size() + 4);
            store_unsigned(out.data() + out.size() - 4, crc, true);
            copied = end;
            changed = true;
        }
        palette_seen = palette_seen || type == "PLTE";
        at = end;
        if (type == "IEND") break;
    }
    if (!changed) return false;
    copy_up_to(size);
    rewritten = std::move(out);
    return true;
}

inline int checked_stb_length(std::size_t size, const std::string& where) {
    if (size > static_cast<std::size_t>(INT_MAX))
        throw io_error(
            message(where, "the file has ", size, " bytes, more than stb_image decodes (2^31 - 1)"));
    return static_cast<int>(size);
}

// The size a PNG's IHDR declares, checked before stb, which reports a zero or too large one as an unknown
// image type.
inline void check_png_size(const std::uint8_t* p, std::size_t size, const std::string& where) {
    static constexpr std::uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (size < 24 || !std::equal(signature, signature + 8, p) ||
        std::string(reinterpret_cast<const char*>(p + 12), 4) != "IHDR")
        return;
    const auto width = load_unsigned<std::uint32_t>(p + 16, true),
               height = load_unsigned<std::uint32_t>(p + 20, true);
    if (width < 1 || height < 1 || width > (1u << 24) || height > (1u << 24))
        throw io_error(message(where, "the PNG's header (IHDR) declares a ", width, " x ", height,
                               " image, expected at least 1 x 1 and at most 16777216 a side"));
}

inline io::ImageInfo stb_image_info(const std::uint8_t* bytes, std::size_t size, const std::string& where) {
    io::ImageInfo info;
    if (is_binary_pnm(bytes, size)) {  // read by vit3d (io/pnm.hpp)
        const PnmHeader h = read_pnm_header(bytes, size, where);
        info.height = h.height;
        info.width = h.width;
        info.channels = h.channels;
        info.bits_per_channel = h.bits();
        return info;
    }
    const int length = checked_stb_length(size, where);
    check_jpeg_huffman_tables(bytes, size, where);
    check_png_size(bytes, size, where);
    int width = 0, height = 0, channels = 0;
    if (size == 0 || !stbi_info_from_memory(bytes, length, &width, &height, &channels))
        throw io_error(message(
            where, "cannot decode the image: ", size == 0 ? "the file is empty" : stbi_failure_reason(),
            " (expected ", stb_formats, ")"));
    // stb_image 2.27 reports a top-down BMP's height as stored, negative; it decodes such a file upright.
    if (height < 0 && height != INT_MIN && size >= 2 && bytes[0] == 'B' && bytes[1] == 'M') height = -height;
    if (width < 1 || height < 1)
        throw io_error(
            message(where, "the image is ", width, " x ", height, " pixels, expected at least 1 x 1"));
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
    if (enum_name(channels, nullptr) == nullptr)
        throw io_error(message(where, "expected channels ",
                               enum_name_list<io::ImageChannels>("", ", ", " or "), ", got ImageChannels(",
                               wanted_code, ")"));
    const io::ImageInfo info = stb_image_info(bytes, size, where);
    const int wanted_channels = wanted_code == 0 ? info.channels : wanted_code;
    if (is_binary_pnm(bytes, size)) {
        std::vector<std::uint8_t> eight;
        std::vector<std::uint16_t> sixteen;
        read_pnm_samples(bytes, size, read_pnm_header(bytes, size, where), eight, sixteen, where);
        if (info.bits_per_channel == 16)
            return planar_image<T>(sixteen.data(), info.height, info.width, info.channels, wanted_channels);
        return planar_image<T>(eight.data(), info.height, info.width, info.channels, wanted_channels);
    }
    check_bmp_pixels(bytes, size, where);
    std::vector<std::uint8_t> padded;
    if (bmp_with_full_palette(bytes, size, padded, where) || png_for_stb(bytes, size, padded, where)) {
        bytes = padded.data();
        size = padded.size();
    }
    const int length = checked_stb_length(size, where);
    int width = 0, height = 0, stored = 0;
    StbPixels decoded;
    if (info.bits_per_channel == 16)
        decoded.pixels = stbi_load_16_from_memory(bytes, length, &width, &height, &stored, 0);
    else
        decoded.pixels = stbi_load_from_memory(bytes, length, &width, &height, &stored, 0);
    if (decoded.pixels == nullptr)
        throw io_error(message(where, "cannot decode the image: ", stbi_failure_reason(), " (a ", info.width,
                               " x ", info.height, " image with ", info.channels,
                               " channels; truncated or corrupt file?)"));
    if (width != info.width || height != info.height || stored != info.channels)
        throw io_error(message(where, "stb_image decoded a ", width, " x ", height, " image with ", stored,
                               " channels, but its header says ", info.width, " x ", info.height, " with ",
                               info.channels));
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
        throw shape_error(message(where,
                                  "expected an image [C, H, W] with C = 1 (gray), 2 (gray + alpha), 3 (RGB) "
                                  "or 4 (RGBA), or [H, W], with H, W >= 1; got ",
                                  shape));
    channels = shape.size() == 3 ? static_cast<int>(shape[0]) : 1;
    const Index h = shape[shape.size() - 2], w = shape.back();
    if (h > INT_MAX || w > INT_MAX / channels)
        throw shape_error(message(where, "image ", shape, " is larger than stb_image_write takes"));
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
                    throw io_error(message(where, "element [", c, ", ", p / image.dim(-1), ", ",
                                           p % image.dim(-1), "] of image ", image.shape(),
                                           " is NaN; expected values in [0, 1]"));
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
        throw io_error(message(where, "stb_image_write could not encode the image ", image.shape()));
    return png;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// Format, size and channels of an image held in memory, without decoding the pixels.
inline ImageInfo image_info(const std::uint8_t* bytes, std::size_t size,
                            const std::string& source_name = "<memory>") {
    return detail::stb_image_info(bytes, size,
                                  message("vit3d::io::image_info(", detail::quoted_path(source_name), "): "));
}

// ... of the image file at `path` (reading the whole file).
inline ImageInfo read_image_info(const std::string& path) {
    const std::string where = message("vit3d::io::read_image_info(", detail::quoted_path(path), "): ");
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::stb_image_info(bytes.data(), bytes.size(), where);
}

// Decodes an image held in memory into [C, H, W] (see the top of this file for the values of each T).
template <class T>
Tensor<T> decode_image(const std::uint8_t* bytes, std::size_t size,
                       ImageChannels channels = ImageChannels::as_stored,
                       const std::string& source_name = "<memory>") {
    return detail::decode_image_at<T>(
        bytes, size, channels, message("vit3d::io::decode_image(", detail::quoted_path(source_name), "): "));
}

// Reads the image file at `path` (PNG, JPEG, BMP or PNM) into [C, H, W]: read_image<float>("slice.png",
// ImageChannels::rgb) is [3, H, W] in [0, 1], what torchvision's ToTensor gives for PIL's
// Image.open(path).convert("RGB").
template <class T>
Tensor<T> read_image(const std::string& path, ImageChannels channels = ImageChannels::as_stored) {
    const std::string where = message("vit3d::io::read_image(", detail::quoted_path(path), "): ");
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
    const std::string where = message("vit3d::io::write_png(", detail::quoted_path(path), "): ");
    const std::vector<std::uint8_t> png = detail::encode_png_at(image, where);
    AtomicFileWriter file(path, where);
    file.write(png.data(), png.size());
    file.commit();
}

}  // namespace vit3d::io
