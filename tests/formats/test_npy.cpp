// Tests for vit3d/formats/npy.hpp: files written by NumPy (tests/fixtures/make_npy_samples.py) are read with
// their values, vit3d's writer reproduces NumPy's bytes for the same arrays, and every malformed input is
// an io_error naming the file and what was expected and found.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/npy.hpp>

#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {

using test::Bytes;
using test::FixturePath;
using test::ReadBytes;
using test::TempPath;
using test::WriteBytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;

std::string Npy(const std::string& name) { return FixturePath("npy/" + name); }

// A version-1.0 file with this header text (exactly these bytes, '\n' included) and data.
std::vector<std::uint8_t> RawNpy(const std::string& header, const std::vector<std::uint8_t>& data = {},
                                 int major = 1) {
    std::vector<std::uint8_t> out = Bytes(std::string("\x93NUMPY", 6));
    out.push_back(static_cast<std::uint8_t>(major));
    out.push_back(0);
    const std::size_t n = header.size();
    for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// A file whose header is `dict` padded as NumPy pads it.
std::vector<std::uint8_t> PaddedNpy(const std::string& dict, const std::vector<std::uint8_t>& data = {}) {
    std::string header = dict;
    header.append(63 - (10 + dict.size()) % 64, ' ');
    return RawNpy(header + "\n", data);
}

std::vector<std::uint8_t> FloatBytes(std::initializer_list<float> values) {
    std::vector<std::uint8_t> out;
    for (float v : values) {
        std::uint8_t b[4];
        detail::store_number(b, v, false);
        out.insert(out.end(), b, b + 4);
    }
    return out;
}

// parse_npy<T> on the bytes, for matchers.
template <class T = float>
auto Parsing(std::vector<std::uint8_t> bytes) {
    return [bytes = std::move(bytes)] { (void)parse_npy<T>(bytes, "crafted.npy"); };
}

// ---- files written by NumPy
// --------------------------------------------------------------------------------

template <class T>
class NpyValues : public ::testing::Test {};
using WrittenTypes = ::testing::Types<float, double, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                                      std::int32_t, std::uint32_t, std::int64_t, std::uint64_t>;
TYPED_TEST_SUITE(NpyValues, WrittenTypes);

// The values make_npy_samples.py stores in <dtype>_values.npy: the extremes of the type and a few between.
template <class T>
std::vector<T> ExpectedExtremes() {
    using L = std::numeric_limits<T>;
    if constexpr (std::is_floating_point_v<T>)
        return {L::lowest(), T(-1), T(-0.0), T(0), L::min(), T(0.5), T(1), L::max()};
    else
        return {L::min(), T(L::min() + 1), T(0), T(1), T(2), T(3), T(L::max() - 1), L::max()};
}

TYPED_TEST(NpyValues, ReadsNumPysFileExactly) {
    using T = TypeParam;
    const std::string path = Npy(std::string(detail::element_type_name<T>()) + "_values.npy");
    const Tensor<T> t = read_npy<T>(path);
    ASSERT_EQ(t.shape(), (Shape{2, 4}));
    const std::vector<T> expected = ExpectedExtremes<T>();
    for (Index i = 0; i < 8; ++i) {
        EXPECT_EQ(t.data()[i], expected[static_cast<std::size_t>(i)]) << "element " << i;
        if constexpr (std::is_floating_point_v<T>) {
            EXPECT_EQ(std::signbit(t.data()[i]), std::signbit(expected[static_cast<std::size_t>(i)]));
        }
    }
    const NpyHeader header = read_npy_header(path);
    EXPECT_EQ(npy_dtype_name(header.dtype), std::string(detail::element_type_name<T>()));
    EXPECT_EQ(header.shape, (Shape{2, 4}));
    EXPECT_EQ(header.major_version, 1);
    EXPECT_EQ(header.data_offset % 64, 0u);
}

TYPED_TEST(NpyValues, WriterReproducesNumPysBytes) {
    using T = TypeParam;
    const std::string path = Npy(std::string(detail::element_type_name<T>()) + "_values.npy");
    const Tensor<T> t = read_npy<T>(path);
    EXPECT_EQ(serialize_npy(t), ReadBytes(path));
    const std::string out = TempPath("values.npy");
    write_npy(out, t);
    EXPECT_EQ(ReadBytes(out), ReadBytes(path));
    EXPECT_TRUE(test::TemporaryFilesFor(out).empty());
}

TYPED_TEST(NpyValues, RoundTripsRandomTensorsOfEveryRank) {
    using T = TypeParam;
    for (const Shape& shape : {Shape{}, Shape{0}, Shape{7}, Shape{3, 5}, Shape{2, 3, 4, 5}, Shape{1, 0, 2}}) {
        Tensor<T> t = Tensor<T>::empty(shape);
        Index k = 0;
        for (T& v : t) v = static_cast<T>((k++ * 37) % 101 - (std::is_signed_v<T> ? 50 : 0));
        const Tensor<T> back = parse_npy<T>(serialize_npy(t));
        EXPECT_TENSOR_EQ(back, t);
        EXPECT_EQ(back.shape(), shape);
    }
}

TEST(Npy, WriterReproducesNumPysBytesForShapesAndPadding) {
    // 0-d, empty, a 13-digit first axis (NumPy's 21-digit growth padding), a header NumPy pads by 64.
    for (const char* name : {"f8_random.npy", "f8_scalar.npy"})
        EXPECT_EQ(serialize_npy(read_npy<double>(Npy(name))), ReadBytes(Npy(name))) << name;
    for (const char* name : {"f4_special.npy", "f4_empty.npy", "f4_header_aligned.npy"})
        EXPECT_EQ(serialize_npy(read_npy<float>(Npy(name))), ReadBytes(Npy(name))) << name;
    EXPECT_EQ(serialize_npy(read_npy<std::uint8_t>(Npy("u1_empty_2x0x3.npy"))),
              ReadBytes(Npy("u1_empty_2x0x3.npy")));
    const Tensor<std::int16_t> long_axis = read_npy<std::int16_t>(Npy("i2_long_axis_empty.npy"));
    EXPECT_EQ(long_axis.shape(), (Shape{1234567890123, 0}));
    EXPECT_EQ(serialize_npy(long_axis), ReadBytes(Npy("i2_long_axis_empty.npy")));
}

TEST(Npy, ReadsSpecialFloatsBitForBit) {
    const Tensor<float> t = read_npy<float>(Npy("f4_special.npy"));
    ASSERT_EQ(t.shape(), (Shape{2, 3}));
    EXPECT_EQ(t(0, 0), -1.5f);
    EXPECT_EQ(t(0, 2), 0.1f);
    EXPECT_EQ(t(1, 0), 1e-40f);  // subnormal
    EXPECT_EQ(t(1, 1), std::numeric_limits<float>::max());
    EXPECT_EQ(t(1, 2), -std::numeric_limits<float>::infinity());
    const Tensor<double> d = read_npy<double>(Npy("f4_special.npy"));
    EXPECT_EQ(d(0, 2), static_cast<double>(0.1f));
}

TEST(Npy, ReadsRankZeroEmptyBoolHalfAndBigEndian) {
    const Tensor<double> scalar = read_npy<double>(Npy("f8_scalar.npy"));
    EXPECT_EQ(scalar.shape(), Shape{});
    EXPECT_EQ(scalar.data()[0], 3.25);
    EXPECT_EQ(read_npy<float>(Npy("f4_empty.npy")).shape(), Shape{0});
    EXPECT_EQ(read_npy<float>(Npy("u1_empty_2x0x3.npy")).shape(), (Shape{2, 0, 3}));

    EXPECT_TENSOR_EQ(read_npy<std::uint8_t>(Npy("b1_mask.npy")),
                     Tensor<std::uint8_t>({2, 3}, std::vector<std::uint8_t>{1, 0, 1, 0, 0, 1}));
    EXPECT_TENSOR_EQ(read_npy<float>(Npy("b1_mask.npy")), Tensor<float>({2, 3}, {1, 0, 1, 0, 0, 1}));

    const Tensor<float> half = read_npy<float>(Npy("f2_half.npy"));
    ASSERT_EQ(half.shape(), Shape{5});
    EXPECT_EQ(half(0), 1.0f);
    EXPECT_EQ(half(1), -2.5f);
    EXPECT_EQ(half(2), 65504.0f);
    EXPECT_EQ(half(3), std::ldexp(1.0f, -24));  // 6e-8 rounds to the smallest subnormal half
    EXPECT_EQ(half(4), std::numeric_limits<float>::infinity());

    EXPECT_TENSOR_EQ(read_npy<float>(Npy("be_f4.npy")), Tensor<float>({1, 3}, {1.0f, -2.0f, 0.1f}));
    EXPECT_TENSOR_EQ(read_npy<std::int16_t>(Npy("be_i2.npy")),
                     Tensor<std::int16_t>({5}, std::vector<std::int16_t>{1, -2, 300, -32768, 32767}));
    EXPECT_TRUE(read_npy_header(Npy("be_i2.npy")).big_endian);
}

TEST(Npy, ReadsFormatVersions2And3AndPython2Headers) {
    EXPECT_TENSOR_EQ(read_npy<float>(Npy("v2_f4.npy")), Tensor<float>({3, 2}, {0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(read_npy_header(Npy("v2_f4.npy")).major_version, 2);
    EXPECT_TENSOR_EQ(read_npy<float>(Npy("v3_f4.npy")), Tensor<float>({2, 3}, {0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(read_npy_header(Npy("v3_f4.npy")).major_version, 3);
    EXPECT_TENSOR_EQ(read_npy<float>(Npy("py2_long_suffix.npy")), Tensor<float>({2, 3}, {0, 1, 2, 3, 4, 5}));
}

TEST(Npy, WritesVersion2WhenTheHeaderNeedsIt) {
    // Rank 22000 of ones: the shape alone takes 66000 characters, more than a 1.0 header's 65535.
    const Tensor<std::uint8_t> t = Tensor<std::uint8_t>::full(Shape(22000, 1), 9);
    const std::vector<std::uint8_t> bytes = serialize_npy(t);
    EXPECT_EQ(bytes[6], 2);
    const NpyHeader header = parse_npy_header(bytes.data(), bytes.size());
    EXPECT_EQ(header.major_version, 2);
    EXPECT_EQ(header.data_offset % 64, 0u);
    EXPECT_EQ(header.shape.size(), 22000u);
    EXPECT_EQ(parse_npy<std::uint8_t>(bytes).data()[0], 9);
}

// ---- conversions
// -------------------------------------------------------------------------------------------

TEST(Npy, IntegerReadsAreExactOrRefused) {
    // Integral floats convert exactly; the int16 extremes fit int16 and int32 but not int8.
    const auto floats = PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                                  FloatBytes({-3.0f, 0.0f, 250.0f}));
    EXPECT_TENSOR_EQ(parse_npy<std::int16_t>(floats),
                     Tensor<std::int16_t>({3}, std::vector<std::int16_t>{-3, 0, 250}));
    EXPECT_THAT(
        Parsing<std::uint8_t>(floats),
        ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::parse_npy(\"crafted.npy\"): "),
                                      HasSubstr("element [0] is -3 (float32), which uint8 cannot hold "
                                                "exactly; expected integers in [0, 255]"))));
    const auto fraction =
        PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", FloatBytes({1.0f, 0.5f}));
    EXPECT_THAT(Parsing<std::int32_t>(fraction),
                ThrowsMessage<io_error>(
                    HasSubstr("element [0, 1] is 0.5 (float32), which int32 cannot hold exactly")));
    const auto nan =
        PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", FloatBytes({std::nanf("")}));
    EXPECT_THAT(Parsing<std::int64_t>(nan),
                ThrowsMessage<io_error>(HasSubstr("is nan (float32), which int64")));

    EXPECT_THAT(
        [] { read_npy<std::int8_t>(Npy("int16_values.npy")); },
        ThrowsMessage<io_error>(AllOf(HasSubstr("int16_values.npy"),
                                      HasSubstr("element [0, 0] is -32768 (int16), which int8 cannot hold "
                                                "exactly; expected integers in [-128, 127]"))));
    EXPECT_THAT(
        [] { read_npy<std::int64_t>(Npy("uint64_values.npy")); },
        ThrowsMessage<io_error>(HasSubstr("is 18446744073709551614 (uint64), which int64 cannot hold")));
    EXPECT_THAT([] { read_npy<std::uint32_t>(Npy("int8_values.npy")); },
                ThrowsMessage<io_error>(HasSubstr("element [0, 0] is -128 (int8), which uint32")));
    EXPECT_TENSOR_EQ(
        read_npy<std::int32_t>(Npy("int16_values.npy")),
        Tensor<std::int32_t>({2, 4}, std::vector<std::int32_t>{-32768, -32767, 0, 1, 2, 3, 32766, 32767}));
    // float64 -> float rounds to nearest, as NumPy's astype does; beyond the float range it becomes inf.
    const Tensor<float> rounded = read_npy<float>(Npy("float64_values.npy"));
    EXPECT_EQ(rounded(0, 0), -std::numeric_limits<float>::infinity());
    EXPECT_EQ(rounded(1, 0), 0.0f);  // the smallest normal double underflows to 0
    EXPECT_EQ(rounded(1, 3), std::numeric_limits<float>::infinity());
}

TEST(Npy, RefusesBoolBytesOtherThanZeroAndOne) {
    const auto bytes = PaddedNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", {0, 1, 2});
    EXPECT_THAT(Parsing<std::uint8_t>(bytes),
                ThrowsMessage<io_error>(HasSubstr("bool element [2] is the byte 2, expected 0 or 1")));
}

// ---- what vit3d refuses
// ------------------------------------------------------------------------------------

TEST(Npy, RefusesFortranOrderComplexStringsStructuredAndObjects) {
    EXPECT_THAT([] { read_npy<float>(Npy("fortran_f4.npy")); },
                ThrowsMessage<io_error>(
                    AllOf(StartsWith("vit3d::io::read_npy(\""), HasSubstr("fortran_f4.npy\"): header: "),
                          HasSubstr("fortran_order is True (column-major data), which vit3d "
                                    "does not read; expected False (C order)"))));
    EXPECT_THAT(
        [] { read_npy<float>(Npy("c8_complex.npy")); },
        ThrowsMessage<io_error>(HasSubstr("dtype '<c8' is complex, which vit3d does not read; expected "
                                          "'|b1', '|i1'")));
    EXPECT_THAT([] { read_npy<float>(Npy("u3_unicode.npy")); },
                ThrowsMessage<io_error>(HasSubstr("dtype '<U3' holds strings")));
    EXPECT_THAT(
        [] { read_npy<float>(Npy("structured.npy")); },
        ThrowsMessage<io_error>(HasSubstr("expected a dtype string such as '<f4' for 'descr' (structured "
                                          "dtypes are not supported), got \"[(")));
    EXPECT_THAT([] { read_npy<float>(Npy("object.npy")); },
                ThrowsMessage<io_error>(HasSubstr("dtype '|O' holds Python objects (a pickle)")));
}

TEST(Npy, RefusesMissingFilesAndDirectories) {
    const std::string missing = TempPath("missing.npy");
    EXPECT_THAT([&] { read_npy<float>(missing); },
                ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::read_npy(\"" + missing + "\"): "),
                                              HasSubstr("cannot read the file: No such file or directory"))));
    EXPECT_THAT(
        [&] { read_npy_header(missing); },
        ThrowsMessage<io_error>(HasSubstr("read_npy_header(\"" + missing + "\"): cannot read the file")));
    EXPECT_THAT([] { read_npy<float>(::testing::TempDir()); },
                ThrowsMessage<io_error>(HasSubstr("cannot read the file: it is a directory")));
}

TEST(Npy, RefusesFilesThatAreNotNpy) {
    EXPECT_THAT(Parsing(Bytes("")),
                ThrowsMessage<io_error>(
                    HasSubstr("expected at least 10 bytes (magic, version and header length), got a "
                              "file of 0 bytes")));
    EXPECT_THAT(Parsing(Bytes("PK\x03\x04 this is a zip")),
                ThrowsMessage<io_error>(HasSubstr("expected the .npy magic string \"\\x93NUMPY\", got "
                                                  "\"PK\\x03\\x04 t\" (not a .npy file)")));
    auto v4 = PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", FloatBytes({1}));
    v4[6] = 4;
    EXPECT_THAT(Parsing(v4),
                ThrowsMessage<io_error>(HasSubstr("format version 4.0 is not supported, expected "
                                                  "1.0, 2.0 or 3.0")));
    auto v11 = v4;
    v11[6] = 1;
    v11[7] = 1;
    EXPECT_THAT(Parsing(v11), ThrowsMessage<io_error>(HasSubstr("format version 1.1 is not supported")));
}

TEST(Npy, RefusesTruncatedFilesAndTrailingData) {
    const auto whole = PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                 FloatBytes({1, 2, 3, 4, 5, 6}));
    auto truncated = whole;
    truncated.resize(whole.size() - 5);
    EXPECT_THAT(Parsing(truncated), ThrowsMessage<io_error>(HasSubstr(
                                        "shape [2, 3] of float32 needs 24 bytes of data, but the file "
                                        "has 19 after the header (truncated file?)")));
    auto trailing = whole;
    trailing.push_back(0);
    EXPECT_THAT(Parsing(trailing), ThrowsMessage<io_error>(HasSubstr(
                                       "shape [2, 3] of float32 needs 24 bytes of data, but the file "
                                       "has 1 more bytes after them (trailing data)")));
    auto cut_header = whole;
    cut_header.resize(40);
    EXPECT_THAT(Parsing(cut_header), ThrowsMessage<io_error>(HasSubstr(
                                         "header length is 118 bytes, but only 30 bytes follow the "
                                         "10-byte prefix in the file of 40 bytes (truncated file?)")));

    // The same checks when only the header is read from a file.
    const std::string path = TempPath("truncated.npy");
    WriteBytes(path, truncated);
    EXPECT_THAT([&] { read_npy_header(path); },
                ThrowsMessage<io_error>(AllOf(HasSubstr("read_npy_header(\"" + path + "\")"),
                                              HasSubstr("needs 24 bytes of data, but the file has 19"))));
    WriteBytes(path, whole);
    const NpyHeader header = read_npy_header(path);
    EXPECT_EQ(header.shape, (Shape{2, 3}));
    EXPECT_EQ(header.data_offset, 128u);
    EXPECT_EQ(header.data_bytes(), 24u);
}

TEST(Npy, RefusesCountsBeyondWhatCanBeIndexed) {
    EXPECT_THAT(
        Parsing(PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")),
        ThrowsMessage<io_error>(HasSubstr("axis length 99999999999999999999 is larger than vit3d can "
                                          "index")));
    EXPECT_THAT(
        Parsing(PaddedNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }")),
        ThrowsMessage<io_error>(HasSubstr("shape [4294967296, 4294967296] has more elements than vit3d "
                                          "can index")));
    EXPECT_THAT(
        Parsing(PaddedNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }")),
        ThrowsMessage<io_error>(HasSubstr("shape [4611686018427387904] of float64 needs more than 2^64 "
                                          "bytes")));
}

struct MalformedHeader {
    const char* dict;
    const char* message;
};

class NpyMalformedHeader : public ::testing::TestWithParam<MalformedHeader> {};

TEST_P(NpyMalformedHeader, IsRefusedWithItsReason) {
    EXPECT_THAT(Parsing(PaddedNpy(GetParam().dict)),
                ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::parse_npy(\"crafted.npy\"): header: "),
                                              HasSubstr(GetParam().message))))
        << GetParam().dict;
}

INSTANTIATE_TEST_SUITE_P(
    Npy, NpyMalformedHeader,
    ::testing::Values(
        MalformedHeader{"[1, 2]", "expected the header's dict literal to start with '{', got \"[1, 2]"},
        MalformedHeader{"{'descr': '<f4', 'shape': (), }", "missing key 'fortran_order'"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, }", "missing key 'shape'"},
        MalformedHeader{"{'fortran_order': False, 'shape': (), }", "missing key 'descr'"},
        MalformedHeader{
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}",
            "unknown key 'extra', expected only 'descr', 'fortran_order' and 'shape' (at byte 54"},
        MalformedHeader{"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                        "duplicate key 'descr'"},
        MalformedHeader{"{'descr': '<f4' 'fortran_order': False, 'shape': ()}",
                        "expected ',' or '}' after the value of 'descr', got \"'fortran_ord\" ..."},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': ()} x",
                        "expected only spaces after"},
        MalformedHeader{"{'descr' '<f4'}", "expected ':' after 'descr'"},
        MalformedHeader{"{descr: '<f4'}", "expected a key ('descr', 'fortran_order' or 'shape') or '}'"},
        MalformedHeader{"{'descr: '<f4'}", "unknown key 'descr: '"},
        MalformedHeader{"{'descr': '<f4, 'fortran_order': False, 'shape': ()}",
                        "dtype '<f4, ' is not a dtype vit3d reads"},
        MalformedHeader{"{'descr': '<f\\x34', 'fortran_order': False, 'shape': ()}",
                        "expected a string literal without escape sequences, got \"\\x5cx34'"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': 0, 'shape': ()}",
                        "expected True or False for "
                        "'fortran_order', got \"0"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': Falsey, 'shape': ()}", "expected True or False"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
                        "expected a tuple such as (2, 3) for 'shape', not a list"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (5)}",
                        "shape (5) is an integer in parentheses, not a tuple; expected (5,)"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                        "expected a non-negative axis length, got \"-1,)"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
                        "expected ',' or ')' in the shape tuple, got \".5,)"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (07,)}",
                        "axis length with a leading zero"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}",
                        "expected an axis length (a non-negative integer), got \",)"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (2x,)}",
                        "expected ',' or ')' after an axis length, got \"x,)"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}",
                        "expected ',' or ')' in the shape tuple, got \"}"},
        MalformedHeader{"{'descr': '<', 'fortran_order': False, 'shape': ()}",
                        "dtype '<' is not a NumPy dtype string"},
        MalformedHeader{"{'descr': 'f4', 'fortran_order': False, 'shape': ()}",
                        "dtype 'f4' has no byte order character ('<', '>' or '|')"},
        MalformedHeader{"{'descr': 'xf4', 'fortran_order': False, 'shape': ()}",
                        "dtype 'xf4' has no byte order character"},
        MalformedHeader{"{'descr': '|f4', 'fortran_order': False, 'shape': ()}",
                        "dtype '|f4' has byte order '|' (not applicable), but its items have several bytes"},
        MalformedHeader{"{'descr': '=i4', 'fortran_order': False, 'shape': ()}",
                        "dtype '=i4' has byte order '=' (that of the machine that wrote it), which a file "
                        "cannot tell"},
        MalformedHeader{"{'descr': '<f16', 'fortran_order': False, 'shape': ()}",
                        "dtype '<f16' is not a dtype vit3d reads"},
        MalformedHeader{"{'descr': '<M8[s]', 'fortran_order': False, 'shape': ()}",
                        "dtype '<M8[s]' holds dates or time deltas"},
        MalformedHeader{"{'descr': ('<f4', (2,)), 'fortran_order': False, 'shape': ()}",
                        "expected a dtype string such as '<f4' for 'descr', got \"('<f4'"},
        MalformedHeader{"{'descr': '<f4', 'fortran_order': False, 'shape': (), ", "expected a key"},
        MalformedHeader{"{'descr", "unterminated string literal"}));

TEST(Npy, HeaderMustEndWithANewline) {
    EXPECT_THAT(Parsing(RawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }  ", FloatBytes({1}))),
                ThrowsMessage<io_error>(HasSubstr("expected the header to end with '\\n', got ' '")));
    EXPECT_THAT(
        Parsing(RawNpy("", FloatBytes({1}))),
        ThrowsMessage<io_error>(HasSubstr("expected the header to end with '\\n', got an empty header")));
}

TEST(Npy, AcceptsAnyPythonLiteralSpellingOfTheHeader) {
    // Double quotes, any key order, newlines and tabs, no trailing comma, 16-byte padding of old NumPy.
    const std::string header = "{\"shape\":\n\t( 2 ,3 ),\"fortran_order\" : False,'descr':'<f4'}      \n";
    const Tensor<float> t = parse_npy<float>(RawNpy(header, FloatBytes({1, 2, 3, 4, 5, 6})));
    EXPECT_TENSOR_EQ(t, Tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(
        parse_npy<float>(PaddedNpy("{'descr':'<f4','fortran_order':False,'shape':( )}", FloatBytes({7})))
            .shape(),
        Shape{});
    EXPECT_EQ(parse_npy<float>(
                  PaddedNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,),}", {0x3f, 0x80, 0, 0}))
                  .data()[0],
              1.0f);
}

// ---- writing
// -----------------------------------------------------------------------------------------------

TEST(Npy, WriteReplacesAnExistingFileAndLeavesNoTemporaryFile) {
    const std::string path = TempPath("replaced.npy");
    WriteBytes(path, Bytes("old contents"));
    write_npy(path, Tensor<double>({2}, {1.5, -2.5}));
    EXPECT_TENSOR_EQ(read_npy<double>(path), Tensor<double>({2}, {1.5, -2.5}));
    EXPECT_TRUE(test::TemporaryFilesFor(path).empty());
}

TEST(Npy, WriteFailsWithTheReasonAndWritesNothing) {
    const std::string dir = TempPath("no_such_dir");
    EXPECT_THAT([&] { write_npy(dir + "/x.npy", Tensor<float>({1})); },
                ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::write_npy(\"" + dir + "/x.npy\"): "),
                                              HasSubstr("cannot create the temporary file"),
                                              HasSubstr("No such file or directory"))));
    EXPECT_THAT([] { write_npy(::testing::TempDir(), Tensor<float>({1})); },
                ThrowsMessage<io_error>(HasSubstr("expected a file name, got a path ending in a separator")));
}

}  // namespace
}  // namespace vit3d::io
