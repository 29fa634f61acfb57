// Tests for vit3d/formats/float16.hpp and vit3d/io/safetensors.hpp: the F16/BF16 conversions exhaustively,
// round trips in every dtype, every validation error on crafted files, and files written by the Python
// safetensors package (tests/fixtures/make_safetensors_sample.py).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>
#include <vit3d.hpp>

#ifdef __linux__
#include <sys/resource.h>
#endif

#ifdef NLOHMANN_JSON_VERSION_MAJOR
#error "<vit3d.hpp> must not include nlohmann/json.hpp: JSON is a dependency of vit3d/io/safetensors.hpp only"
#endif

#include <vit3d/io/safetensors.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;

constexpr DType kAllDTypes[] = {DType::F16, DType::BF16, DType::F32, DType::F64};

std::uint32_t Bits(float x) { return detail::float_bits(x); }

// Equal bit for bit, or both NaN: what "exact" means for a conversion.
::testing::AssertionResult SameFloat(double actual, double expected) {
    if ((std::isnan(actual) && std::isnan(expected)) ||
        (actual == expected && std::signbit(actual) == std::signbit(expected)))
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "got " << actual << ", expected " << expected;
}

// ---- F16 / BF16 conversions
// --------------------------------------------------------------------------------

// The value of a half or bfloat16 bit pattern from the IEEE definition, computed in double.
double ReferenceValue(std::uint16_t bits, int exp_bits, int mant_bits) {
    const int bias = (1 << (exp_bits - 1)) - 1;
    const int exponent = (bits >> mant_bits) & ((1 << exp_bits) - 1);
    const int mantissa = bits & ((1 << mant_bits) - 1);
    const double sign = (bits >> (exp_bits + mant_bits)) ? -1.0 : 1.0;
    if (exponent == (1 << exp_bits) - 1)
        return mantissa ? std::numeric_limits<double>::quiet_NaN()
                        : sign * std::numeric_limits<double>::infinity();
    if (exponent == 0) return sign * std::ldexp(mantissa, 1 - bias - mant_bits);
    return sign * std::ldexp(mantissa + (1 << mant_bits), exponent - bias - mant_bits);
}

TEST(SafetensorsFloat16, DecodesEveryHalfExactly) {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float x = f16_to_float(static_cast<std::uint16_t>(h));
        ASSERT_TRUE(SameFloat(x, ReferenceValue(static_cast<std::uint16_t>(h), 5, 10)))
            << "half 0x" << std::hex << h;
        if (std::isnan(x)) {  // sign and payload are kept: the mantissa moves up by 13 bits
            ASSERT_EQ(Bits(x), ((h & 0x8000u) << 16) | 0x7F800000u | ((h & 0x3FFu) << 13)) << std::hex << h;
        }
    }
}

TEST(SafetensorsFloat16, DecodesEveryBfloat16Exactly) {
    for (std::uint32_t b = 0; b < 65536; ++b) {
        const float x = bf16_to_float(static_cast<std::uint16_t>(b));
        ASSERT_TRUE(SameFloat(x, ReferenceValue(static_cast<std::uint16_t>(b), 8, 7)))
            << "bf16 0x" << std::hex << b;
        ASSERT_EQ(Bits(x), b << 16);
    }
}

// Encoding every decoded value gives the pattern back, from float and from double; NaNs stay NaNs.
TEST(SafetensorsFloat16, EncodingRoundTripsEveryPattern) {
    for (std::uint32_t p = 0; p < 65536; ++p) {
        const auto bits = static_cast<std::uint16_t>(p);
        const float half = f16_to_float(bits), bf = bf16_to_float(bits);
        if (std::isnan(half)) {
            const std::uint16_t again = f16_from_double(half);
            ASSERT_EQ(again & 0xFC00u, bits & 0xFC00u) << std::hex << p;  // sign and all-ones exponent
            ASSERT_NE(again & 0x3FFu, 0u) << std::hex << p;
        } else {
            ASSERT_EQ(f16_from_double(half), bits) << std::hex << p;
            ASSERT_EQ(f16_from_double(static_cast<double>(half)), bits) << std::hex << p;
        }
        if (std::isnan(bf)) {
            const std::uint16_t again = bf16_from_double(bf);
            ASSERT_EQ(again & 0xFF80u, bits & 0xFF80u) << std::hex << p;
            ASSERT_NE(again & 0x7Fu, 0u) << std::hex << p;
        } else {
            ASSERT_EQ(bf16_from_double(bf), bits) << std::hex << p;
        }
    }
}

// Between every two neighbouring finite values (and between the largest one and where the next would be,
// which rounds to infinity) the midpoint goes to the even pattern, and anything off the midpoint to the
// nearer value; from float and from double, for both signs.
template <class Encode>
void ExpectRoundsToNearestEven(Encode encode, double (*value)(std::uint16_t), std::uint16_t infinity) {
    const double inf = std::numeric_limits<double>::infinity();
    for (std::uint32_t p = 0; p < infinity; ++p) {
        const auto lower = static_cast<std::uint16_t>(p), upper = static_cast<std::uint16_t>(p + 1);
        const double lo = value(lower);
        const double hi =
            upper == infinity ? 2 * lo - value(static_cast<std::uint16_t>(p - 1)) : value(upper);
        const double mid = (lo + hi) / 2;  // exact: a few bits more than the format has
        const std::uint16_t even = (lower & 1) ? upper : lower;
        const float mid_f = static_cast<float>(mid);
        ASSERT_EQ(mid_f, mid);
        ASSERT_EQ(encode(mid), even) << "midpoint above 0x" << std::hex << p;
        ASSERT_EQ(encode(mid_f), even) << "midpoint above 0x" << std::hex << p;
        ASSERT_EQ(encode(std::nextafter(mid, 0.0)), lower) << std::hex << p;
        ASSERT_EQ(encode(std::nextafter(mid, inf)), upper) << std::hex << p;
        ASSERT_EQ(encode(std::nextafter(mid_f, 0.0f)), lower) << std::hex << p;
        ASSERT_EQ(encode(std::nextafter(mid_f, std::numeric_limits<float>::infinity())), upper)
            << std::hex << p;
        ASSERT_EQ(encode(-mid), even | 0x8000u) << std::hex << p;
        ASSERT_EQ(encode(-std::nextafter(mid, inf)), upper | 0x8000u) << std::hex << p;
    }
}

TEST(SafetensorsFloat16, HalfEncodingRoundsToNearestEven) {
    ExpectRoundsToNearestEven([](double x) { return f16_from_double(x); },
                              [](std::uint16_t b) { return static_cast<double>(f16_to_float(b)); }, 0x7C00);
}

TEST(SafetensorsFloat16, Bfloat16EncodingRoundsToNearestEven) {
    ExpectRoundsToNearestEven([](double x) { return bf16_from_double(x); },
                              [](std::uint16_t b) { return static_cast<double>(bf16_to_float(b)); }, 0x7F80);
}

TEST(SafetensorsFloat16, EncodingEdgeCases) {
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(f16_from_double(65504.0), 0x7BFF);
    EXPECT_EQ(f16_from_double(65519.99), 0x7BFF);
    EXPECT_EQ(f16_from_double(65520.0), 0x7C00);  // the tie goes to the even pattern: infinity
    EXPECT_EQ(f16_from_double(1e300), 0x7C00);
    EXPECT_EQ(f16_from_double(-inf), 0xFC00);
    EXPECT_EQ(f16_from_double(std::ldexp(1.0, -25)), 0x0000);  // half the smallest subnormal: tie to 0
    EXPECT_EQ(f16_from_double(-std::ldexp(1.0, -25)), 0x8000);
    EXPECT_EQ(f16_from_double(std::nextafter(std::ldexp(1.0, -25), 1.0)), 0x0001);
    EXPECT_EQ(f16_from_double(std::numeric_limits<double>::denorm_min()), 0x0000);
    EXPECT_EQ(f16_from_double(-std::numeric_limits<double>::denorm_min()), 0x8000);
    EXPECT_EQ(f16_from_double(std::ldexp(1023.5, -24)), 0x0400);  // largest subnormal + half: up to 2^-14
    EXPECT_EQ(bf16_from_double(std::numeric_limits<double>::max()), 0x7F80);
    EXPECT_EQ(bf16_from_double(std::numeric_limits<float>::max()), 0x7F80);  // beyond 0x7F7F's half ulp
    EXPECT_EQ(bf16_from_double(std::ldexp(1.0, -134)), 0x0000);
    EXPECT_EQ(bf16_from_double(std::ldexp(1.5, -134)), 0x0001);
    EXPECT_EQ(f16_from_double(std::numeric_limits<double>::quiet_NaN()) & 0x7E00, 0x7E00);
    EXPECT_EQ(bf16_from_double(-std::numeric_limits<double>::quiet_NaN()) & 0xFFC0, 0xFFC0);
}

// Rounding a double straight to 16 bits differs from rounding it to float first when the float rounding
// lands on a midpoint.
TEST(SafetensorsFloat16, DoublesAreRoundedOnceNotTwice) {
    const double just_above_half_tie = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
    EXPECT_EQ(f16_from_double(static_cast<float>(just_above_half_tie)), 0x3C00);  // float: a tie, to even
    EXPECT_EQ(f16_from_double(just_above_half_tie), 0x3C01);
    const double just_above_bf16_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
    EXPECT_EQ(bf16_from_double(static_cast<float>(just_above_bf16_tie)), 0x3F80);
    EXPECT_EQ(bf16_from_double(just_above_bf16_tie), 0x3F81);
}

TEST(SafetensorsFloat16, FloatNarrowingIsDefinedBeyondTheFloatRange) {
    const double max = std::numeric_limits<float>::max();
    const double half_ulp = std::ldexp(1.0, 103);  // float's ulp at FLT_MAX is 2^104
    EXPECT_EQ(f32_from_double(max), std::numeric_limits<float>::max());
    EXPECT_EQ(f32_from_double(max + half_ulp / 2), std::numeric_limits<float>::max());
    EXPECT_EQ(f32_from_double(std::nextafter(max + half_ulp, 0.0)), std::numeric_limits<float>::max());
    EXPECT_EQ(f32_from_double(max + half_ulp), std::numeric_limits<float>::infinity());  // tie, to even
    EXPECT_EQ(f32_from_double(-1e300), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(f32_from_double(std::numeric_limits<double>::quiet_NaN())));
    EXPECT_EQ(f32_from_double(std::numeric_limits<double>::denorm_min()), 0.0f);
    // In range it is the hardware conversion; the bit-level path (used beyond the range) agrees with it.
    vit3d::detail::Xoshiro256 rng(7);
    for (int i = 0; i < 100000; ++i) {  // exponents from float's subnormals up to just below its overflow
        const double x = rng.normal() * std::ldexp(1.0, static_cast<int>(rng.uniform() * 286) - 160);
        ASSERT_EQ(Bits(f32_from_double(x)), Bits(static_cast<float>(x))) << x;
        ASSERT_EQ((detail::round_double_to_format<8, 23>(x)), Bits(static_cast<float>(x))) << x;
    }
}

#if defined(__FLT16_MANT_DIG__) && defined(__GNUC__) && !defined(__clang__)
// A second opinion where the compiler has _Float16 (GCC on x86-64): its conversions are IEEE-exact too.
TEST(SafetensorsFloat16, AgreesWithCompilerFloat16) {
    for (std::uint32_t p = 0; p < 65536; ++p) {
        _Float16 h;
        const auto bits = static_cast<std::uint16_t>(p);
        std::memcpy(&h, &bits, 2);
        ASSERT_TRUE(SameFloat(f16_to_float(bits), static_cast<float>(h))) << std::hex << p;
    }
    vit3d::detail::Xoshiro256 rng(11);
    for (int i = 0; i < 200000; ++i) {
        const double x = rng.normal() * std::ldexp(1.0, static_cast<int>(rng.uniform() * 48) - 30);
        const _Float16 h = static_cast<_Float16>(x);
        std::uint16_t bits;
        std::memcpy(&bits, &h, 2);
        ASSERT_EQ(f16_from_double(x), bits) << x;
    }
}
#endif

// ---- round trips
// -------------------------------------------------------------------------------------------

template <class T>
class SafetensorsRoundTrip : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
struct TypeNames {
    template <class T>
    static std::string GetName(int) {
        return std::is_same_v<T, float> ? "float" : "double";
    }
};
TYPED_TEST_SUITE(SafetensorsRoundTrip, FloatTypes, TypeNames);

// What a value becomes after being stored as `dtype` and read back as T.
template <class T>
T StoredAs(T x, DType dtype) {
    switch (dtype) {
        case DType::F16:
            return static_cast<T>(f16_to_float(f16_from_double(x)));
        case DType::BF16:
            return static_cast<T>(bf16_to_float(bf16_from_double(x)));
        case DType::F32:
            return static_cast<T>(f32_from_double(x));
        case DType::F64:
            return x;
    }
    return x;
}

// Values spread over magnitudes from 1e-10 to 1e6, so that F16 sees subnormals, underflow and overflow.
template <class T>
Tensor<T> Spread(const Shape& shape, std::uint64_t seed) {
    Tensor<T> t = Tensor<T>::randn(shape, seed);
    for (Index i = 0; i < t.size(); ++i)
        t.data()[i] *= static_cast<T>(std::pow(10.0, static_cast<double>(i % 17) - 10));
    return t;
}

std::vector<std::uint8_t> ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TYPED_TEST(SafetensorsRoundTrip, EveryDTypeIncludingRankZeroAndEmptyTensors) {
    using T = TypeParam;
    const Tensor<T> scalar({}, std::vector<T>{T(-2.75)});
    const Tensor<T> empty({0, 3});
    const Tensor<T> empty_inner({2, 0, 4});
    const Tensor<T> exact = test::Iota<T>({3, 4}, T(-5));  // small integers: exact in every dtype
    const Tensor<T> spread = Spread<T>({17, 33}, 3);
    Tensor<T> special(
        {6}, std::vector<T>{std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(), T(-0.0),
                            std::numeric_limits<T>::quiet_NaN(), T(1e-3), T(-1e5)});
    const std::map<std::string, const Tensor<T>*> tensors = {
        {"scalar", &scalar},        {"empty", &empty},   {"blocks.0.empty_inner", &empty_inner},
        {"blocks.0.exact", &exact}, {"spread", &spread}, {"special", &special}};
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"epoch", "12"}};

    for (DType dtype : kAllDTypes) {
        SCOPED_TRACE(dtype_name(dtype));
        const Safetensors file = Safetensors::parse(serialize_safetensors(tensors, metadata, dtype));
        EXPECT_EQ(file.metadata(), metadata);
        EXPECT_THAT(file.names(), ElementsAre("blocks.0.empty_inner", "blocks.0.exact", "empty", "scalar",
                                              "special", "spread"));
        EXPECT_EQ(file.size(), 6u);
        std::uint64_t offset = 0;  // sorted-name order, contiguous
        for (const std::string& name : file.names()) {
            const TensorInfo& info = file.info(name);
            EXPECT_EQ(info.dtype, dtype);
            EXPECT_EQ(info.shape, tensors.at(name)->shape());
            EXPECT_EQ(info.begin, offset) << name;
            offset = info.end;
        }
        EXPECT_EQ(file.get<T>("scalar").rank(), 0);
        EXPECT_EQ(file.get<T>("scalar")(), T(-2.75));
        EXPECT_EQ(file.get<T>("empty").shape(), Shape({0, 3}));
        EXPECT_EQ(file.get<T>("blocks.0.empty_inner").shape(), Shape({2, 0, 4}));
        EXPECT_TENSOR_EQ(file.get<T>("blocks.0.exact"), exact);
        for (const char* name : {"spread", "special"}) {
            const Tensor<T> back = file.get<T>(name);
            ASSERT_EQ(back.shape(), tensors.at(name)->shape());
            for (Index i = 0; i < back.size(); ++i)
                ASSERT_TRUE(SameFloat(back.data()[i], StoredAs(tensors.at(name)->data()[i], dtype)))
                    << name << "[" << i << "]";
        }
        // Reading as the other precision converts the same stored values.
        using Other = std::conditional_t<std::is_same_v<T, float>, double, float>;
        const Tensor<Other> other = file.get<Other>("spread");
        for (Index i = 0; i < other.size(); ++i) {
            const double stored = StoredAs(static_cast<double>(spread.data()[i]), dtype);
            const Other expected =
                std::is_same_v<Other, float> ? f32_from_double(stored) : static_cast<Other>(stored);
            ASSERT_TRUE(SameFloat(other.data()[i], expected)) << i;
        }
    }
}

TYPED_TEST(SafetensorsRoundTrip, WriteAndReadAFileInChunks) {
    using T = TypeParam;
    const Tensor<T> big = Spread<T>({70001}, 5);  // more than one write chunk of 65536 elements
    const Tensor<T> small = test::Iota<T>({2, 3});
    const std::map<std::string, const Tensor<T>*> tensors = {{"big", &big}, {"small", &small}};
    for (DType dtype : kAllDTypes) {
        SCOPED_TRACE(dtype_name(dtype));
        // One file per element type and dtype: ctest -j runs the float and double instances at the same time.
        const std::string path = ::testing::TempDir() + "vit3d_test_safetensors_" +
                                 (std::is_same_v<T, float> ? "float_" : "double_") + dtype_name(dtype) +
                                 ".safetensors";
        write_safetensors(path, tensors, {{"k", "v"}}, dtype);
        EXPECT_EQ(ReadBytes(path), serialize_safetensors(tensors, {{"k", "v"}}, dtype));
        const Safetensors file = Safetensors::read(path);
        EXPECT_EQ(file.source_name(), path);
        EXPECT_EQ(file.metadata().at("k"), "v");
        EXPECT_TENSOR_EQ(file.get<T>("small", {2, 3}), small);
        const Tensor<T> back = file.get<T>("big");
        for (Index i = 0; i < back.size(); ++i)
            ASSERT_TRUE(SameFloat(back.data()[i], StoredAs(big.data()[i], dtype))) << i;
        std::remove(path.c_str());
    }
}

// open() reads only the header at first; every tensor then comes from the mapping or from reads at an
// offset (through a buffer smaller than the big tensor here), and must equal what read() gives, in every
// dtype, also after release() dropped its pages and into a caller's buffer with get_into().
TYPED_TEST(SafetensorsRoundTrip, OpenedFilesMappedOrStreamedGiveWhatReadGives) {
    using T = TypeParam;
    const Index big_count = Index(vit3d::detail::stream_chunk_bytes / 2) + 12345;  // > one read chunk of F16
    const Tensor<T> big = Spread<T>({big_count}, 9);
    const Tensor<T> small = test::Iota<T>({2, 3});
    const Tensor<T> scalar({}, std::vector<T>{T(4.25)});
    const Tensor<T> empty({0, 5});
    const std::map<std::string, const Tensor<T>*> tensors = {
        {"big", &big}, {"small", &small}, {"scalar", &scalar}, {"empty", &empty}};
    for (DType dtype : kAllDTypes) {
        SCOPED_TRACE(dtype_name(dtype));
        const std::string path = ::testing::TempDir() + "vit3d_test_safetensors_open_" +
                                 (std::is_same_v<T, float> ? "float_" : "double_") + dtype_name(dtype) +
                                 ".safetensors";
        write_safetensors(path, tensors, {{"k", "v"}}, dtype);
        const Safetensors whole = Safetensors::read(path);
        EXPECT_STREQ(whole.access_name(), "memory");
        for (FileAccess access : {FileAccess::map, FileAccess::stream}) {
            const Safetensors file = Safetensors::open(path, access);
            EXPECT_STREQ(file.access_name(), access == FileAccess::map ? "mmap" : "read");
            EXPECT_EQ(file.source_name(), path);
            EXPECT_EQ(file.file_size(), ReadBytes(path).size());
            EXPECT_EQ(file.metadata(), whole.metadata());
            EXPECT_EQ(file.names(), whole.names());
            for (const std::string& name : file.names()) {
                EXPECT_TENSOR_EQ(file.get<T>(name), whole.get<T>(name));
                Tensor<T> into = Tensor<T>::full(file.info(name).shape, T(7));
                file.get_into(name, into);
                EXPECT_TENSOR_EQ(into, whole.get<T>(name));
                file.release(name);  // pages dropped: the data is read again on the next access
                EXPECT_TENSOR_EQ(file.get<T>(name), whole.get<T>(name));
            }
            const Tensor<T> back = file.get<T>("big");
            for (Index i = 0; i < back.size(); ++i)
                ASSERT_TRUE(SameFloat(back.data()[i], StoredAs(big.data()[i], dtype))) << i;
        }
        std::remove(path.c_str());
    }
}

TEST(SafetensorsOpen, GetIntoChecksTheElementCountAndTheShape) {
    const Tensor<float> a = test::Iota<float>({2, 3});
    const Safetensors file = Safetensors::parse(serialize_safetensors<float>({{"a", &a}}), "f.safetensors");
    std::vector<float> buffer(6, -1.f);
    file.get_into("a", buffer.data(), 6);
    EXPECT_THAT(buffer, ElementsAre(0, 1, 2, 3, 4, 5));
    EXPECT_THAT([&] { file.get_into("a", buffer.data(), 5); },
                ThrowsMessage<io_error>(::testing::Eq(
                    "vit3d::io::Safetensors(\"f.safetensors\"): tensor \"a\" of shape [2, 3] has 6 elements, "
                    "expected 5")));
    EXPECT_THAT([&] { file.get_into("a", static_cast<float*>(nullptr), 6); },
                ThrowsMessage<io_error>(HasSubstr("got a null pointer")));
    Tensor<float> wrong({3, 2});
    EXPECT_THAT([&] { file.get_into("a", wrong); },
                ThrowsMessage<io_error>(HasSubstr("tensor \"a\" has shape [2, 3], expected [3, 2]")));
    EXPECT_THAT([&] { file.get_into("b", wrong); },
                ThrowsMessage<io_error>(HasSubstr("no tensor named \"b\"")));
    EXPECT_THAT([&] { file.release("b"); }, ThrowsMessage<io_error>(HasSubstr("no tensor named \"b\"")));
}

TEST(SafetensorsOpen, ValidatesTheHeaderAsParseDoesAndNamesTheFile) {
    const std::string missing = ::testing::TempDir() + "vit3d_open_no_such_file.safetensors";
    for (FileAccess access : {FileAccess::map, FileAccess::stream}) {
        EXPECT_THAT([&] { Safetensors::open(missing, access); },
                    ThrowsMessage<io_error>(AllOf(
                        StartsWith("vit3d::io::Safetensors(\"" + missing + "\"): cannot read the file: "),
                        HasSubstr("No such file"))));
        EXPECT_THAT([&] { Safetensors::open(::testing::TempDir(), access); },
                    ThrowsMessage<io_error>(HasSubstr("cannot read the file: ")));
    }
    const std::string path = ::testing::TempDir() + "vit3d_open_invalid.safetensors";
    for (const std::string& content :
         {std::string(""), std::string("abc"), std::string("\x02\0\0\0\0\0\0\0[]")}) {
        std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
        std::string expected;
        try {
            Safetensors::parse(std::vector<std::uint8_t>(content.begin(), content.end()), path);
        } catch (const io_error& e) {
            expected = e.what();
        }
        ASSERT_FALSE(expected.empty());
        for (FileAccess access : {FileAccess::map, FileAccess::stream})
            EXPECT_THAT([&] { Safetensors::open(path, access); },
                        ThrowsMessage<io_error>(::testing::Eq(expected)));
    }
    std::remove(path.c_str());
}

TEST(SafetensorsOpen, AStreamedFileTruncatedAfterOpeningFailsNamingTheTensor) {
    const Tensor<float> a = test::Iota<float>({1000});
    const std::string path = ::testing::TempDir() + "vit3d_open_truncated.safetensors";
    write_safetensors<float>(path, {{"a", &a}});
    const Safetensors file = Safetensors::open(path, FileAccess::stream);
    std::vector<std::uint8_t> bytes = ReadBytes(path);
    bytes.resize(bytes.size() - 100);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    EXPECT_THAT(
        [&] { file.get<float>("a"); },
        ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::Safetensors(\"" + path + "\"): tensor \"a\": "),
                                      HasSubstr("was the file truncated after it was opened?"))));
    std::remove(path.c_str());
}

TEST(SafetensorsWrite, HeaderIsPaddedToEightBytesWithSpaces) {
    const Tensor<float> a({3}, std::vector<float>{1, 2, 3});
    for (std::size_t name_length = 1; name_length <= 8; ++name_length) {
        const std::string name(name_length, 'x');
        const std::vector<std::uint8_t> bytes = serialize_safetensors<float>({{name, &a}});
        const std::uint64_t n = detail::load_le(bytes.data(), 8);
        EXPECT_EQ(n % 8, 0u);
        const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
        const std::string json =
            "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
        EXPECT_EQ(header, json + std::string(n - json.size(), ' '));
        EXPECT_LT(n - json.size(), 8u);
        EXPECT_EQ(bytes.size(), 8 + n + 12);
    }
}

TEST(SafetensorsWrite, MetadataWithEscapesAndUnicodeRoundTrips) {
    const std::map<std::string, std::string> metadata = {
        {"note", "quote \" backslash \\ newline \n tab \t nul-free"},
        {"größe", "Ölß ✓"},
        {"", "empty key"},
        {"empty", ""}};
    const Safetensors file = Safetensors::parse(serialize_safetensors<double>({}, metadata));
    EXPECT_EQ(file.metadata(), metadata);
    EXPECT_EQ(file.size(), 0u);
}

TEST(SafetensorsWrite, NoTensorsNoMetadata) {
    const std::vector<std::uint8_t> bytes = serialize_safetensors<float>({});
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    const Safetensors file = Safetensors::parse(bytes);
    EXPECT_TRUE(file.names().empty());
    EXPECT_TRUE(file.metadata().empty());
}

TEST(SafetensorsWrite, Errors) {
    const Tensor<float> a({2});
    EXPECT_THAT(
        [&] {
            serialize_safetensors<float>({{"a", nullptr}});
        },
        ThrowsMessage<io_error>(StartsWith(
            "vit3d::io::serialize_safetensors: tensor \"a\": expected a tensor, got a null pointer")));
    EXPECT_THAT(
        [&] {
            serialize_safetensors<float>({{"__metadata__", &a}});
        },
        ThrowsMessage<io_error>(HasSubstr("expected tensor names other than \"__metadata__\"")));
    EXPECT_THAT(
        [&] {
            serialize_safetensors<float>({{"bad\xff", &a}});
        },
        ThrowsMessage<io_error>(HasSubstr("tensor name \"bad\xEF\xBF\xBD\" is not valid UTF-8")));
    EXPECT_THAT(
        [&] {
            serialize_safetensors<float>({}, {{"k", "\xc3"}});
        },
        ThrowsMessage<io_error>(HasSubstr("metadata value for \"k\", \"\xEF\xBF\xBD\" is not valid UTF-8")));
    EXPECT_THAT(
        [&] {
            serialize_safetensors<float>({{"a", &a}}, {}, static_cast<DType>(9));
        },
        ThrowsMessage<io_error>(HasSubstr("expected dtype F16, BF16, F32 or F64, got DType(9)")));
    const std::string path = ::testing::TempDir() + "no_such_directory/x.safetensors";
    EXPECT_THAT(
        [&] {
            write_safetensors<float>(path, {{"a", &a}});
        },
        ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::write_safetensors(\"" + path + "\"): "),
                                      HasSubstr("cannot create the temporary file"),
                                      HasSubstr("No such file or directory"))));
}

// The file appears whole or not at all: written under a temporary name and renamed onto the destination.
TEST(SafetensorsWrite, ReplacesAnExistingFileWholeAndLeavesNoTemporary) {
    const std::string path = test::TempPath("replaced.safetensors");
    test::WriteBytes(path, test::Bytes("an older, longer file that is not safetensors at all"));
    const Tensor<float> a = test::Iota<float>({3, 5});
    write_safetensors<float>(path, {{"a", &a}});
    const Tensor<float> back = Safetensors::open(path).get<float>("a");
    EXPECT_EQ(back.shape(), a.shape());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), back.begin()));
    EXPECT_TRUE(test::TemporaryFilesFor(path).empty());
}

#ifdef __linux__
// A write that fails half-way (here: the file-size limit, as a full disk would) leaves the old file as it
// was, removes the temporary file and says so.
TEST(SafetensorsWrite, AFailedWriteLeavesTheOldFileAndNoTemporary) {
    const std::string path = test::TempPath("kept.safetensors");
    const std::vector<std::uint8_t> old = test::Bytes("old contents");
    test::WriteBytes(path, old);
    const Tensor<float> big = test::Iota<float>({1 << 16});  // 256 KiB of data
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);  // fwrite then fails with EFBIG
    rlimit limited = saved;
    limited.rlim_cur = 64 * 1024;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
    std::string message;
    try {
        write_safetensors<float>(path, {{"big", &big}});
    } catch (const io_error& e) {
        message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous_handler);
    EXPECT_THAT(message, AllOf(StartsWith("vit3d::io::write_safetensors(\"" + path + "\"): "),
                               HasSubstr("failed"), HasSubstr("\"" + path + "\" was left unchanged")));
    EXPECT_EQ(test::ReadBytes(path), old);
    EXPECT_TRUE(test::TemporaryFilesFor(path).empty());
}
#endif

// ---- validation
// --------------------------------------------------------------------------------------------

const std::string kPrefix = "vit3d::io::Safetensors(\"crafted\"): ";

// A file: the 8-byte length (of the header unless given), the header, then data_bytes bytes.
std::vector<std::uint8_t> File(const std::string& header, std::size_t data_bytes = 0) {
    std::vector<std::uint8_t> bytes(8 + header.size() + data_bytes, 0);
    detail::store_le(bytes.data(), header.size(), 8);
    std::memcpy(bytes.data() + 8, header.data(), header.size());
    return bytes;
}
std::vector<std::uint8_t> WithLength(std::vector<std::uint8_t> bytes, std::uint64_t length) {
    detail::store_le(bytes.data(), length, 8);
    return bytes;
}

// The io_error message parsing these bytes gives; any other exception fails the test.
std::string ParseError(const std::vector<std::uint8_t>& bytes) {
    try {
        Safetensors::parse(bytes, "crafted");
    } catch (const io_error& e) {
        return e.what();
    }
    return "(parsed without error)";
}
std::string ParseError(const std::string& header, std::size_t data_bytes = 0) {
    return ParseError(File(header, data_bytes));
}

// {"dtype":..,"shape":..,"data_offsets":..} from JSON snippets.
std::string Entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return "{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

TEST(SafetensorsValidation, FileAndHeaderLength) {
    EXPECT_EQ(ParseError(std::vector<std::uint8_t>{}),
              kPrefix + "expected at least 8 bytes (the header length), got a file of 0 bytes");
    EXPECT_EQ(ParseError(std::vector<std::uint8_t>{1, 2, 3}),
              kPrefix + "expected at least 8 bytes (the header length), got a file of 3 bytes");
    EXPECT_EQ(ParseError(WithLength(File("{}"), 0)),
              kPrefix + "header length is 0, expected a JSON object of at least 2 bytes");
    EXPECT_EQ(
        ParseError(WithLength(File("{}", 8), 100)),
        kPrefix +
            "header length is 100 bytes, but only 10 bytes follow the 8-byte length in the file of 18 bytes");
    EXPECT_EQ(ParseError(WithLength(File("{}"), 100'000'001)),
              kPrefix +
                  "header length is 100000001 bytes, expected at most 100000000 (the reference "
                  "implementation's limit)");
    EXPECT_THAT(ParseError(WithLength(File("{}"), std::numeric_limits<std::uint64_t>::max())),
                HasSubstr("header length is 18446744073709551615 bytes, expected at most 100000000"));
    // A length of exactly the limit is only refused because the file is shorter.
    EXPECT_THAT(ParseError(WithLength(File("{}"), 100'000'000)), HasSubstr("but only 2 bytes follow"));
}

TEST(SafetensorsValidation, MalformedJson) {
    EXPECT_THAT(ParseError("{\"a\": "),
                AllOf(StartsWith(kPrefix + "malformed JSON header: [json.exception.parse_error.101]"),
                      HasSubstr("unexpected end of input")));
    EXPECT_THAT(ParseError("{}x"), StartsWith(kPrefix + "malformed JSON header: "));
    // nlohmann would stop at a NUL as at the end of the input, and accept this.
    EXPECT_EQ(ParseError(std::string("{}\0\0", 4)),
              kPrefix + "malformed JSON header: NUL byte at header offset 2");
    EXPECT_EQ(ParseError(std::string("{\"a\0\":5}", 8)),
              kPrefix + "malformed JSON header: NUL byte at header offset 3");
    EXPECT_THAT(ParseError("{\"\xff\":{}}"),
                AllOf(StartsWith(kPrefix + "malformed JSON header: "), HasSubstr("UTF-8")));
    EXPECT_THAT(ParseError("{\"a\":1e999}"), StartsWith(kPrefix + "malformed JSON header: "));
    EXPECT_THAT(ParseError("{\"a\":{\"dtype\":\"F32\"},\"a\":{}}"),
                StartsWith(kPrefix + "malformed JSON header: duplicate key \"a\""));
    EXPECT_THAT(ParseError("{\"a\":" + Entry("\"F32\"", "[]", "[0,4]").insert(1, "\"shape\":[1],") + "}", 4),
                StartsWith(kPrefix + "malformed JSON header: duplicate key \"shape\""));
    // Padding with spaces is fine (the reference pads so), but not whitespace before the object.
    EXPECT_EQ(ParseError("{}    \n"), "(parsed without error)");
    EXPECT_EQ(ParseError(" {}"),
              kPrefix + "expected the JSON header to start with '{', got whitespace before it");
}

TEST(SafetensorsValidation, HeaderNotAnObject) {
    EXPECT_EQ(ParseError("[1,2]"), kPrefix + "expected the JSON header to be an object, got array [1,2]");
    EXPECT_EQ(ParseError("\"text\""),
              kPrefix + "expected the JSON header to be an object, got string \"text\"");
    EXPECT_EQ(ParseError("42"), kPrefix + "expected the JSON header to be an object, got 42");
    EXPECT_EQ(ParseError("null"), kPrefix + "expected the JSON header to be an object, got null");
}

TEST(SafetensorsValidation, EntryStructure) {
    const std::string fields = "\"dtype\", \"shape\" and \"data_offsets\"";
    EXPECT_EQ(ParseError("{\"w\":5}"),
              kPrefix + "tensor \"w\": expected an object with " + fields + ", got 5");
    EXPECT_EQ(ParseError("{\"w\":[0,4]}"),
              kPrefix + "tensor \"w\": expected an object with " + fields + ", got array [0,4]");
    EXPECT_EQ(ParseError("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
              kPrefix + "tensor \"w\": missing field \"dtype\", expected an object with " + fields);
    EXPECT_EQ(ParseError("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
              kPrefix + "tensor \"w\": missing field \"shape\", expected an object with " + fields);
    EXPECT_EQ(ParseError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
              kPrefix + "tensor \"w\": missing field \"data_offsets\", expected an object with " + fields);
    EXPECT_EQ(ParseError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offset\":0}}", 4),
              kPrefix + "tensor \"w\": unknown field \"offset\", expected only " + fields);
    // Names are quoted as JSON strings, so odd characters stay visible.
    EXPECT_EQ(ParseError("{\"a\\\"b\\n\":5}"),
              kPrefix + "tensor \"a\\\"b\\n\": expected an object with " + fields + ", got 5");
}

TEST(SafetensorsValidation, DType) {
    EXPECT_EQ(ParseError("{\"w\":" + Entry("32", "[1]", "[0,4]") + "}", 4),
              kPrefix + "tensor \"w\": dtype: expected a string such as \"F32\", got 32");
    EXPECT_EQ(ParseError("{\"w\":" + Entry("\"F17\"", "[1]", "[0,4]") + "}", 4),
              kPrefix + "tensor \"w\": expected dtype F16, BF16, F32 or F64, got unknown dtype \"F17\"");
    EXPECT_EQ(ParseError("{\"w\":" + Entry("\"f32\"", "[1]", "[0,4]") + "}", 4),
              kPrefix + "tensor \"w\": expected dtype F16, BF16, F32 or F64, got unknown dtype \"f32\"");
    // Sub-byte dtypes cannot even be sized by vit3d: the file is refused.
    EXPECT_EQ(ParseError("{\"idx\":" + Entry("\"F4\"", "[2]", "[0,1]") + "}", 1),
              kPrefix +
                  "tensor \"idx\": dtype F4 is a valid safetensors dtype, but not supported by vit3d: "
                  "expected F16, BF16, F32 or F64");
}

// A checkpoint may hold integer buffers (transformers' position_ids): the file opens and lists them, their
// byte ranges are checked with their element size, and reading one is an error naming it.
TEST(SafetensorsValidation, OtherDtypesAreListedButNotRead) {
    for (const auto& [dtype, bytes] : {std::pair{"I64", 8}, std::pair{"BOOL", 1}, std::pair{"U8", 1},
                                       std::pair{"I32", 4}, std::pair{"F8_E4M3", 1}}) {
        const std::string entry =
            Entry(std::string("\"") + dtype + "\"", "[2]", vit3d::message("[0,", 2 * bytes, "]"));
        const Safetensors file = Safetensors::parse(File("{\"idx\":" + entry + "}", 2 * bytes), "crafted");
        EXPECT_EQ(file.names(), std::vector<std::string>{"idx"});
        EXPECT_EQ(file.shape("idx"), (vit3d::Shape{2}));
        EXPECT_EQ(file.info("idx").other_dtype, dtype);
        EXPECT_THAT(
            [&] { (void)file.get<float>("idx"); },
            ThrowsMessage<io_error>(HasSubstr(std::string("tensor \"idx\": dtype ") + dtype +
                                              " is a valid safetensors dtype, but vit3d reads only F16, "
                                              "BF16, F32 or F64 tensors")));
        double into[2];
        EXPECT_THROW(file.get_into("idx", into, 2), io_error);
        // Its size is checked with its own element size.
        EXPECT_THAT(ParseError("{\"idx\":" +
                                   Entry(std::string("\"") + dtype + "\"", "[3]",
                                         vit3d::message("[0,", 2 * bytes, "]")) +
                                   "}",
                               2 * bytes),
                    HasSubstr(vit3d::message("dtype ", dtype, " and shape [3] need ", 3 * bytes, " bytes")));
    }
}

TEST(SafetensorsValidation, Shape) {
    const auto error = [](const std::string& shape) {
        return ParseError("{\"w\":" + Entry("\"F32\"", shape, "[0,4]") + "}", 4);
    };
    EXPECT_EQ(error("4"), kPrefix + "tensor \"w\": shape: expected an array of non-negative integers, got 4");
    EXPECT_EQ(
        error("[1,-1]"),
        kPrefix +
            "tensor \"w\": shape: expected non-negative integers, got -1 at position 1 of array [1,-1]");
    EXPECT_EQ(
        error("[1.0]"),
        kPrefix +
            "tensor \"w\": shape: expected non-negative integers, got 1.0 at position 0 of array [1.0]");
    EXPECT_EQ(error("[\"1\"]"), kPrefix +
                                    "tensor \"w\": shape: expected non-negative integers, got string \"1\" "
                                    "at position 0 of array [\"1\"]");
    EXPECT_THAT(error("[1e30]"), HasSubstr("shape: expected non-negative integers, got 1e+30 at position 0"));
    EXPECT_EQ(error("[9223372036854775808]"),
              kPrefix + "tensor \"w\": shape [9223372036854775808] has more elements than vit3d can index");
    EXPECT_EQ(error("[4294967296,4294967296]"),
              kPrefix + "tensor \"w\": shape [4294967296,4294967296] has more elements than vit3d can index");
    // Counted left to right like shape_numel: an overflow before a zero is still an overflow.
    EXPECT_THAT(error("[4294967296,4294967296,0]"), HasSubstr("has more elements than vit3d can index"));
    // ... but a zero first stays zero, as in shape_numel and the reference.
    EXPECT_EQ(ParseError("{\"w\":" + Entry("\"F32\"", "[0,4294967296,4294967296]", "[0,0]") + "}"),
              "(parsed without error)");
}

TEST(SafetensorsValidation, DataOffsets) {
    const auto error = [](const std::string& offsets, std::size_t data = 8) {
        return ParseError("{\"w\":" + Entry("\"F32\"", "[2]", offsets) + "}", data);
    };
    const std::string expected = kPrefix +
                                 "tensor \"w\": data_offsets: expected [begin, end], non-negative integers "
                                 "with begin <= end, got ";
    EXPECT_EQ(error("8"), expected + "8");
    EXPECT_EQ(error("[0]"), expected + "array [0]");
    EXPECT_EQ(error("[0,8,8]"), expected + "array [0,8,8]");
    EXPECT_EQ(error("[-8,0]"), expected + "array [-8,0]");
    EXPECT_EQ(error("[0,8.0]"), expected + "array [0,8.0]");
    EXPECT_EQ(error("[8,0]"), expected + "array [8,0]");
    EXPECT_EQ(error("[0,18446744073709551616]"), expected + "array [0,1.8446744073709552e+19]");
    EXPECT_EQ(
        error("[0,12]", 12),
        kPrefix + "tensor \"w\": dtype F32 and shape [2] need 8 bytes, got data_offsets [0, 12] (12 bytes)");
    EXPECT_EQ(
        error("[0,8]", 4),
        kPrefix +
            "tensor \"w\": data_offsets [0, 8] extend beyond the data section: expected end <= 4, got 8 "
            "(truncated file?)");
    EXPECT_EQ(error("[18446744073709551608,18446744073709551615]"),
              kPrefix +
                  "tensor \"w\": dtype F32 and shape [2] need 8 bytes, got data_offsets "
                  "[18446744073709551608, 18446744073709551615] (7 bytes)");
    EXPECT_EQ(
        error("[18446744073709551607,18446744073709551615]"),
        kPrefix +
            "tensor \"w\": data_offsets [18446744073709551607, 18446744073709551615] extend beyond the data "
            "section: expected end <= 8, got 18446744073709551615 (truncated file?)");
    // Byte counts that overflow 64 bits are reported, not wrapped around.
    EXPECT_EQ(ParseError("{\"w\":" + Entry("\"F64\"", "[4611686018427387904]", "[0,0]") + "}"),
              kPrefix +
                  "tensor \"w\": dtype F64 and shape [4611686018427387904] need more than 2^64 bytes, got "
                  "data_offsets [0, 0] (0 bytes)");
}

TEST(SafetensorsValidation, TensorsMustTileTheDataSection) {
    const std::string a = "\"a\":" + Entry("\"F32\"", "[2]", "[0,8]");
    EXPECT_EQ(ParseError("{" + a + ",\"b\":" + Entry("\"F32\"", "[2]", "[4,12]") + "}", 12),
              kPrefix + "tensor \"b\": data_offsets [4, 12] overlap tensor \"a\" at [0, 8]");
    EXPECT_EQ(ParseError("{" + a + ",\"b\":" + Entry("\"F32\"", "[2]", "[0,8]") + "}", 8),
              kPrefix + "tensor \"b\": data_offsets [0, 8] overlap tensor \"a\" at [0, 8]");
    EXPECT_EQ(ParseError("{" + a + ",\"b\":" + Entry("\"F32\"", "[2]", "[12,20]") + "}", 20),
              kPrefix +
                  "tensor \"b\": data_offsets [12, 20] leave bytes [8, 12) of the data section to no tensor "
                  "(the previous tensor, \"a\", ends at 8); expected the tensors to tile the data section");
    EXPECT_EQ(ParseError("{\"b\":" + Entry("\"F32\"", "[2]", "[4,12]") + "}", 12),
              kPrefix +
                  "tensor \"b\": data_offsets [4, 12] leave bytes [0, 4) of the data section to no tensor "
                  "(it is the first tensor); expected the tensors to tile the data section");
    EXPECT_EQ(ParseError("{" + a + "}", 9),
              kPrefix +
                  "the data section has 9 bytes, but the tensors end at byte 8 (last: \"a\"); expected the "
                  "tensors to tile the data section (truncated or trailing data?)");
    EXPECT_EQ(
        ParseError("{}", 3),
        kPrefix +
            "the data section has 3 bytes, but the header lists no tensors; expected the tensors to tile "
            "the data section (truncated or trailing data?)");
    EXPECT_EQ(
        ParseError("{\"__metadata__\":{}}", 3),
        kPrefix +
            "the data section has 3 bytes, but the header lists no tensors; expected the tensors to tile "
            "the data section (truncated or trailing data?)");
    // An empty tensor inside another one overlaps it.
    EXPECT_THAT(ParseError("{" + a + ",\"e\":" + Entry("\"F32\"", "[0]", "[4,4]") + "}", 8),
                StartsWith(kPrefix + "tensor \"e\": data_offsets [4, 4] overlap tensor \"a\" at [0, 8]"));
    // Empty tensors at the start, between and at the end are fine, and so is any order in the header.
    const std::string ok =
        "{\"z\":" + Entry("\"F32\"", "[0]", "[0,0]") + ",\"b\":" + Entry("\"F16\"", "[2,2]", "[8,16]") + "," +
        a + ",\"m\":" + Entry("\"F64\"", "[0,5]", "[8,8]") + ",\"y\":" + Entry("\"BF16\"", "[]", "[16,18]") +
        ",\"e\":" + Entry("\"F32\"", "[3,0]", "[18,18]") + "}";
    EXPECT_EQ(ParseError(ok, 18), "(parsed without error)");
    const Safetensors file = Safetensors::parse(File(ok, 18));
    EXPECT_THAT(file.names(), ElementsAre("a", "b", "e", "m", "y", "z"));
    EXPECT_EQ(file.info("b").dtype, DType::F16);
    EXPECT_EQ(file.info("b").begin, 8u);
    EXPECT_EQ(file.info("b").end, 16u);
    EXPECT_EQ(file.get<double>("m").shape(), Shape({0, 5}));
    EXPECT_EQ(file.get<float>("y").rank(), 0);
}

TEST(SafetensorsValidation, Metadata) {
    EXPECT_EQ(ParseError("{\"__metadata__\":[\"a\"]}"),
              kPrefix + "\"__metadata__\": expected an object mapping strings to strings, got array [\"a\"]");
    EXPECT_EQ(ParseError("{\"__metadata__\":{\"epoch\":12}}"),
              kPrefix + "\"__metadata__\": expected a string for key \"epoch\", got 12");
    EXPECT_EQ(ParseError("{\"__metadata__\":{\"a\":\"x\",\"b\":null}}"),
              kPrefix + "\"__metadata__\": expected a string for key \"b\", got null");
    // The metadata key holds no tensor, even one that looks like a tensor entry.
    EXPECT_EQ(ParseError("{\"__metadata__\":" + Entry("\"F32\"", "[1]", "[0,4]") + "}", 4),
              kPrefix + "\"__metadata__\": expected a string for key \"data_offsets\", got array [0,4]");
    const Safetensors file = Safetensors::parse(File("{\"__metadata__\":{\"format\":\"pt\"}}"), "crafted");
    EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    EXPECT_FALSE(file.contains("__metadata__"));
}

TEST(SafetensorsValidation, MissingTensorAndShapeMismatch) {
    const Tensor<float> w({2304, 768});
    const Tensor<float> b({2304});
    const Safetensors file = Safetensors::parse(
        serialize_safetensors<float>({{"blocks.0.attn.qkv.weight", &w}, {"blocks.0.attn.qkv.bias", &b}}, {},
                                     DType::BF16),
        "vit_b16.safetensors");
    EXPECT_THAT(
        [&] {
            file.get<float>("blocks.0.attn.qkv.weight", {2304, 1024});
        },
        ThrowsMessage<io_error>(::testing::Eq(
            "vit3d::io::Safetensors(\"vit_b16.safetensors\"): tensor \"blocks.0.attn.qkv.weight\" has shape "
            "[2304, 768], expected [2304, 1024]")));
    EXPECT_EQ(file.get<float>("blocks.0.attn.qkv.weight", {2304, 768}).shape(), Shape({2304, 768}));
    EXPECT_FALSE(file.contains("blocks.0.attn.proj.weight"));
    EXPECT_THAT(
        [&] { file.get<double>("blocks.0.attn.proj.weight"); },
        ThrowsMessage<io_error>(::testing::Eq(
            "vit3d::io::Safetensors(\"vit_b16.safetensors\"): no tensor named \"blocks.0.attn.proj.weight\"; "
            "the file holds 2 tensors: \"blocks.0.attn.qkv.bias\", \"blocks.0.attn.qkv.weight\"")));

    std::map<std::string, const Tensor<float>*> many;
    std::vector<std::string> names;
    for (int i = 0; i < 10; ++i) names.push_back("t" + std::to_string(i));
    for (const std::string& name : names) many[name] = &b;
    EXPECT_THAT(
        [&] { Safetensors::parse(serialize_safetensors(many)).info("x"); },
        ThrowsMessage<io_error>(HasSubstr("no tensor named \"x\"; the file holds 10 tensors: \"t0\", \"t1\", "
                                          "\"t2\", \"t3\", \"t4\", \"t5\", \"t6\", \"t7\", ... (2 more)")));
    EXPECT_THAT([&] { Safetensors::parse(serialize_safetensors<float>({})).info("x"); },
                ThrowsMessage<io_error>(HasSubstr("no tensor named \"x\"; the file holds no tensors")));
}

TEST(SafetensorsValidation, ReadErrors) {
    const std::string missing = ::testing::TempDir() + "vit3d_no_such_file.safetensors";
    EXPECT_THAT([&] { Safetensors::read(missing); },
                ThrowsMessage<io_error>(
                    AllOf(StartsWith("vit3d::io::Safetensors(\"" + missing + "\"): cannot read the file: "),
                          HasSubstr("No such file"))));
    EXPECT_THAT([&] { Safetensors::read(::testing::TempDir()); },
                ThrowsMessage<io_error>(HasSubstr("cannot read the file: ")));
    const std::string short_file = ::testing::TempDir() + "vit3d_short.safetensors";
    std::ofstream(short_file, std::ios::binary) << "abc";
    EXPECT_THAT(
        [&] { Safetensors::read(short_file); },
        ThrowsMessage<io_error>(::testing::Eq("vit3d::io::Safetensors(\"" + short_file +
                                              "\"): expected at least 8 bytes (the header length), got a "
                                              "file of 3 bytes")));
    std::remove(short_file.c_str());
}

// ---- files written by the Python safetensors package
// ---------------------------------------------------------

const std::string kFixtures = VIT3D_TEST_FIXTURE_DIR;

template <class T>
void ExpectValues(const Tensor<T>& actual, const Shape& shape, const std::vector<double>& expected) {
    ASSERT_EQ(actual.shape(), shape);
    ASSERT_EQ(actual.size(), static_cast<Index>(expected.size()));
    for (Index i = 0; i < actual.size(); ++i)
        EXPECT_TRUE(SameFloat(actual.data()[i], expected[static_cast<std::size_t>(i)])) << "element " << i;
}

TEST(SafetensorsPythonFixture, ReadsEveryDType) {
    const Safetensors file = Safetensors::read(kFixtures + "/safetensors_sample.safetensors");
    EXPECT_EQ(file.metadata(),
              (std::map<std::string, std::string>{{"format", "np"},
                                                  {"source", "tests/fixtures/make_safetensors_sample.py"}}));
    EXPECT_THAT(file.names(), ElementsAre("bf16.row", "empty", "f16.cube", "f32.matrix", "f64.vector",
                                          "rounding.f16", "rounding.source", "scalar"));
    const double inf = std::numeric_limits<double>::infinity(),
                 nan = std::numeric_limits<double>::quiet_NaN();

    EXPECT_EQ(file.info("f32.matrix").dtype, DType::F32);
    ExpectValues(file.get<float>("f32.matrix"), {2, 3}, {-1.5, 0.0, 0.1f, 1e-40f, 3.4028235e38f, -inf});
    ExpectValues(file.get<double>("f32.matrix"), {2, 3}, {-1.5, 0.0, 0.1f, 1e-40f, 3.4028235e38f, -inf});

    EXPECT_EQ(file.info("f64.vector").dtype, DType::F64);
    ExpectValues(file.get<double>("f64.vector"), {4}, {3.141592653589793, -2.718281828459045, 5e-324, 1e300});
    ExpectValues(file.get<float>("f64.vector"), {4}, {3.14159274f, -2.71828175f, 0.0, inf});

    EXPECT_EQ(file.info("f16.cube").dtype, DType::F16);
    const std::vector<double> cube = {1.0,  -2.5, 65504.0,        std::ldexp(1.0, -24),
                                      -0.0, inf,  0.333251953125, nan};
    ExpectValues(file.get<float>("f16.cube"), {2, 2, 2}, cube);
    ExpectValues(file.get<double>("f16.cube"), {2, 2, 2}, cube);

    EXPECT_EQ(file.info("bf16.row").dtype, DType::BF16);
    const std::vector<double> row = {1.0, -3.0, 0.15625, std::ldexp(1.0, -133), 3.3895313892515355e38};
    ExpectValues(file.get<float>("bf16.row"), {1, 5}, row);
    ExpectValues(file.get<double>("bf16.row"), {1, 5}, row);

    ExpectValues(file.get<double>("scalar", {}), {}, {42.0});
    ExpectValues(file.get<float>("empty", {0, 3}), {0, 3}, {});
}

// NumPy's float64 -> float16 rounding (checked against Python's struct module by the script) agrees with
// ours.
TEST(SafetensorsPythonFixture, HalfRoundingAgreesWithNumPy) {
    const Safetensors file = Safetensors::read(kFixtures + "/safetensors_sample.safetensors");
    const Tensor<double> source = file.get<double>("rounding.source");
    const Tensor<float> numpy = file.get<float>("rounding.f16");
    ASSERT_EQ(source.shape(), numpy.shape());
    ASSERT_GT(source.size(), 200);
    for (Index i = 0; i < source.size(); ++i)
        EXPECT_TRUE(SameFloat(f16_to_float(f16_from_double(source.data()[i])), numpy.data()[i]))
            << "source[" << i << "] = " << source.data()[i];
}

// Reading what safetensors wrote and writing it again gives the same bytes, in every dtype.
TEST(SafetensorsPythonFixture, WriterMatchesTheReferenceByteForByte) {
    for (const auto& [suffix, dtype] : std::vector<std::pair<std::string, DType>>{
             {"f32", DType::F32}, {"f64", DType::F64}, {"f16", DType::F16}, {"bf16", DType::BF16}}) {
        SCOPED_TRACE(suffix);
        const std::string path = kFixtures + "/safetensors_reference_" + suffix + ".safetensors";
        const Safetensors file = Safetensors::read(path);
        EXPECT_THAT(file.names(), ElementsAre("a.bias", "b.weight", "c"));
        ExpectValues(file.get<double>("b.weight"), {3, 2}, {0.5, -1.0, 2.0, 0.25, -0.125, 3.0});
        ExpectValues(file.get<float>("a.bias"), {2}, {1.0, -2.0});
        ExpectValues(file.get<float>("c"), {}, {-4.5});
        std::map<std::string, Tensor<double>> held;
        std::map<std::string, const Tensor<double>*> tensors;
        for (const std::string& name : file.names()) tensors[name] = &(held[name] = file.get<double>(name));
        EXPECT_EQ(serialize_safetensors(tensors, file.metadata(), dtype), ReadBytes(path));
    }
}

}  // namespace
}  // namespace vit3d::io
