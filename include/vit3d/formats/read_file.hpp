#pragma once
// Reading a file, or its first bytes, into memory with errors that name the file: where the readers of
// vit3d/io/ (npy, NIfTI, images) start, so that each of them parses bytes in memory (and can be fuzzed so).
// Needs nothing but the standard library.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "vit3d/core/error.hpp"

namespace vit3d::detail {

// A path or name as a double-quoted literal for messages, with quotes, backslashes and control characters
// escaped, so that an odd file name cannot garble the message.
inline std::string quoted_path(const std::string& path) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// The size of a regular file; throws io_error (`where` + the reason) for a missing file or a directory.
inline std::uint64_t regular_file_size(const std::string& path, const std::string& where) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status))
        throw io_error(message(
            where, "cannot read the file: ", (ec ? ec.message() : std::string("No such file or directory"))));
    if (std::filesystem::is_directory(status))
        throw io_error(message(where, "cannot read the file: it is a directory"));
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) throw io_error(message(where, "cannot read the file: ", ec.message()));
    return static_cast<std::uint64_t>(size);
}

// The first min(max_bytes, file size) bytes of the file at `path`. Errors are io_errors starting with
// `where` (e.g. "vit3d::io::read_npy(\"x.npy\"): ").
inline std::vector<std::uint8_t> read_file_bytes(
    const std::string& path, const std::string& where,
    std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max()) {
    const std::uint64_t size = std::min(regular_file_size(path, where), max_bytes);
    if (size > static_cast<std::uint64_t>(std::numeric_limits<std::streamsize>::max()) ||
        size > std::vector<std::uint8_t>().max_size())
        throw io_error(message(where, "the file has ", size, " bytes, more than fit in memory"));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(message(where, "cannot open the file for reading"));
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (in.gcount() != static_cast<std::streamsize>(size))
        throw io_error(message(where, "expected to read ", size, " bytes, got ", in.gcount(),
                               " (was the file changed while being read?)"));
    return bytes;
}

}  // namespace vit3d::detail
