// libFuzzer target for vit3d::io::parse_npy_header and parse_npy. Any input must either parse or throw
// vit3d::io_error; every other exception, a crash, a leak or a sanitizer report is a bug. An input whose
// header is valid must then read as float and double (every stored type converts to those, bool bytes
// other than 0 and 1 excepted), integer reads must agree with the double read wherever they succeed, and
// the array written back (as float64) must read back bit for bit.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vit3d/formats/npy.hpp>

namespace {

// Like assert, but also in release builds.
void require(bool condition) {
    if (!condition) std::abort();
}

template <class T>
void check_integer_read(const std::uint8_t* data, std::size_t size, const vit3d::Tensor<double>& as_double) {
    std::optional<vit3d::Tensor<T>> read;
    try {
        read.emplace(vit3d::io::parse_npy<T>(data, size, "fuzz"));
    } catch (const vit3d::io_error&) {
        return;  // some element is not exact in T
    }
    require(read->shape() == as_double.shape());
    for (vit3d::Index i = 0; i < read->size(); ++i)
        require(static_cast<double>(read->data()[i]) == as_double.data()[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vit3d;
    std::optional<io::NpyHeader> header;
    try {
        header.emplace(io::parse_npy_header(data, size, "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    std::optional<Tensor<double>> as_double;
    try {
        as_double.emplace(io::parse_npy<double>(data, size, "fuzz"));
    } catch (const io_error&) {
        require(header->dtype == io::NpyDType::boolean);  // a bool byte other than 0 or 1
        return 0;
    }
    require(as_double->shape() == header->shape && as_double->size() == header->size);
    const Tensor<float> as_float = io::parse_npy<float>(data, size, "fuzz");
    require(as_float.shape() == header->shape);

    check_integer_read<std::int8_t>(data, size, *as_double);
    check_integer_read<std::uint8_t>(data, size, *as_double);
    check_integer_read<std::int16_t>(data, size, *as_double);
    check_integer_read<std::uint32_t>(data, size, *as_double);
    check_integer_read<std::int64_t>(data, size, *as_double);

    const std::vector<std::uint8_t> again = io::serialize_npy(*as_double);
    const Tensor<double> back = io::parse_npy<double>(again, "fuzz (written back)");
    require(back.shape() == as_double->shape());
    require(back.size() == 0 || std::memcmp(back.data(), as_double->data(),
                                            static_cast<std::size_t>(back.size()) * sizeof(double)) == 0);
    return 0;
}
