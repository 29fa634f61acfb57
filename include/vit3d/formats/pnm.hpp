#pragma once
// Binary PGM and PPM (P5, P6), read by vit3d rather than stb_image, whose 2.27 decoder (Debian 12's) reads
// 16-bit samples in the wrong byte order (Netpbm stores them big-endian), ignores the maximum value (a file
// with maxval 100 read 2.55 times too dark), accepts maxval 0, and pads a truncated file with zeros. Values
// follow Pillow's PpmImagePlugin: samples are scaled to the full range of their depth as min(top, round(v /
// maxval * top)) in double precision, rounding half to even as Python's round does, with top 255 for maxval
// < 256 and 65535 for 16-bit samples (Pillow keeps 16 bits for gray, mode I, and scales colour to 8). The
// header is read as Netpbm defines it: whitespace and # comments before each number, one whitespace byte
// after the last.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/message.hpp"

namespace vit3d::detail {

struct PnmHeader {
    int width = 0, height = 0, channels = 0;
    unsigned maxval = 0;
    std::size_t data = 0;  // where the samples start
    int bits() const { return maxval > 255 ? 16 : 8; }
};

inline bool is_binary_pnm(const std::uint8_t* p, std::size_t size) {
    return size >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6');
}

// The header of a binary PGM or PPM, checked: a size of at least 1 x 1 and at most 2^24 a side (stb's
// bound for every other format), a maxval in [1, 65535].
inline PnmHeader read_pnm_header(const std::uint8_t* p, std::size_t size, const std::string& where) {
    PnmHeader h;
    h.channels = p[1] == '5' ? 1 : 3;
    std::size_t at = 2;
    const auto space = [](std::uint8_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
    };
    const auto corrupt = [&](const std::string& what) {
        return io_error(message(where, "cannot decode the image: corrupt PNM header: ", what));
    };
    long long values[3] = {};
    const char* fields[3] = {"width", "height", "maximum value"};
    for (int f = 0; f < 3; ++f) {
        for (;;) {
            while (at < size && space(p[at])) ++at;
            if (at >= size || p[at] != '#') break;
            while (at < size && p[at] != '\n' && p[at] != '\r') ++at;
        }
        if (at >= size || p[at] < '0' || p[at] > '9')
            throw corrupt(message("expected the ", fields[f], " at byte ", at,
                                  at >= size ? ", found the end of the file" : ", found another character"));
        long long value = 0;
        while (at < size && p[at] >= '0' && p[at] <= '9') {
            value = value * 10 + (p[at++] - '0');
            if (value > 0x7fffffff)
                throw corrupt(message("the ", fields[f], " has more digits than fit 31 bits"));
        }
        values[f] = value;
    }
    if (at >= size || !space(p[at]))
        throw corrupt(message("expected one whitespace byte after the maximum value, at byte ", at));
    h.data = at + 1;
    if (values[0] < 1 || values[1] < 1 || values[0] > (1 << 24) || values[1] > (1 << 24))
        throw io_error(message(where, "the image is ", values[0], " x ", values[1],
                               " pixels, expected at least 1 x 1 and at most 16777216 a side"));
    if (values[2] < 1 || values[2] > 65535)
        throw corrupt(message("the maximum value is ", values[2], ", expected 1 to 65535"));
    h.width = static_cast<int>(values[0]);
    h.height = static_cast<int>(values[1]);
    h.maxval = static_cast<unsigned>(values[2]);
    return h;
}

// The samples of a binary PGM or PPM, interleaved [H, W, channels], scaled to 0..255 (8-bit: maxval < 256)
// or 0..65535 (16-bit): into `eight` or `sixteen`.
inline void read_pnm_samples(const std::uint8_t* p, std::size_t size, const PnmHeader& h,
                             std::vector<std::uint8_t>& eight, std::vector<std::uint16_t>& sixteen,
                             const std::string& where) {
    const std::size_t count = std::size_t(h.width) * std::size_t(h.height) * std::size_t(h.channels);
    const std::size_t bytes = count * (h.bits() == 16 ? 2 : 1);
    if (size - h.data < bytes)
        throw io_error(message(where, "cannot decode the image: truncated PNM: a ", h.width, " x ", h.height,
                               " image with ", h.channels, h.channels == 1 ? " channel" : " channels", " of ",
                               h.bits(), "-bit samples needs ", bytes,
                               " bytes after its header, the file holds ", size - h.data));
    const std::uint8_t* s = p + h.data;
    const double maxval = h.maxval;
    const auto scaled = [&](unsigned v, double top) {  // nearbyint: to nearest, ties to even
        return std::min(top, std::nearbyint(static_cast<double>(v) / maxval * top));
    };
    if (h.bits() == 8) {
        eight.resize(count);
        for (std::size_t i = 0; i < count; ++i) eight[i] = static_cast<std::uint8_t>(scaled(s[i], 255.0));
    } else {
        sixteen.resize(count);
        for (std::size_t i = 0; i < count; ++i)
            sixteen[i] =
                static_cast<std::uint16_t>(scaled((unsigned(s[2 * i]) << 8) | s[2 * i + 1], 65535.0));
    }
}

}  // namespace vit3d::detail
