#pragma once
// Reading and writing safetensors files (https://github.com/huggingface/safetensors), the checkpoint format
// of Hugging Face and timm: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} plus an optional "__metadata__" object of
// strings, then the data section, raw little-endian row-major.
//
// The JSON is parsed with nlohmann/json, a dependency of this header only (<vit3d.hpp> does not include it).
//
// Three ways in: parse() a buffer, read() a whole file into memory, or open() a file mapped (or streamed)
// so that tensors are decoded one at a time from the file straight into the caller's memory (get_into)
// and their pages dropped again (release): the weight loaders' way, whose resident memory is then about
// the size of the weights rather than file + weights.
//
// A file is validated as a whole when it is opened, as strictly as the reference implementation does (the
// tensors must tile the data section exactly) and a little more (unknown fields and duplicate keys are
// errors too), so that a truncated or corrupted checkpoint fails at once, with a vit3d::io_error naming the
// file and the key, instead of loading garbage. Every size computed from the file is checked for overflow.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/atomic_file_writer.hpp"
#include "vit3d/formats/file_bytes.hpp"
#include "vit3d/formats/float16.hpp"
#include "vit3d/io/tensor_source.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// The element types vit3d reads and writes. Files may hold others (I64, U8, BOOL, ...: a Hugging Face
// checkpoint's position_ids buffer); such tensors are listed and validated like the rest, and reading one
// fails, naming the tensor and its dtype.
enum class DType { F16, BF16, F32, F64 };

// "F16", "BF16", "F32", "F64": the names used in safetensors headers.
constexpr auto enum_names(DType) {
    return enum_table<DType>(
        {{DType::F16, "F16"}, {DType::BF16, "BF16"}, {DType::F32, "F32"}, {DType::F64, "F64"}});
}

inline const char* dtype_name(DType dtype) { return enum_name(dtype); }

// Bytes per element.
inline std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::F16:
        case DType::BF16:
            return 2;
        case DType::F32:
            return 4;
        case DType::F64:
            return 8;
    }
    return 0;
}

// Where a tensor lives in a file.
struct TensorInfo {
    DType dtype = DType::F32;
    std::string
        other_dtype;  // a valid safetensors dtype vit3d does not read ("I64", ...); dtype is then unused
    Shape shape;
    std::uint64_t begin = 0;  // byte range [begin, end) in the data section, which starts after the header
    std::uint64_t end = 0;
};

}  // namespace vit3d::io

namespace vit3d::detail {

// The reference implementation refuses longer headers (MAX_HEADER_SIZE), and so do we, in both directions.
inline constexpr std::uint64_t max_header_size = 100'000'000;

// A JSON value as text for a message, shortened when long.
inline std::string json_text(const nlohmann::json& value) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > 64) text = text.substr(0, 60) + " ...";
    return text;
}

// json_text(), preceded by the type for strings, arrays and objects: "got string \"1\"", "got array [1]".
inline std::string brief_json(const nlohmann::json& value) {
    return value.is_string() || value.is_structured()
               ? value.type_name() + std::string(" ") + json_text(value)
               : json_text(value);
}

// A non-negative JSON integer (nlohmann stores "-0" as a signed zero).
inline bool json_to_u64(const nlohmann::json& value, std::uint64_t& out) {
    if (value.is_number_unsigned()) {
        out = value.get<std::uint64_t>();
        return true;
    }
    if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
        out = static_cast<std::uint64_t>(value.get<std::int64_t>());
        return true;
    }
    return false;
}

inline std::uint64_t load_le(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}
inline void store_le(std::uint8_t* p, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// n elements of `dtype` at src (little-endian) into dst.
template <class T>
void decode_elements(io::DType dtype, const std::uint8_t* src, T* dst, Index n) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    switch (dtype) {
        case io::DType::F16:
            for (Index i = 0; i < n; ++i)
                dst[i] =
                    static_cast<T>(io::f16_to_float(static_cast<std::uint16_t>(load_le(src + 2 * i, 2))));
            return;
        case io::DType::BF16:
            for (Index i = 0; i < n; ++i)
                dst[i] =
                    static_cast<T>(io::bf16_to_float(static_cast<std::uint16_t>(load_le(src + 2 * i, 2))));
            return;
        case io::DType::F32:
            for (Index i = 0; i < n; ++i)
                dst[i] = static_cast<T>(float_from_bits(static_cast<std::uint32_t>(load_le(src + 4 * i, 4))));
            return;
        case io::DType::F64:
            for (Index i = 0; i < n; ++i) {
                const double x = double_from_bits(load_le(src + 8 * i, 8));
                if constexpr (std::is_same_v<T, float>) {
                    dst[i] = io::f32_from_double(x);
                } else {
                    dst[i] = x;
                }
            }
            return;
    }
}

// True on hosts that store numbers little-endian, as safetensors files do: there, a tensor stored in the
// destination's own type is copied byte for byte instead of assembled element by element.
inline bool host_is_little_endian() noexcept {
    const std::uint32_t probe = 1;
    std::uint8_t first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

// Whether the stored bytes of `dtype` are T's own representation (no conversion needed).
template <class T>
bool stored_as_is(io::DType dtype) noexcept {
    const bool same_type = (std::is_same_v<T, float> && dtype == io::DType::F32) ||
                           (std::is_same_v<T, double> && dtype == io::DType::F64);
    return same_type && host_is_little_endian();
}

// decode_elements(), with the plain copy when the stored type is T's own.
template <class T>
void decode_or_copy(io::DType dtype, const std::uint8_t* src, T* dst, Index n) {
    if (stored_as_is<T>(dtype)) {
        if (n > 0) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
        return;
    }
    decode_elements(dtype, src, dst, n);
}

// n elements of src into dst as `dtype` (little-endian), rounded to nearest even when narrowing.
template <class T>
void encode_elements(io::DType dtype, const T* src, Index n, std::uint8_t* dst) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    switch (dtype) {
        case io::DType::F16:
            for (Index i = 0; i < n; ++i) store_le(dst + 2 * i, io::f16_from_double(src[i]), 2);
            return;
        case io::DType::BF16:
            for (Index i = 0; i < n; ++i) store_le(dst + 2 * i, io::bf16_from_double(src[i]), 2);
            return;
        case io::DType::F32:
            for (Index i = 0; i < n; ++i) {
                if constexpr (std::is_same_v<T, float>) {
                    store_le(dst + 4 * i, float_bits(src[i]), 4);
                } else {
                    store_le(dst + 4 * i, float_bits(io::f32_from_double(src[i])), 4);
                }
            }
            return;
        case io::DType::F64:
            for (Index i = 0; i < n; ++i) store_le(dst + 8 * i, double_bits(static_cast<double>(src[i])), 8);
            return;
    }
}

}  // namespace vit3d::detail

namespace vit3d::io {

// An opened safetensors file: the header parsed and validated; the tensors' bytes in memory (parse, read)
// or in the file (open). Tensors are converted to float or double on get() / get_into(); the object is
// immutable (copies share the bytes), so concurrent get() calls are safe.
class Safetensors final : public TensorSource {
  public:
    // Reads the whole file at `path` at once, then parses it as parse() does.
    static Safetensors read(const std::string& path) {
        const std::string where = message("vit3d::io::Safetensors(", detail::quoted(path), "): ");
        const std::uintmax_t size = regular_file_size(path, where);
        if (size > static_cast<std::uintmax_t>(std::numeric_limits<std::streamsize>::max()) ||
            size > std::vector<std::uint8_t>().max_size())
            throw io_error(message(where, "the file has ", size, " bytes, more than fit in memory"));
        std::ifstream in(path, std::ios::binary);
        if (!in) throw io_error(message(where, "cannot open the file for reading"));
        std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
        if (in.gcount() != static_cast<std::streamsize>(size))
            throw io_error(message(where, "expected to read ", size, " bytes, got ", in.gcount()));
        return parse(std::move(bytes), path);
    }

    // Opens the file at `path` without reading its tensors: only the header is read and validated (as
    // strictly as parse() does); each tensor is read from the file when it is asked for. FileAccess::map
    // maps the file (the default; plain reads where mmap is unavailable), FileAccess::stream reads it.
    static Safetensors open(const std::string& path, FileAccess access = FileAccess::map) {
        const std::string where = message("vit3d::io::Safetensors(", detail::quoted(path), "): ");
        (void)regular_file_size(path, where);
        Safetensors file;
        file.source_ = path;
        file.bytes_ = detail::open_file_bytes(path, access, where);
        file.parse_header();
        return file;
    }

    // Parses and validates a whole file held in memory; `source_name` is what messages call it.
    static Safetensors parse(std::vector<std::uint8_t> bytes, std::string source_name = "<memory>") {
        Safetensors file;
        file.source_ = std::move(source_name);
        file.bytes_ = std::make_shared<detail::MemoryBytes>(std::move(bytes));
        file.parse_header();
        return file;
    }

    // The file name given to read() or open(), or the source name given to parse().
    const std::string& source_name() const noexcept override { return source_; }
    // How the tensors' bytes are reached: "memory" (parse, read), "mmap" or "read" (open).
    const char* access_name() const noexcept { return bytes_ ? bytes_->access_name() : "none"; }
    // The file's size in bytes.
    std::uint64_t file_size() const noexcept { return bytes_ ? bytes_->size() : 0; }
    // The "__metadata__" strings; empty when the file has none.
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    // All tensor names, sorted.
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(tensors_.size());
        for (const auto& entry : tensors_) out.push_back(entry.first);
        return out;
    }
    std::size_t size() const noexcept { return tensors_.size(); }
    bool contains(const std::string& name) const override { return tensors_.count(name) != 0; }
    Shape shape(const std::string& name) const override { return info(name).shape; }

    // Dtype, shape and byte range of a tensor; throws io_error naming the key if there is none.
    const TensorInfo& info(const std::string& name) const {
        const auto it = tensors_.find(name);
        if (it == tensors_.end())
            throw io_error(message(where(), "no tensor named ", detail::quoted(name), "; ", listing()));
        return it->second;
    }

    // A tensor converted to T (float or double): exact except F64 -> float, which rounds to nearest even.
    template <class T>
    Tensor<T> get(const std::string& name) const {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "vit3d::io::Safetensors::get converts to float or double");
        const TensorInfo& ti = readable_info(name);
        Tensor<T> out = Tensor<T>::empty(ti.shape);
        decode(name, ti, out.data());
        return out;
    }

    // get(name), and throws io_error if the tensor's shape is not `expected`.
    template <class T>
    Tensor<T> get(const std::string& name, const Shape& expected) const {
        const TensorInfo& ti = info(name);
        if (ti.shape != expected)
            throw io_error(message(where(), "tensor ", detail::quoted(name), " has shape ", ti.shape,
                                   ", expected ", expected));
        return get<T>(name);
    }

    // Decodes the tensor into `count` elements at dst, the caller's memory (e.g. a parameter's own
    // buffer), converted as get() converts; nothing else is allocated except, for a streamed file, a
    // bounded read buffer. Throws io_error naming the key if the tensor does not have `count` elements.
    void get_into(const std::string& name, float* dst, Index count) const override {
        decode_into(name, dst, count);
    }
    void get_into(const std::string& name, double* dst, Index count) const override {
        decode_into(name, dst, count);
    }

    // get_into(name, out.data(), out.size()) when out has the tensor's shape; throws io_error otherwise.
    template <class T>
    void get_into(const std::string& name, Tensor<T>& out) const {
        const TensorInfo& ti = info(name);
        if (ti.shape != out.shape())
            throw io_error(message(where(), "tensor ", detail::quoted(name), " has shape ", ti.shape,
                                   ", expected ", out.shape()));
        get_into(name, out.data(), out.size());
    }

    // Says that this tensor's bytes will not be read again soon: a mapped file drops their pages from the
    // process's resident memory (they are read from the file again if needed); otherwise a no-op.
    void release(const std::string& name) const override {
        const TensorInfo& ti = info(name);
        bytes_->release(data_start_ + ti.begin, ti.end - ti.begin);
    }

  private:
    Safetensors() = default;

    // info(name), and throws io_error when vit3d does not read the tensor's dtype.
    const TensorInfo& readable_info(const std::string& name) const {
        const TensorInfo& ti = info(name);
        if (!ti.other_dtype.empty())
            throw io_error(message(tensor_where(name), "dtype ", ti.other_dtype,
                                   " is a valid safetensors dtype, but vit3d reads only ",
                                   enum_name_list<DType>("", ", ", " or "), " tensors"));
        return ti;
    }

    template <class T>
    void decode_into(const std::string& name, T* dst, Index count) const {
        const TensorInfo& ti = readable_info(name);
        const Index numel = shape_numel(ti.shape);
        if (numel != count)
            throw io_error(message(where(), "tensor ", detail::quoted(name), " of shape ", ti.shape, " has ",
                                   numel, " elements, expected ", count));
        if (count > 0 && dst == nullptr)
            throw io_error(message(where(), "tensor ", detail::quoted(name), ": expected a destination for ",
                                   count, " elements, got a null pointer"));
        decode(name, ti, dst);
    }

    static std::uintmax_t regular_file_size(const std::string& path, const std::string& where) {
        std::error_code ec;
        const std::uintmax_t size = std::filesystem::file_size(path, ec);  // fails on directories too
        if (ec) throw io_error(message(where, "cannot read the file: ", ec.message()));
        return size;
    }

    // The tensor's bytes decoded into dst (ti.shape's element count): straight from memory or the mapping;
    // for a streamed file, read into dst directly when no conversion is needed, else through a bounded
    // buffer.
    template <class T>
    void decode(const std::string& name, const TensorInfo& ti, T* dst) const {
        const std::uint64_t offset = data_start_ + ti.begin;
        const Index count = shape_numel(ti.shape);
        if (const std::uint8_t* src = bytes_->address(offset)) {
            detail::decode_or_copy(ti.dtype, src, dst, count);
            return;
        }
        const std::size_t element = dtype_size(ti.dtype);
        try {
            if (detail::stored_as_is<T>(ti.dtype)) {  // read straight into the destination
                bytes_->copy(offset, static_cast<std::size_t>(count) * element,
                             reinterpret_cast<std::uint8_t*>(dst));
                return;
            }
            const Index per_chunk =
                static_cast<Index>(std::max<std::size_t>(1, detail::stream_chunk_bytes / element));
            std::vector<std::uint8_t> buffer(static_cast<std::size_t>(std::min(per_chunk, count)) * element);
            for (Index first = 0; first < count; first += per_chunk) {
                const Index n = std::min(per_chunk, count - first);
                bytes_->copy(offset + static_cast<std::uint64_t>(first) * element,
                             static_cast<std::size_t>(n) * element, buffer.data());
                detail::decode_or_copy(ti.dtype, buffer.data(), dst + first, n);
            }
        } catch (const io_error& e) {
            std::string reason = e.what();  // already prefixed with where(): name the tensor after it
            if (reason.compare(0, where().size(), where()) == 0) reason.erase(0, where().size());
            throw io_error(message(tensor_where(name), reason));
        }
    }

    std::string where() const { return message("vit3d::io::Safetensors(", detail::quoted(source_), "): "); }
    std::string tensor_where(const std::string& name) const {
        return message(where(), "tensor ", detail::quoted(name), ": ");
    }

    // "the file holds 3 tensors: "a", "b", "c"", the first few only.
    std::string listing() const {
        constexpr std::size_t shown = 8;
        if (tensors_.empty()) return "the file holds no tensors";
        std::string out =
            message("the file holds ", tensors_.size(), tensors_.size() == 1 ? " tensor: " : " tensors: ");
        std::size_t i = 0;
        for (const auto& entry : tensors_) {
            if (i == shown) {
                out += message(", ... (", tensors_.size() - shown, " more)");
                break;
            }
            out += message(i++ ? ", " : "", detail::quoted(entry.first));
        }
        return out;
    }

    void parse_header() {
        const std::uint64_t file_size = bytes_->size();
        if (file_size < 8)
            throw io_error(message(where(), "expected at least 8 bytes (the header length), got a file of ",
                                   file_size, " bytes"));
        std::uint8_t length[8];
        bytes_->copy(0, 8, length);
        const std::uint64_t header_size = detail::load_le(length, 8);
        if (header_size == 0)
            throw io_error(
                message(where(), "header length is 0, expected a JSON object of at least 2 bytes"));
        if (header_size > detail::max_header_size)
            throw io_error(message(where(), "header length is ", header_size, " bytes, expected at most ",
                                   detail::max_header_size, " (the reference implementation's limit)"));
        if (header_size > file_size - 8)
            throw io_error(message(where(), "header length is ", header_size, " bytes, but only ",
                                   file_size - 8, " bytes follow the 8-byte length in the file of ",
                                   file_size, " bytes"));
        data_start_ = 8 + header_size;
        const std::uint64_t data_size = file_size - 8 - header_size;

        std::string streamed_header;  // the header's bytes, for storages that are not addressable
        const char* text = reinterpret_cast<const char*>(bytes_->address(8));
        if (text == nullptr) {
            streamed_header.resize(static_cast<std::size_t>(header_size));
            bytes_->copy(8, streamed_header.size(), reinterpret_cast<std::uint8_t*>(&streamed_header[0]));
            text = streamed_header.data();
        }
        // nlohmann stops at a NUL byte as if the input ended there; JSON allows none anywhere.
        if (const void* nul = std::memchr(text, 0, static_cast<std::size_t>(header_size)))
            throw io_error(message(where(), "malformed JSON header: NUL byte at header offset ",
                                   static_cast<const char*>(nul) - text));
        const nlohmann::json header = parse_json(text, text + header_size);
        if (!header.is_object())
            throw io_error(message(where(), "expected the JSON header to be an object, got ",
                                   detail::brief_json(header)));
        // The reference implementation also rejects whitespace before the '{'.
        if (text[0] != '{')
            throw io_error(
                message(where(), "expected the JSON header to start with '{', got whitespace before it"));

        struct Extent {
            std::uint64_t begin, end;
            const std::string* name;
        };
        std::vector<Extent> extents;
        extents.reserve(header.size());
        for (const auto& item : header.items()) {
            if (item.key() == "__metadata__") {
                parse_metadata(item.value());
                continue;
            }
            TensorInfo info = parse_entry(item.key(), item.value(), data_size);
            const auto inserted = tensors_.emplace(item.key(), std::move(info));
            extents.push_back(
                {inserted.first->second.begin, inserted.first->second.end, &inserted.first->first});
        }

        // The tensors must tile the data section: sorted by offsets, each starts where the previous ended.
        std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
            return std::tie(a.begin, a.end, *a.name) < std::tie(b.begin, b.end, *b.name);
        });
        std::uint64_t covered = 0;
        const Extent* previous = nullptr;
        for (const Extent& e : extents) {
            const std::string range = message("[", e.begin, ", ", e.end, "]");
            if (e.begin < covered)
                throw io_error(message(tensor_where(*e.name), "data_offsets ", range, " overlap tensor ",
                                       detail::quoted(*previous->name), " at [", previous->begin, ", ",
                                       previous->end, "]"));
            if (e.begin > covered)
                throw io_error(message(tensor_where(*e.name), "data_offsets ", range, " leave bytes [",
                                       covered, ", ", e.begin, ") of the data section to no tensor (",
                                       previous
                                           ? message("the previous tensor, ", detail::quoted(*previous->name),
                                                     ", ends at ", covered)
                                           : std::string("it is the first tensor"),
                                       "); expected the tensors to tile the data section"));
            covered = e.end;
            previous = &e;
        }
        if (covered != data_size)
            throw io_error(
                message(where(), "the data section has ", data_size, " bytes, but ",
                        previous ? message("the tensors end at byte ", covered,
                                           " (last: ", detail::quoted(*previous->name), ")")
                                 : std::string("the header lists no tensors"),
                        "; expected the tensors to tile the data section (truncated or trailing data?)"));
    }

    nlohmann::json parse_json(const char* first, const char* last) const {
        // nlohmann keeps the last of duplicate keys silently; a checkpoint naming a tensor twice is corrupt.
        std::vector<std::set<std::string>> open_objects;
        const auto reject_duplicates = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
            using event_t = nlohmann::json::parse_event_t;
            if (event == event_t::object_start) {
                open_objects.emplace_back();
            } else if (event == event_t::object_end) {
                if (!open_objects.empty()) open_objects.pop_back();
            } else if (event == event_t::key && !open_objects.empty() && parsed.is_string()) {
                if (!open_objects.back().insert(parsed.get<std::string>()).second)
                    throw io_error(message(where(), "malformed JSON header: duplicate key ",
                                           detail::quoted(parsed.get<std::string>())));
            }
            return true;
        };
        try {
            return nlohmann::json::parse(first, last, reject_duplicates);
        } catch (const nlohmann::json::exception& e) {
            throw io_error(message(where(), "malformed JSON header: ", e.what()));
        }
    }

    void parse_metadata(const nlohmann::json& value) {
        const std::string at = message(where(), "\"__metadata__\": ");
        if (!value.is_object())
            throw io_error(message(at, "expected an object mapping strings to strings, got ",
                                   detail::brief_json(value)));
        for (const auto& item : value.items()) {
            if (!item.value().is_string())
                throw io_error(message(at, "expected a string for key ", detail::quoted(item.key()), ", got ",
                                       detail::brief_json(item.value())));
            metadata_.emplace(item.key(), item.value().get<std::string>());
        }
    }

    TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry,
                           std::uint64_t data_size) const {
        const std::string at = tensor_where(name);
        const char* const fields = "\"dtype\", \"shape\" and \"data_offsets\"";
        if (!entry.is_object())
            throw io_error(
                message(at, "expected an object with ", fields, ", got ", detail::brief_json(entry)));
        for (const auto& field : entry.items())
            if (field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets")
                throw io_error(
                    message(at, "unknown field ", detail::quoted(field.key()), ", expected only ", fields));
        const auto field = [&](const char* key) -> const nlohmann::json& {
            const auto it = entry.find(key);
            if (it == entry.end())
                throw io_error(message(at, "missing field \"", key, "\", expected an object with ", fields));
            return *it;
        };

        TensorInfo info;
        std::uint64_t element_size = 0;
        parse_dtype(at, field("dtype"), info, element_size);

        const nlohmann::json& shape = field("shape");
        if (!shape.is_array())
            throw io_error(message(at, "shape: expected an array of non-negative integers, got ",
                                   detail::brief_json(shape)));
        // Counted as shape_numel() counts (left to right, failing on overflow), so Tensor::empty accepts it.
        Index numel = 1;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            std::uint64_t len = 0;
            if (!detail::json_to_u64(shape[i], len))
                throw io_error(message(at, "shape: expected non-negative integers, got ",
                                       detail::brief_json(shape[i]), " at position ", i, " of ",
                                       detail::brief_json(shape)));
            if (len > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) ||
                (len != 0 && numel > std::numeric_limits<Index>::max() / static_cast<Index>(len)))
                throw io_error(message(at, "shape ", detail::json_text(shape),
                                       " has more elements than vit3d can index"));
            numel *= static_cast<Index>(len);
            info.shape.push_back(static_cast<Index>(len));
        }

        const nlohmann::json& offsets = field("data_offsets");
        if (!offsets.is_array() || offsets.size() != 2 || !detail::json_to_u64(offsets[0], info.begin) ||
            !detail::json_to_u64(offsets[1], info.end) || info.begin > info.end)
            throw io_error(message(
                at, "data_offsets: expected [begin, end], non-negative integers with begin <= end, got ",
                detail::brief_json(offsets)));
        const std::string range = message("[", info.begin, ", ", info.end, "]");

        const std::uint64_t count = static_cast<std::uint64_t>(numel);
        if (count > std::numeric_limits<std::uint64_t>::max() / element_size ||
            count * element_size != info.end - info.begin)
            throw io_error(
                message(at, "dtype ", info.other_dtype.empty() ? dtype_name(info.dtype) : info.other_dtype,
                        " and shape ", info.shape, " need ",
                        count > std::numeric_limits<std::uint64_t>::max() / element_size
                            ? std::string("more than 2^64")
                            : message(count * element_size),
                        " bytes, got data_offsets ", range, " (", info.end - info.begin, " bytes)"));
        if (info.end > data_size)
            throw io_error(message(at, "data_offsets ", range,
                                   " extend beyond the data section: expected end <= ", data_size, ", got ",
                                   info.end, " (truncated file?)"));
        return info;
    }

    // The entry's dtype into info (dtype, or other_dtype for one vit3d does not read) and its bytes per
    // element.
    static void parse_dtype(const std::string& at, const nlohmann::json& value, TensorInfo& info,
                            std::uint64_t& element_size) {
        if (!value.is_string())
            throw io_error(
                message(at, "dtype: expected a string such as \"F32\", got ", detail::brief_json(value)));
        const std::string& name = value.get_ref<const std::string&>();
        if (const std::optional<DType> dtype = enum_from_name<DType>(name)) {
            info.dtype = *dtype;
            element_size = dtype_size(*dtype);
            return;
        }
        // Valid safetensors dtypes (up to format version 0.5) that have no use as a float model's weights:
        // listed (a checkpoint's position_ids), never read.
        static const std::pair<const char*, std::uint64_t> others[] = {
            {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2},     {"U16", 2},     {"I32", 4},    {"U32", 4},
            {"I64", 8},  {"U64", 8}, {"C64", 8}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1}};
        for (const auto& [other, size] : others)
            if (name == other) {
                info.other_dtype = name;
                element_size = size;
                return;
            }
        for (const char* sub_byte : {"F6_E2M3", "F6_E3M2", "F4"})
            if (name == sub_byte)
                throw io_error(message(at, "dtype ", name,
                                       " is a valid safetensors dtype, but not supported by vit3d: expected ",
                                       enum_name_list<DType>("", ", ", " or ")));
        throw io_error(message(at, "expected dtype ", enum_name_list<DType>("", ", ", " or "),
                               ", got unknown dtype ", detail::quoted(name)));
    }

    std::string source_;
    std::shared_ptr<const detail::FileBytes> bytes_;
    std::uint64_t data_start_ = 0;  // 8 + header length
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace vit3d::io

namespace vit3d::detail {

inline void check_utf8(const std::string& where, const std::string& what, const std::string& s) {
    try {
        (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::type_error&) {
        throw io_error(message(where, what, " ", quoted(s), " is not valid UTF-8"));
    }
}

// The padded JSON header for these tensors written as `as`; sets data_size to the data section's length.
// The data section holds the tensors in sorted-name order.
template <class T>
std::string safetensors_header(const std::map<std::string, const Tensor<T>*>& tensors,
                               const std::map<std::string, std::string>& metadata, io::DType as,
                               const std::string& where, std::uint64_t& data_size) {
    if (enum_name(as, nullptr) == nullptr)
        throw io_error(message(where, "expected dtype ", enum_name_list<io::DType>("", ", ", " or "),
                               ", got DType(", static_cast<int>(as), ")"));
    // ordered_json keeps the reference's order ("__metadata__" first, tensors by offset, then the fields
    // dtype, shape, data_offsets), so that the bytes are the reference's too. (With several metadata entries
    // the reference's order is that of a hash map; readers do not care.)
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json strings = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata) {
            check_utf8(where, "metadata key", key);
            check_utf8(where, message("metadata value for ", quoted(key), ","), value);
            strings[key] = value;
        }
        header["__metadata__"] = std::move(strings);
    }
    const std::uint64_t element_size = io::dtype_size(as);
    std::uint64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
        if (name == "__metadata__")
            throw io_error(
                message(where, "expected tensor names other than \"__metadata__\", the metadata's key"));
        if (tensor == nullptr)
            throw io_error(
                message(where, "tensor ", quoted(name), ": expected a tensor, got a null pointer"));
        check_utf8(where, "tensor name", name);
        const std::uint64_t count = static_cast<std::uint64_t>(tensor->size());
        if (count > (std::numeric_limits<std::uint64_t>::max() - offset) / element_size)
            throw io_error(
                message(where, "tensor ", quoted(name), ": the data section would exceed 2^64 bytes"));
        const std::uint64_t end = offset + count * element_size;
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = io::dtype_name(as);
        entry["shape"] = tensor->shape();
        entry["data_offsets"] = nlohmann::ordered_json::array({offset, end});
        header[name] = std::move(entry);
        offset = end;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the reference pads so that the data starts 8-byte aligned
    if (text.size() > max_header_size)
        throw io_error(message(where, "the JSON header would have ", text.size(), " bytes, expected at most ",
                               max_header_size, " (readers refuse more)"));
    data_size = offset;
    return text;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The bytes of a safetensors file holding `tensors` (name -> tensor) converted to `as`, rounding to nearest
// even when narrowing, in sorted-name order, with `metadata` as "__metadata__" (omitted when empty).
template <class T>
std::vector<std::uint8_t> serialize_safetensors(const std::map<std::string, const Tensor<T>*>& tensors,
                                                const std::map<std::string, std::string>& metadata = {},
                                                DType as = DType::F32) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::serialize_safetensors writes float or double tensors");
    const std::string where = "vit3d::io::serialize_safetensors: ";
    std::uint64_t data_size = 0;
    const std::string header = detail::safetensors_header(tensors, metadata, as, where, data_size);
    const std::uint64_t prefix = 8 + header.size();
    if (data_size > std::vector<std::uint8_t>().max_size() - prefix)
        throw io_error(message(where, "the file would have ", data_size, " + ", prefix,
                               " bytes, more than a std::vector can hold"));
    std::vector<std::uint8_t> out(static_cast<std::size_t>(prefix + data_size));
    detail::store_le(out.data(), header.size(), 8);
    std::memcpy(out.data() + 8, header.data(), header.size());
    std::uint8_t* dst = out.data() + prefix;
    for (const auto& entry : tensors) {
        detail::encode_elements(as, entry.second->data(), entry.second->size(), dst);
        dst += static_cast<std::size_t>(entry.second->size()) * dtype_size(as);
    }
    return out;
}

// Writes serialize_safetensors(tensors, metadata, as) to `path`, converting a slice of each tensor at a time
// rather than the whole file in memory. The bytes go to a temporary file next to `path` that is renamed onto
// it once complete (io/atomic_file_writer.hpp): on any failure `path` keeps what it held before, and no
// partial file is left.
template <class T>
void write_safetensors(const std::string& path, const std::map<std::string, const Tensor<T>*>& tensors,
                       const std::map<std::string, std::string>& metadata = {}, DType as = DType::F32) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vit3d::io::write_safetensors writes float or double tensors");
    const std::string where = message("vit3d::io::write_safetensors(", detail::quoted(path), "): ");
    std::uint64_t data_size = 0;
    const std::string header = detail::safetensors_header(tensors, metadata, as, where, data_size);

    AtomicFileWriter out(path, where);
    std::uint8_t length[8];
    detail::store_le(length, header.size(), 8);
    out.write(length, 8);
    out.write(header.data(), header.size());
    constexpr Index chunk = Index(1) << 16;
    std::vector<std::uint8_t> buffer;
    for (const auto& entry : tensors) {
        const Tensor<T>& t = *entry.second;
        for (Index first = 0; first < t.size(); first += chunk) {
            const Index n = std::min(chunk, t.size() - first);
            buffer.resize(static_cast<std::size_t>(n) * dtype_size(as));
            detail::encode_elements(as, t.data() + first, n, buffer.data());
            out.write(buffer.data(), buffer.size());
        }
    }
    out.commit();
}

}  // namespace vit3d::io
