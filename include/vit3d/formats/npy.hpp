#pragma once
// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0, as numpy/lib/format.py defines
// them): the magic "\x93NUMPY", two version bytes, the header length (2 bytes little-endian in 1.0, 4 in
// 2.0 and 3.0), a header holding a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': ...}
// padded with spaces and ending in '\n', then the elements in C order.
//
// Reading is strict: the dict is parsed by a small parser of our own (Python literal syntax for these three
// keys only: either quote style, spaces and newlines, a trailing comma, any key order; shape tuples (),
// (5,), (2, 3), with Python 2's 5L accepted as NumPy does), and the file must hold exactly the data the
// header describes, no byte more or less. Every failure is a vit3d::io_error naming the file and what was
// expected and found. Element types: bool, int8/16/32/64, uint8/16/32/64, float16/32/64, little- or
// big-endian (big-endian data are byte-swapped on reading). Not supported, each with its own message:
// fortran_order True, complex, strings, objects (pickles), structured dtypes.
//
// Writing produces the bytes numpy.save() produces for the same array (version 1.0, or 2.0 when the header
// needs more than 65535 bytes; the header padded so that the data start at a multiple of 64 bytes), into a
// temporary file that replaces the destination only once complete (vit3d/formats/atomic_file_writer.hpp).
//
// Needs nothing but vit3d::vit3d.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/atomic_file_writer.hpp"
#include "vit3d/formats/byte_order.hpp"
#include "vit3d/formats/exact_conversion.hpp"
#include "vit3d/formats/float16.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// The element types of .npy files that vit3d reads.
enum class NpyDType {
    boolean,
    int8,
    uint8,
    int16,
    uint16,
    int32,
    uint32,
    int64,
    uint64,
    float16,
    float32,
    float64
};

// NumPy's names of the types: "bool", "int8", ..., "float64".
constexpr auto enum_names(NpyDType) {
    return enum_table<NpyDType>({{NpyDType::boolean, "bool"},
                                 {NpyDType::int8, "int8"},
                                 {NpyDType::uint8, "uint8"},
                                 {NpyDType::int16, "int16"},
                                 {NpyDType::uint16, "uint16"},
                                 {NpyDType::int32, "int32"},
                                 {NpyDType::uint32, "uint32"},
                                 {NpyDType::int64, "int64"},
                                 {NpyDType::uint64, "uint64"},
                                 {NpyDType::float16, "float16"},
                                 {NpyDType::float32, "float32"},
                                 {NpyDType::float64, "float64"}});
}

inline const char* npy_dtype_name(NpyDType dtype) { return enum_name(dtype); }

// Bytes per element.
inline std::size_t npy_dtype_size(NpyDType dtype) {
    switch (dtype) {
        case NpyDType::boolean:
        case NpyDType::int8:
        case NpyDType::uint8:
            return 1;
        case NpyDType::int16:
        case NpyDType::uint16:
        case NpyDType::float16:
            return 2;
        case NpyDType::int32:
        case NpyDType::uint32:
        case NpyDType::float32:
            return 4;
        case NpyDType::int64:
        case NpyDType::uint64:
        case NpyDType::float64:
            return 8;
    }
    return 0;
}

// What the header of a .npy file says, validated against the file's size.
struct NpyHeader {
    int major_version = 1;  // 1, 2 or 3; the minor version is always 0
    NpyDType dtype = NpyDType::float32;
    bool big_endian = false;        // '>' in descr: read() byte-swaps
    Shape shape;                    // C order; {} for a 0-d array (one element)
    std::uint64_t data_offset = 0;  // where the elements start: magic, version, length and header before
    Index size = 1;                 // number of elements
    std::uint64_t data_bytes() const { return static_cast<std::uint64_t>(size) * npy_dtype_size(dtype); }
};

}  // namespace vit3d::io

namespace vit3d::detail {

inline constexpr char npy_magic[] = "\x93NUMPY";
inline constexpr std::size_t npy_magic_size = 6;

// Up to `n` bytes as a printable literal for messages: "\x93NUMPY", "PK\x03\x04".
inline std::string printable_bytes(const std::uint8_t* p, std::size_t n) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out + "\"";
}

// Recursive-descent parser of the header's dict literal. Positions in messages count from the first byte
// of the header text (after the length field).
class NpyHeaderParser {
  public:
    NpyHeaderParser(const std::uint8_t* text, std::size_t size, std::string where)
        : text_(reinterpret_cast<const char*>(text)), size_(size), where_(std::move(where)) {}

    // Fills dtype, big_endian and shape of `out`.
    void parse(io::NpyHeader& out) {
        if (size_ == 0 || text_[size_ - 1] != '\n')
            fail(
                "expected the header to end with '\\n', got ",
                size_ == 0 ? std::string("an empty header") : message("'", char_text(text_[size_ - 1]), "'"));
        skip_space();
        expect('{', "the header's dict literal to start with '{'");
        bool seen_descr = false, seen_fortran = false, seen_shape = false;
        for (;;) {
            skip_space();
            if (peek() == '}') break;
            const std::size_t key_at = pos_;
            const std::string key = parse_string("a key ('descr', 'fortran_order' or 'shape') or '}'");
            bool* seen = key == "descr"           ? &seen_descr
                         : key == "fortran_order" ? &seen_fortran
                         : key == "shape"         ? &seen_shape
                                                  : nullptr;
            if (seen == nullptr)
                fail_at(key_at, "unknown key '", key,
                        "', expected only 'descr', 'fortran_order' and 'shape'");
            if (*seen) fail_at(key_at, "duplicate key '", key, "'");
            *seen = true;
            skip_space();
            expect(':', message("':' after '", key, "'"));
            skip_space();
            if (key == "descr") {
                parse_descr(out);
            } else if (key == "fortran_order") {
                const std::size_t value_at = pos_;
                if (parse_bool())
                    fail_at(value_at,
                            "fortran_order is True (column-major data), which vit3d does not read; expected "
                            "False (C order): save the array with np.save(path, np.ascontiguousarray(a))");
            } else {
                out.shape = parse_shape();
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() != '}') fail_here(message("',' or '}' after the value of '", key, "'"));
        }
        ++pos_;  // '}'
        skip_space();
        if (pos_ != size_) fail_here("only spaces after the dict literal's '}'");
        const char* missing = !seen_descr     ? "descr"
                              : !seen_fortran ? "fortran_order"
                              : !seen_shape   ? "shape"
                                              : nullptr;
        if (missing != nullptr)
            fail("missing key '", missing, "', expected 'descr', 'fortran_order' and 'shape'");
    }

  private:
    char peek() const { return pos_ < size_ ? text_[pos_] : '\0'; }

    // Python's whitespace between tokens of a bracketed expression.
    void skip_space() {
        while (pos_ < size_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                text_[pos_] == '\r' || text_[pos_] == '\f'))
            ++pos_;
    }

    void expect(char c, const std::string& what) {
        if (peek() != c) fail_here(what);
        ++pos_;
    }

    static std::string char_text(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) return std::string(1, c);
        return printable_bytes(&u, 1);
    }

    // The text at the current position, for "got ...".
    std::string found() const {
        if (pos_ >= size_) return "the end of the header";
        const std::size_t n = std::min<std::size_t>(12, size_ - pos_);
        return printable_bytes(reinterpret_cast<const std::uint8_t*>(text_ + pos_), n) +
               (n < size_ - pos_ ? " ..." : "");
    }

    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw io_error(message(where_, "header: ", parts...));
    }
    template <class... Parts>
    [[noreturn]] void fail_at(std::size_t at, const Parts&... parts) const {
        fail(parts..., " (at byte ", at, " of the header)");
    }
    [[noreturn]] void fail_here(const std::string& expected) const {
        fail_at(pos_, "expected ", expected, ", got ", found());
    }

    // A string literal in single or double quotes, without escapes (no valid key or descr needs one).
    std::string parse_string(const std::string& what) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail_here(what);
        const std::size_t start = ++pos_;
        while (pos_ < size_ && text_[pos_] != quote && text_[pos_] != '\n') {
            if (text_[pos_] == '\\') fail_here("a string literal without escape sequences");
            ++pos_;
        }
        if (pos_ == size_ || text_[pos_] != quote) fail_at(start - 1, "unterminated string literal");
        return std::string(text_ + start, text_ + pos_++);
    }

    bool parse_bool() {
        for (const char* word : {"True", "False"}) {
            const std::size_t n = std::strlen(word);
            if (size_ - pos_ >= n && std::memcmp(text_ + pos_, word, n) == 0 &&
                !is_identifier_char(pos_ + n < size_ ? text_[pos_ + n] : ' ')) {
                pos_ += n;
                return word[0] == 'T';
            }
        }
        fail_here("True or False for 'fortran_order'");
    }
    static bool is_identifier_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }

    // A non-negative decimal integer; Python 2's long suffix L is accepted, as NumPy accepts it.
    Index parse_length() {
        const std::size_t start = pos_;
        if (peek() == '-') fail_here("a non-negative axis length");
        if (peek() < '0' || peek() > '9') fail_here("an axis length (a non-negative integer)");
        std::uint64_t v = 0;
        while (pos_ < size_ && text_[pos_] >= '0' && text_[pos_] <= '9') {
            const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
            if (v > (static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) - digit) / 10) {
                std::size_t end = pos_;
                while (end < size_ && end - start < 40 && text_[end] >= '0' && text_[end] <= '9') ++end;
                fail_at(start, "axis length ", std::string_view(text_ + start, end - start),
                        " is larger than vit3d can index");
            }
            v = v * 10 + digit;
            ++pos_;
        }
        if (pos_ - start > 1 && text_[start] == '0')
            fail_at(start, "axis length with a leading zero, which is not a Python integer literal");
        if (peek() == 'L' || peek() == 'l') ++pos_;
        if (is_identifier_char(peek())) fail_here("',' or ')' after an axis length");
        return static_cast<Index>(v);
    }

    Shape parse_shape() {
        const std::size_t start = pos_;
        if (peek() == '[') fail_here("a tuple such as (2, 3) for 'shape', not a list");
        expect('(', "a tuple such as (), (5,) or (2, 3) for 'shape'");
        Shape shape;
        bool trailing_comma = false;
        for (;;) {
            skip_space();
            if (peek() == ')') break;
            shape.push_back(parse_length());
            trailing_comma = false;
            skip_space();
            if (peek() == ',') {
                ++pos_;
                trailing_comma = true;
                continue;
            }
            if (peek() != ')') fail_here("',' or ')' in the shape tuple");
        }
        ++pos_;  // ')'
        if (shape.size() == 1 && !trailing_comma)
            fail_at(start, "shape (", shape[0], ") is an integer in parentheses, not a tuple; expected (",
                    shape[0], ",)");
        return shape;
    }

    [[noreturn]] void unsupported_descr(std::size_t at, const std::string& descr, const char* why) const {
        fail_at(at, "dtype '", descr, "' ", why,
                "; expected '|b1', '|i1', '|u1', '<i2', '<u2', '<i4', '<u4', '<i8', '<u8', '<f2', '<f4' or "
                "'<f8' ('>' for big-endian)");
    }

    void parse_descr(io::NpyHeader& out) {
        const std::size_t start = pos_;
        if (peek() == '[')
            fail_here("a dtype string such as '<f4' for 'descr' (structured dtypes are not supported)");
        const std::string descr = parse_string("a dtype string such as '<f4' for 'descr'");
        if (descr.size() < 2) unsupported_descr(start, descr, "is not a NumPy dtype string");
        const char order = descr[0];
        if (order != '<' && order != '>' && order != '|' && order != '=')
            unsupported_descr(start, descr, "has no byte order character ('<', '>' or '|')");
        const std::string type = descr.substr(1);
        static const std::pair<const char*, io::NpyDType> types[] = {
            {"b1", io::NpyDType::boolean}, {"i1", io::NpyDType::int8},    {"u1", io::NpyDType::uint8},
            {"i2", io::NpyDType::int16},   {"u2", io::NpyDType::uint16},  {"i4", io::NpyDType::int32},
            {"u4", io::NpyDType::uint32},  {"i8", io::NpyDType::int64},   {"u8", io::NpyDType::uint64},
            {"f2", io::NpyDType::float16}, {"f4", io::NpyDType::float32}, {"f8", io::NpyDType::float64}};
        for (const auto& [name, dtype] : types) {
            if (type != name) continue;
            const bool one_byte = io::npy_dtype_size(dtype) == 1;
            if (!one_byte && order == '|')
                unsupported_descr(start, descr,
                                  "has byte order '|' (not applicable), but its items have several bytes");
            if (!one_byte && order == '=')
                unsupported_descr(
                    start, descr,
                    "has byte order '=' (that of the machine that wrote it), which a file cannot tell");
            out.dtype = dtype;
            out.big_endian = !one_byte && order == '>';
            return;
        }
        unsupported_descr(start, descr, unsupported_kind(type[0]));
    }

    static const char* unsupported_kind(char kind) {
        switch (kind) {
            case 'c':
                return "is complex, which vit3d does not read";
            case 'O':
                return "holds Python objects (a pickle), which vit3d does not read";
            case 'U':
            case 'S':
            case 'a':
                return "holds strings, which vit3d does not read";
            case 'M':
            case 'm':
                return "holds dates or time deltas, which vit3d does not read";
            case 'V':
                return "is a raw or structured type, which vit3d does not read";
            default:
                return "is not a dtype vit3d reads";
        }
    }

    const char* text_;
    std::size_t size_;
    std::string where_;
    std::size_t pos_ = 0;
};

// Validates the header of a .npy file of `file_size` bytes whose first `prefix_size` bytes are at `prefix`
// (at least the magic, version, length and header, or the whole file).
inline io::NpyHeader parse_npy_header(const std::uint8_t* prefix, std::size_t prefix_size,
                                      std::uint64_t file_size, const std::string& where) {
    io::NpyHeader h;
    if (file_size < npy_magic_size + 4 || prefix_size < npy_magic_size + 4)
        throw io_error(
            message(where, "expected at least 10 bytes (magic, version and header length), got a file of ",
                    file_size, " bytes"));
    if (std::memcmp(prefix, npy_magic, npy_magic_size) != 0)
        throw io_error(message(where, "expected the .npy magic string \"\\x93NUMPY\", got ",
                               printable_bytes(prefix, npy_magic_size), " (not a .npy file)"));
    const int major = prefix[6], minor = prefix[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        throw io_error(message(where, "format version ", major, ".", minor,
                               " is not supported, expected 1.0, 2.0 or 3.0"));
    h.major_version = major;
    const std::size_t length_bytes = major == 1 ? 2 : 4;
    const std::uint64_t header_start = npy_magic_size + 2 + length_bytes;
    if (file_size < header_start || prefix_size < header_start)
        throw io_error(message(where, "expected at least ", header_start, " bytes for a version ", major,
                               ".0 file, got a file of ", file_size, " bytes"));
    const std::uint64_t header_length = length_bytes == 2 ? load_unsigned<std::uint16_t>(prefix + 8, false)
                                                          : load_unsigned<std::uint32_t>(prefix + 8, false);
    if (header_length > file_size - header_start)
        throw io_error(message(where, "header length is ", header_length, " bytes, but only ",
                               file_size - header_start, " bytes follow the ", header_start,
                               "-byte prefix in the file of ", file_size, " bytes (truncated file?)"));
    h.data_offset = header_start + header_length;
    if (prefix_size < h.data_offset)
        throw io_error(message(where, "internal error: ", prefix_size,
                               " bytes given for a header ending at byte ", h.data_offset));
    NpyHeaderParser(prefix + header_start, static_cast<std::size_t>(header_length), where).parse(h);

    Index n = 1;
    for (const Index len : h.shape) {
        if (len != 0 && n > std::numeric_limits<Index>::max() / len)
            throw io_error(message(where, "shape ", h.shape, " has more elements than vit3d can index"));
        n *= len;
    }
    h.size = n;
    const std::uint64_t item = io::npy_dtype_size(h.dtype);
    const std::uint64_t available = file_size - h.data_offset;
    const std::string layout = message("shape ", h.shape, " of ", h.dtype);
    if (static_cast<std::uint64_t>(n) > std::numeric_limits<std::uint64_t>::max() / item)
        throw io_error(message(where, layout, " needs more than 2^64 bytes"));
    if (h.data_bytes() > available)
        throw io_error(message(where, layout, " needs ", h.data_bytes(), " bytes of data, but the file has ",
                               available, " after the header (truncated file?)"));
    if (h.data_bytes() < available)
        throw io_error(message(where, layout, " needs ", h.data_bytes(), " bytes of data, but the file has ",
                               available - h.data_bytes(), " more bytes after them (trailing data)"));
    return h;
}

// The multi-index of flat index i in `shape`, "[1, 2, 0]", for messages.
inline std::string index_text(Index i, const Shape& shape) {
    Shape index(shape.size());
    for (std::size_t a = shape.size(); a-- > 0;) {
        index[a] = i % shape[a];
        i /= shape[a];
    }
    return message(index);
}

// Stored numbers of type V at src -> T, checking exactness for integer T.
template <class T, class V>
void convert_npy_elements(const std::uint8_t* src, bool big_endian, T* dst, const io::NpyHeader& h,
                          const std::string& where) {
    for (Index i = 0; i < h.size; ++i) {
        const V v = load_number<V>(src + static_cast<std::size_t>(i) * sizeof(V), big_endian);
        if constexpr (std::is_integral_v<T>) {
            if (!holds_exactly<T>(v))
                throw io_error(message(where, "element ", index_text(i, h.shape), " is ", v, " (",
                                       io::npy_dtype_name(h.dtype), "), which ", element_type_name<T>(),
                                       " cannot hold exactly; expected integers in ", integer_range_text<T>(),
                                       " (read the file as float or double to keep every value)"));
        }
        dst[i] = convert_number<T>(v);
    }
}

template <class T>
void decode_npy_elements(const std::uint8_t* src, T* dst, const io::NpyHeader& h, const std::string& where) {
    using io::NpyDType;
    switch (h.dtype) {
        case NpyDType::boolean:
            for (Index i = 0; i < h.size; ++i) {
                if (src[i] > 1)
                    throw io_error(message(where, "bool element ", index_text(i, h.shape), " is the byte ",
                                           src[i], ", expected 0 or 1"));
                dst[i] = static_cast<T>(src[i]);
            }
            return;
        case NpyDType::int8:
            return convert_npy_elements<T, std::int8_t>(src, false, dst, h, where);
        case NpyDType::uint8:
            return convert_npy_elements<T, std::uint8_t>(src, false, dst, h, where);
        case NpyDType::int16:
            return convert_npy_elements<T, std::int16_t>(src, h.big_endian, dst, h, where);
        case NpyDType::uint16:
            return convert_npy_elements<T, std::uint16_t>(src, h.big_endian, dst, h, where);
        case NpyDType::int32:
            return convert_npy_elements<T, std::int32_t>(src, h.big_endian, dst, h, where);
        case NpyDType::uint32:
            return convert_npy_elements<T, std::uint32_t>(src, h.big_endian, dst, h, where);
        case NpyDType::int64:
            return convert_npy_elements<T, std::int64_t>(src, h.big_endian, dst, h, where);
        case NpyDType::uint64:
            return convert_npy_elements<T, std::uint64_t>(src, h.big_endian, dst, h, where);
        case NpyDType::float16:
            for (Index i = 0; i < h.size; ++i) {
                const float v = io::f16_to_float(load_unsigned<std::uint16_t>(src + 2 * i, h.big_endian));
                if constexpr (std::is_integral_v<T>) {
                    if (!holds_exactly<T>(v))
                        throw io_error(message(where, "element ", index_text(i, h.shape), " is ", v,
                                               " (float16), which ", element_type_name<T>(),
                                               " cannot hold exactly; expected integers in ",
                                               integer_range_text<T>(),
                                               " (read the file as float or double to keep every value)"));
                }
                dst[i] = static_cast<T>(v);
            }
            return;
        case NpyDType::float32:
            return convert_npy_elements<T, float>(src, h.big_endian, dst, h, where);
        case NpyDType::float64:
            return convert_npy_elements<T, double>(src, h.big_endian, dst, h, where);
    }
}

template <class T>
Tensor<T> parse_npy_at(const std::uint8_t* bytes, std::size_t size, const std::string& where) {
    static_assert(is_readable_element_type_v<T>,
                  "vit3d::io::read_npy reads into float, double or a fixed-width integer type");
    const io::NpyHeader h = parse_npy_header(bytes, size, size, where);
    Tensor<T> out = Tensor<T>::empty(h.shape);
    decode_npy_elements(bytes + h.data_offset, out.data(), h, where);
    return out;
}

// The descr NumPy writes for T: "<f4", "|u1", ...
template <class T>
std::string npy_descr() {
    static_assert(is_readable_element_type_v<T>,
                  "vit3d::io::write_npy writes float, double or fixed-width integer tensors");
    const char kind = std::is_floating_point_v<T> ? 'f' : std::is_signed_v<T> ? 'i' : 'u';
    return std::string(1, sizeof(T) == 1 ? '|' : '<') + kind + std::to_string(sizeof(T));
}

// Magic, version, header length and header of a C-order array of T with this shape, byte for byte what
// numpy.lib.format._write_array_header writes (NumPy 1.26; unchanged since NumPy 1.24 and in 2.x).
template <class T>
std::string npy_header_bytes(const Shape& shape) {
    std::string shape_text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) shape_text += (i ? ", " : "") + std::to_string(shape[i]);
    shape_text += shape.size() == 1 ? ",)" : ")";
    std::string dict =
        "{'descr': '" + npy_descr<T>() + "', 'fortran_order': False, 'shape': " + shape_text + ", }";
    // NumPy leaves room for the first axis to grow to 21 digits, so that appending rewrites the header in
    // place.
    if (!shape.empty()) dict.append(21 - std::min<std::size_t>(21, std::to_string(shape[0]).size()), ' ');
    const std::size_t text = dict.size() + 1;  // + the final '\n'
    // ARRAY_ALIGN - (... % ARRAY_ALIGN): a whole 64 bytes of padding when the header is already aligned.
    std::size_t prefix = npy_magic_size + 2 + 2;
    std::size_t padding = 64 - (prefix + text) % 64;
    int major = 1;
    if (text + padding > 65535) {
        major = 2;
        prefix = npy_magic_size + 2 + 4;
        padding = 64 - (prefix + text) % 64;
    }
    std::string out(npy_magic, npy_magic_size);
    out += static_cast<char>(major);
    out += '\0';
    std::uint8_t length[4];
    store_unsigned(length, static_cast<std::uint32_t>(text + padding), false);
    out.append(reinterpret_cast<const char*>(length), major == 1 ? 2 : 4);
    out += dict;
    out.append(padding, ' ');
    out += '\n';
    return out;
}

template <class T>
void encode_npy_elements(const T* src, Index n, std::uint8_t* dst) {
    for (Index i = 0; i < n; ++i) store_number(dst + static_cast<std::size_t>(i) * sizeof(T), src[i], false);
}

}  // namespace vit3d::detail

namespace vit3d::io {

// Validates the header of a .npy file held in memory (the whole file: the data size is checked too).
// `source_name` is what messages call it.
inline NpyHeader parse_npy_header(const std::uint8_t* bytes, std::size_t size,
                                  const std::string& source_name = "<memory>") {
    return detail::parse_npy_header(
        bytes, size, size, message("vit3d::io::parse_npy_header(", detail::quoted_path(source_name), "): "));
}

// Parses and validates a whole .npy file held in memory and converts its elements to T: float or double
// (any stored type; rounded to nearest when narrowing) or an integer type (only if every element is exact
// in T, else io_error naming the first that is not).
template <class T>
Tensor<T> parse_npy(const std::uint8_t* bytes, std::size_t size,
                    const std::string& source_name = "<memory>") {
    return detail::parse_npy_at<T>(bytes, size,
                                   message("vit3d::io::parse_npy(", detail::quoted_path(source_name), "): "));
}
template <class T>
Tensor<T> parse_npy(const std::vector<std::uint8_t>& bytes, const std::string& source_name = "<memory>") {
    return parse_npy<T>(bytes.data(), bytes.size(), source_name);
}

// The header of the .npy file at `path` (reading only the header, validated against the file's size).
inline NpyHeader read_npy_header(const std::string& path) {
    const std::string where = message("vit3d::io::read_npy_header(", detail::quoted_path(path), "): ");
    const std::uint64_t size = detail::regular_file_size(path, where);
    std::vector<std::uint8_t> prefix = detail::read_file_bytes(path, where, 12);
    std::uint64_t header_end = prefix.size();
    if (prefix.size() >= 12 && (prefix[6] == 2 || prefix[6] == 3))
        header_end = 12 + detail::load_unsigned<std::uint32_t>(prefix.data() + 8, false);
    else if (prefix.size() >= 10)
        header_end = 10 + detail::load_unsigned<std::uint16_t>(prefix.data() + 8, false);
    if (header_end > prefix.size() && header_end <= size)
        prefix = detail::read_file_bytes(path, where, header_end);
    return detail::parse_npy_header(prefix.data(), prefix.size(), size, where);
}

// Reads the .npy file at `path` as parse_npy() does.
template <class T>
Tensor<T> read_npy(const std::string& path) {
    const std::string where = message("vit3d::io::read_npy(", detail::quoted_path(path), "): ");
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::parse_npy_at<T>(bytes.data(), bytes.size(), where);
}

// The bytes numpy.save() writes for this array (C order, little-endian; float -> '<f4', double -> '<f8',
// std::int16_t -> '<i2', std::uint8_t -> '|u1', ...).
template <class T>
std::vector<std::uint8_t> serialize_npy(const Tensor<T>& tensor) {
    const std::string header = detail::npy_header_bytes<T>(tensor.shape());
    std::vector<std::uint8_t> out(header.size() + static_cast<std::size_t>(tensor.size()) * sizeof(T));
    std::memcpy(out.data(), header.data(), header.size());
    detail::encode_npy_elements(tensor.data(), tensor.size(), out.data() + header.size());
    return out;
}

// Writes serialize_npy(tensor) to `path`, through a temporary file that replaces `path` only when complete;
// on any failure `path` is left as it was and the temporary file is removed.
template <class T>
void write_npy(const std::string& path, const Tensor<T>& tensor) {
    const std::string header = detail::npy_header_bytes<T>(tensor.shape());
    AtomicFileWriter file(path, message("vit3d::io::write_npy(", detail::quoted_path(path), "): "));
    file.write(header.data(), header.size());
    constexpr Index chunk = Index(1) << 16;
    std::vector<std::uint8_t> buffer;
    for (Index first = 0; first < tensor.size(); first += chunk) {
        const Index n = std::min(chunk, tensor.size() - first);
        buffer.resize(static_cast<std::size_t>(n) * sizeof(T));
        detail::encode_npy_elements(tensor.data() + first, n, buffer.data());
        file.write(buffer.data(), buffer.size());
    }
    file.commit();
}

}  // namespace vit3d::io
