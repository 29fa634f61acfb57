// Tests for vit3d/formats/nifti.hpp and nifti_header.hpp: the axis order (files whose voxels hold their own
// index), geometry and data against what nibabel reads (tests/fixtures/make_nifti_samples.py), the real MRI
// volume of examples/data/, scaling for float and integer reads, every malformed header field, truncated
// and corrupt .nii and .nii.gz files, and the writer.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>

#include "support/affine_testing.hpp"
#include "support/enum_tables.hpp"
#include "support/io_testing.hpp"
#include "support/tensor_testing.hpp"

namespace vit3d::io {
namespace {

using test::AffinesNear;
using test::FixturePath;
using test::ReadBytes;
using test::TempPath;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;
using transforms::Affine;
using transforms::identity_affine;

std::string Nifti(const std::string& name) { return FixturePath("nifti/" + name); }

// What nibabel read from a fixture: its data in vit3d's axis order, and its affine.
template <class T>
Tensor<T> NibabelData(const std::string& name) {
    return read_npy<T>(Nifti(name + ".data.npy"));
}
Affine NibabelAffine(const std::string& name) {
    const Tensor<double> a = read_npy<double>(Nifti(name + ".affine.npy"));
    Affine out{};
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) out[r][c] = a(r, c);
    return out;
}

const Affine kAffine = {{{0.5, 0, 0, -10}, {0, 0.75, 0, 20}, {0, 0, 2.0, 30}, {0, 0, 0, 1}}};

// A copy of `bytes` with `value` stored little-endian at `offset` (the fixtures are little-endian).
template <class V>
std::vector<std::uint8_t> Patched(std::vector<std::uint8_t> bytes, std::size_t offset, V value) {
    if (offset + sizeof(V) > bytes.size()) throw std::out_of_range("Patched: offset beyond the file");
    detail::store_number(&bytes.at(offset), value, false);
    return bytes;
}

template <class T = float>
auto Parsing(std::vector<std::uint8_t> bytes, NiftiScaling scaling = NiftiScaling::apply) {
    return [bytes = std::move(bytes), scaling] {
        (void)parse_nifti<T>(bytes.data(), bytes.size(), "x.nii", scaling);
    };
}

// ---- axis order and geometry
// -------------------------------------------------------------------------------

// Voxel (i, j, k, t) of the index files holds i + 10 j + 100 k + 1000 t; data(t, k, j, i) must be it.
template <class T>
void ExpectIndexVolume(const Volume<T>& v, bool four_d) {
    const Shape expected = four_d ? Shape{2, 3, 4, 5} : Shape{3, 4, 5};
    ASSERT_EQ(v.data.shape(), expected);
    for (Index t = 0; t < (four_d ? 2 : 1); ++t)
        for (Index k = 0; k < 3; ++k)
            for (Index j = 0; j < 4; ++j)
                for (Index i = 0; i < 5; ++i) {
                    const T value = four_d ? v.data(t, k, j, i) : v.data(k, j, i);
                    ASSERT_EQ(value, static_cast<T>(i + 10 * j + 100 * k + 1000 * t))
                        << "voxel (i, j, k, t) = (" << i << ", " << j << ", " << k << ", " << t << ")";
                }
}

TEST(Nifti, TensorAxesAreTheFilesInReverseOrder) {
    for (const char* name : {"index_i16.nii", "index_i16.nii.gz", "index_i16_be.nii", "index_nifti2.nii",
                             "multi_member.nii.gz", "with_extension.nii"}) {
        SCOPED_TRACE(name);
        ExpectIndexVolume(read_nifti<std::int16_t>(Nifti(name)), false);
        ExpectIndexVolume(read_nifti<float>(Nifti(name)), false);
        ExpectIndexVolume(read_nifti<double>(Nifti(name)), false);
    }
    const Volume<float> series = read_nifti<float>(Nifti("index_f32_4d.nii.gz"));
    ExpectIndexVolume(series, true);
    EXPECT_EQ(series.time_step, 2.5);
    EXPECT_EQ(series.time_unit, NiftiUnit::sec);
}

TEST(Nifti, GeometryIsTheHeaders) {
    const Volume<std::int16_t> v = read_nifti<std::int16_t>(Nifti("index_i16.nii"));
    EXPECT_EQ(v.spacing, (std::array<double, 3>{2.0, 0.75, 0.5}));  // [z, y, x]
    EXPECT_EQ(v.affine, kAffine);
    EXPECT_EQ(v.affine_source, AffineSource::sform);
    EXPECT_EQ(v.sform_code, 1);
    EXPECT_EQ(v.qform_code, 1);
    EXPECT_EQ(v.spatial_unit, NiftiUnit::mm);
    EXPECT_EQ(v.datatype, NiftiDataType::int16);
    EXPECT_FALSE(v.scaled);
    const NiftiHeader h = read_nifti_header(Nifti("index_i16.nii.gz"));
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(h.dim, (std::array<std::int64_t, 8>{3, 5, 4, 3, 1, 1, 1, 1}));
    EXPECT_EQ(h.tensor_shape(), (Shape{3, 4, 5}));
    EXPECT_EQ(read_nifti_header(Nifti("index_nifti2.nii")).version, 2);
    EXPECT_TRUE(read_nifti_header(Nifti("index_i16_be.nii")).big_endian);
    EXPECT_TRUE(read_nifti_header(Nifti("with_extension.nii")).has_extensions);
    EXPECT_EQ(read_nifti_header(Nifti("with_extension.nii")).vox_offset, 384);
}

TEST(Nifti, AffinesMatchNibabel) {
    for (const char* name : {"index_i16.nii", "index_i16_be.nii", "index_nifti2.nii", "labels_u8.nii.gz",
                             "sheared_sform.nii", "qform_only.nii"}) {
        const Volume<double> v = read_nifti<double>(Nifti(name));
        EXPECT_TRUE(AffinesNear(v.affine, NibabelAffine(name), 1e-12)) << name;
    }
    const Volume<float> q = read_nifti<float>(Nifti("qform_only.nii"));
    EXPECT_EQ(q.affine_source, AffineSource::qform);
    EXPECT_EQ(q.sform_code, 0);
    EXPECT_EQ(q.spacing, (std::array<double, 3>{2.5, 2.0, 1.5}));
    EXPECT_LT(q.affine[2][2], 0.0);  // qfac -1 flips z
    EXPECT_EQ(read_nifti<float>(Nifti("sheared_sform.nii")).affine_source, AffineSource::sform);
    // No transform: the standard's method 1, diag(pixdim) (nibabel uses a centred ANALYZE-style affine).
    const Volume<float> bare = read_nifti<float>(Nifti("no_transform.nii"));
    EXPECT_EQ(bare.affine_source, AffineSource::pixdim);
    EXPECT_EQ(bare.affine, (Affine{{{0.5, 0, 0, 0}, {0, 0.75, 0, 0}, {0, 0, 2.0, 0}, {0, 0, 0, 1}}}));
}

// NIfTI's datatype codes are small powers of two and multiples of 256: scanned are 0 to 63 and the multiples
// of 64 up to 4096.
template <int... I>
constexpr auto datatype_code_candidates(std::integer_sequence<int, I...>) {
    return std::integer_sequence<int, (I < 64 ? I : (I - 63) * 64)...>{};
}

TEST(Nifti, EveryDatatypeHasAName) {
    test::expect_complete_enum_table<NiftiDataType>(
        datatype_code_candidates(std::make_integer_sequence<int, 128>()));
    EXPECT_STREQ(nifti_datatype_name(static_cast<NiftiDataType>(1)), "binary");
    EXPECT_STREQ(nifti_datatype_name(static_cast<NiftiDataType>(3)), "unknown");
}

TEST(Nifti, ReadsEveryDatatypeAsNibabelDoes) {
    const auto check = [](const char* type, auto tag) {
        using T = decltype(tag);
        SCOPED_TRACE(type);
        const std::string name = std::string("dtype_") + type + ".nii";
        const Volume<T> v = read_nifti<T>(Nifti(name));
        EXPECT_TENSOR_EQ(v.data, NibabelData<T>(name));
        EXPECT_EQ(nifti_datatype_name(v.datatype), std::string(type));
        EXPECT_EQ(v.data(0, 0, 0), std::numeric_limits<T>::lowest());  // voxel (0, 0, 0)
        EXPECT_EQ(v.data(1, 0, 0), std::numeric_limits<T>::max());     // voxel (0, 0, 1)
    };
    check("uint8", std::uint8_t{});
    check("int8", std::int8_t{});
    check("int16", std::int16_t{});
    check("uint16", std::uint16_t{});
    check("int32", std::int32_t{});
    check("uint32", std::uint32_t{});
    check("int64", std::int64_t{});
    check("uint64", std::uint64_t{});
    check("float32", float{});
    check("float64", double{});
    // Wider integer types take narrower data; extremes that do not fit are refused with the voxel.
    EXPECT_EQ(read_nifti<std::int32_t>(Nifti("dtype_uint16.nii")).data(1, 0, 0), 65535);
    EXPECT_THAT(
        [] { read_nifti<std::int64_t>(Nifti("dtype_uint64.nii")); },
        ThrowsMessage<io_error>(AllOf(HasSubstr("dtype_uint64.nii\"): voxel (i, j, k) = (0, 0, 1) is "
                                                "18446744073709551615 (uint64), which int64 cannot hold "
                                                "exactly; expected integers in [-9223372036854775808, "
                                                "9223372036854775807]"))));
    EXPECT_THAT(
        [] { read_nifti<std::int8_t>(Nifti("dtype_float32.nii")); },
        ThrowsMessage<io_error>(HasSubstr("voxel (i, j, k) = (0, 0, 0) is -3.4028235e+38 (float32), which "
                                          "int8 cannot hold exactly")));
    EXPECT_THAT([] { read_nifti<std::uint8_t>(Nifti("index_f32_4d.nii.gz")); },
                ThrowsMessage<io_error>(
                    HasSubstr("voxel (i, j, k, t) = (0, 0, 0, 1) is 1000 (float32), which uint8")));
}

// ---- scaling
// -----------------------------------------------------------------------------------------------

TEST(Nifti, ScaledIntegersReadAsExactIntegersOrAreRefused) {
    // CT: stored 0..3071, slope 1, intercept -1024: int16 Hounsfield units.
    const Volume<std::int16_t> hu = read_nifti<std::int16_t>(Nifti("ct_i16.nii.gz"));
    EXPECT_TRUE(hu.scaled);
    EXPECT_EQ(hu.scl_slope, 1.0);
    EXPECT_EQ(hu.scl_inter, -1024.0);
    EXPECT_TENSOR_EQ(hu.data, NibabelData<std::int16_t>("ct_i16.nii.gz"));
    const Volume<std::int16_t> stored = read_nifti<std::int16_t>(Nifti("ct_i16.nii.gz"), NiftiScaling::raw);
    EXPECT_FALSE(stored.scaled);
    for (Index p = 0; p < hu.data.size(); ++p) ASSERT_EQ(stored.data.data()[p] - 1024, hu.data.data()[p]);
    EXPECT_THAT(
        [] { read_nifti<std::uint8_t>(Nifti("ct_i16.nii.gz")); },
        ThrowsMessage<io_error>(HasSubstr("voxel (i, j, k) = (0, 0, 0) is -1024 after scaling (stored 0 x "
                                          "scl_slope 1 + scl_inter -1024), which uint8 cannot hold exactly; "
                                          "expected integers in [0, 255] (read as float or double, or with "
                                          "NiftiScaling::raw for the stored values)")));

    // Slope 0.5, intercept 0.25: fractions, which float reads keep and integer reads refuse.
    EXPECT_TENSOR_EQ(read_nifti<double>(Nifti("scaled_i16.nii")).data, NibabelData<double>("scaled_i16.nii"));
    EXPECT_TENSOR_EQ(read_nifti<float>(Nifti("scaled_i16.nii")).data, NibabelData<float>("scaled_i16.nii"));
    EXPECT_THAT(
        [] { read_nifti<std::int32_t>(Nifti("scaled_i16.nii")); },
        ThrowsMessage<io_error>(HasSubstr("voxel (i, j, k) = (0, 0, 0) is -2.75 after scaling (stored -6 x "
                                          "scl_slope 0.5 + scl_inter 0.25)")));
    EXPECT_EQ(read_nifti<std::int32_t>(Nifti("scaled_i16.nii"), NiftiScaling::raw).data(0, 0, 0), -6);
}

TEST(Nifti, LabelMasksReadExactlyIntoIntegerTensors) {
    const Volume<std::uint8_t> mask = read_nifti<std::uint8_t>(Nifti("labels_u8.nii.gz"));
    EXPECT_TENSOR_EQ(mask.data, NibabelData<std::uint8_t>("labels_u8.nii.gz"));
    EXPECT_EQ(mask.data.shape(), (Shape{4, 5, 6}));
    EXPECT_EQ(mask.intent_code, 1002);
    EXPECT_EQ(mask.intent_name, "labels");
    EXPECT_EQ(mask.sform_code, 2);
    for (const std::uint8_t label : mask.data)
        ASSERT_TRUE(label == 0 || label == 1 || label == 2 || label == 7);
    const Volume<std::int64_t> wide = read_nifti<std::int64_t>(Nifti("labels_u8.nii.gz"));
    for (Index p = 0; p < mask.data.size(); ++p) ASSERT_EQ(wide.data.data()[p], mask.data.data()[p]);
}

// ---- the real MRI volume
// -----------------------------------------------------------------------------------

TEST(Nifti, ReadsNibabelsAnatomicalVolume) {
    // examples/data/anatomical.nii: SPM-normalised, big-endian int16, 33 x 41 x 25 voxels of 2 mm.
    const std::string path = std::string(VIT3D_EXAMPLE_DATA_DIR) + "/anatomical.nii";
    const Volume<std::int16_t> v = read_nifti<std::int16_t>(path);
    EXPECT_EQ(v.data.shape(), (Shape{25, 41, 33}));
    EXPECT_EQ(v.spacing, (std::array<double, 3>{2.0, 2.0, 2.0}));
    const Tensor<double> zooms = read_npy<double>(Nifti("anatomical.zooms.npy"));
    EXPECT_EQ(v.spacing[2], zooms(0));
    EXPECT_EQ(v.affine, NibabelAffine("anatomical"));
    EXPECT_EQ(v.affine, (Affine{{{-2, 0, 0, 32}, {0, 2, 0, -40}, {0, 0, 2, -16}, {0, 0, 0, 1}}}));
    EXPECT_EQ(v.sform_code, 2);
    EXPECT_EQ(v.qform_code, 2);
    EXPECT_EQ(v.datatype, NiftiDataType::int16);
    EXPECT_EQ(v.description, "spm - 3D normalized");
    EXPECT_TRUE(read_nifti_header(path).big_endian);
    EXPECT_TENSOR_EQ(v.data, NibabelData<std::int16_t>("anatomical"));
    // nibabel's data[i, j, k] for a few voxels (make_nifti_samples.py prints them).
    EXPECT_EQ(v.data(0, 0, 0), 10712);
    EXPECT_EQ(v.data(12, 20, 16), 11881);
    EXPECT_EQ(v.data(5, 30, 10), 6777);
    EXPECT_EQ(v.data(24, 40, 32), 2971);
    EXPECT_EQ(v.data(20, 10, 20), 10513);
    // The qform (a 180 degree rotation about y with qfac -1) describes the same affine as the sform.
    NiftiHeader h = read_nifti_header(path);
    EXPECT_EQ(detail::nifti_qform_affine(h), v.affine);
}

// ---- malformed files
// ---------------------------------------------------------------------------------------

TEST(Nifti, RefusesMissingEmptyAndForeignFiles) {
    const std::string missing = TempPath("missing.nii");
    EXPECT_THAT([&] { read_nifti<float>(missing); },
                ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::io::read_nifti(\"" + missing + "\"): "),
                                              HasSubstr("cannot read the file: No such file or directory"))));
    EXPECT_THAT([] { read_nifti<float>(::testing::TempDir()); },
                ThrowsMessage<io_error>(HasSubstr("cannot read the file: it is a directory")));
    EXPECT_THAT(Parsing({}),
                ThrowsMessage<io_error>(HasSubstr("vit3d::io::parse_nifti(\"x.nii\"): expected at least "
                                                  "348 bytes (a NIfTI-1 header), got 0")));
    EXPECT_THAT(
        Parsing(ReadBytes(FixturePath("npy/f4_special.npy"))),
        ThrowsMessage<io_error>(HasSubstr("expected sizeof_hdr 348 (NIfTI-1) or 540 (NIfTI-2) in either byte "
                                          "order, got 1297436307 (little-endian)")));
    std::vector<std::uint8_t> cut = ReadBytes(Nifti("index_i16.nii"));
    cut.resize(200);
    EXPECT_THAT(Parsing(cut),
                ThrowsMessage<io_error>(HasSubstr("sizeof_hdr says a NIfTI-1 header of 348 bytes, but "
                                                  "the file has only 200 (truncated file?)")));
}

TEST(Nifti, RefusesPairHeadersAndAnalyze) {
    const std::vector<std::uint8_t> nii = ReadBytes(Nifti("index_i16.nii"));
    std::vector<std::uint8_t> pair = nii, analyze = nii;
    std::memcpy(pair.data() + 344, "ni1", 4);
    std::memset(analyze.data() + 344, 0, 4);
    EXPECT_THAT(Parsing(pair),
                ThrowsMessage<io_error>(HasSubstr("magic \"ni1\" marks a two-file NIfTI-1 header (.hdr "
                                                  "with an .img)")));
    EXPECT_THAT(Parsing(analyze),
                ThrowsMessage<io_error>(HasSubstr("expected the NIfTI-1 magic \"n+1\\x00\" at byte "
                                                  "344, got \"\\x00\\x00\\x00\\x00\" (an ANALYZE 7.5 "
                                                  "header?)")));
    std::vector<std::uint8_t> two = ReadBytes(Nifti("index_nifti2.nii"));
    two[8] = '\n';  // "\r\n" -> "\n\n", as a text-mode copy might
    EXPECT_THAT(Parsing(two),
                ThrowsMessage<io_error>(HasSubstr("(line endings changed by a text-mode copy?)")));
}

struct BadField {
    std::size_t offset;
    int size;  // 2: int16, 4: float, -4: int32
    double value;
    const char* message;
};

class NiftiBadField : public ::testing::TestWithParam<BadField> {};

TEST_P(NiftiBadField, IsRefusedWithItsReason) {
    const BadField& f = GetParam();
    std::vector<std::uint8_t> bytes = ReadBytes(Nifti("index_i16.nii"));
    if (f.size == 2) bytes = Patched(bytes, f.offset, static_cast<std::int16_t>(f.value));
    if (f.size == 4) bytes = Patched(bytes, f.offset, static_cast<float>(f.value));
    EXPECT_THAT(Parsing(bytes),
                ThrowsMessage<io_error>(
                    AllOf(StartsWith("vit3d::io::parse_nifti(\"x.nii\"): "), HasSubstr(f.message))));
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

INSTANTIATE_TEST_SUITE_P(
    Nifti, NiftiBadField,
    ::testing::Values(
        BadField{70, 2, 32, "datatype 32 (complex64) is not supported; expected a real scalar type"},
        BadField{70, 2, 128, "datatype 128 (rgb24) is not supported"},
        BadField{70, 2, 1, "datatype 1 (binary) is not supported"},
        BadField{70, 2, 3, "datatype 3 (unknown) is not supported"},
        BadField{72, 2, 8, "bitpix is 8, but datatype int16 has 16 bits per voxel"},
        BadField{40, 2, 0,
                 "dim[0] (the number of dimensions) is 0, expected 1 to 7 (dim = [0, 5, 4, 3, 1, 1, 1, 1])"},
        BadField{40, 2, 8, "dim[0] (the number of dimensions) is 8"},
        BadField{44, 2, 0, "dim[2] is 0, expected a length >= 1 (dim = [3, 5, 0, 3, 1, 1, 1, 1])"},
        BadField{46, 2, -3, "dim[3] is -3, expected a length >= 1"},
        BadField{108, 4, 348, "vox_offset is 348, expected a whole number >= 352"},
        BadField{108, 4, 352.5, "vox_offset is 352.5, expected a whole number >= 352"},
        BadField{108, 4, kNaN, "vox_offset is nan, expected a whole number >= 352"},
        BadField{84, 4, -0.75, "pixdim[2] (a voxel size) is -0.75, expected a finite size >= 0"},
        BadField{88, 4, kNaN, "pixdim[3] (a voxel size) is nan"},
        BadField{116, 4, kNaN,
                 "scl_slope is 1 but scl_inter is nan; expected a finite intercept with a valid slope"},
        BadField{252, 2, 9, "qform_code is 9, expected a NIfTI transform code 0 to 5"},
        BadField{254, 2, -1, "sform_code is -1, expected a NIfTI transform code 0 to 5"},
        BadField{284, 4, kNaN,
                 "sform_code is 1 but the sform has a non-finite entry: srow_x/y/z = [0.5, nan, 0, -10]"},
        BadField{256, 4, 1.5,
                 "quatern_b, c, d = [1.5, 0, 0] have b^2 + c^2 + d^2 = 2.25 > 1: not the vector part of a "
                 "unit quaternion"},
        BadField{268, 4, std::numeric_limits<double>::infinity(),
                 "qform_code is 1 but the quaternion and offsets"},
        BadField{76, 4, 0.5,
                 "pixdim[0] (qfac, the qform's handedness) is 0.5, expected -1 or 1 (or 0, read as 1)"}));

TEST(Nifti, QuaternionsAtTheUnitLimitAndQfacZeroAreRead) {
    const std::vector<std::uint8_t> nii = ReadBytes(Nifti("index_i16.nii"));
    // b^2 + c^2 + d^2 = 1: a 180 degree rotation about x, and qfac 0 read as 1.
    std::vector<std::uint8_t> flipped = Patched(Patched(nii, 256, 1.0f), 76, 0.0f);
    flipped = Patched(flipped, 254, std::int16_t{0});  // no sform, so the qform is used
    const Volume<float> v = parse_nifti<float>(flipped.data(), flipped.size());
    EXPECT_EQ(v.affine_source, AffineSource::qform);
    EXPECT_TRUE(AffinesNear(
        v.affine, Affine{{{0.5, 0, 0, -10}, {0, -0.75, 0, 20}, {0, 0, -2.0, 30}, {0, 0, 0, 1}}}, 1e-15));
    // A NaN slope means no scaling, as in nibabel.
    const std::vector<std::uint8_t> nan_slope = Patched(nii, 112, std::numeric_limits<float>::quiet_NaN());
    const Volume<std::int16_t> unscaled = parse_nifti<std::int16_t>(nan_slope.data(), nan_slope.size());
    EXPECT_FALSE(unscaled.scaled);
    EXPECT_EQ(unscaled.data(2, 3, 4), 234);
}

TEST(Nifti, HigherDimensionsMustBeSingletons) {
    const std::vector<std::uint8_t> nii = ReadBytes(Nifti("index_i16.nii"));
    // dim[0] = 5 with dim[4] = dim[5] = 1 reads as a 4D series of one volume.
    const std::vector<std::uint8_t> five = Patched(nii, 40, std::int16_t{5});
    EXPECT_EQ(parse_nifti<float>(five.data(), five.size()).data.shape(), (Shape{1, 3, 4, 5}));
    const std::vector<std::uint8_t> vectors = Patched(five, 50, std::int16_t{3});
    EXPECT_THAT(Parsing(vectors), ThrowsMessage<io_error>(HasSubstr(
                                      "dim = [5, 5, 4, 3, 1, 3, 1, 1] has 5 dimensions with dim[5] > 1; "
                                      "vit3d reads 3D volumes and 4D series only")));
}

TEST(Nifti, RefusesTruncatedFilesTrailingDataAndImpossibleSizes) {
    const std::vector<std::uint8_t> nii = ReadBytes(Nifti("index_i16.nii"));
    ASSERT_EQ(nii.size(), 472u);  // 352 + 5 * 4 * 3 * 2
    std::vector<std::uint8_t> truncated(nii.begin(), nii.end() - 10), trailing = nii;
    trailing.insert(trailing.end(), {1, 2, 3});
    EXPECT_THAT(Parsing(truncated),
                ThrowsMessage<io_error>(
                    HasSubstr("dim [5, 4, 3] of int16 from vox_offset 352 need a file of 472 bytes, "
                              "got 462 (truncated file?)")));
    EXPECT_THAT(Parsing(trailing),
                ThrowsMessage<io_error>(HasSubstr("need a file of 472 bytes, got 3 bytes more after "
                                                  "the data (trailing data)")));
    // Sizes a header claims are checked against the file before anything is allocated.
    std::vector<std::uint8_t> huge = Patched(
        Patched(Patched(nii, 42, std::int16_t{32767}), 44, std::int16_t{32767}), 46, std::int16_t{32767});
    const std::uint64_t claimed = 352 + 2 * std::uint64_t{32767} * 32767 * 32767;
    EXPECT_THAT(Parsing(huge), ThrowsMessage<io_error>(HasSubstr("need a file of " + std::to_string(claimed) +
                                                                 " bytes, got 472 (truncated file?)")));
    std::vector<std::uint8_t> two = ReadBytes(Nifti("index_nifti2.nii"));
    two = Patched(Patched(two, 24, std::int64_t{1} << 40), 32, std::int64_t{1} << 40);
    EXPECT_THAT(Parsing(two), ThrowsMessage<io_error>(HasSubstr("has more voxels than vit3d can index")));
}

TEST(Nifti, RefusesCorruptAndTruncatedGzipStreams) {
    const std::vector<std::uint8_t> gz = ReadBytes(Nifti("index_i16.nii.gz"));
    std::vector<std::uint8_t> cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
    EXPECT_THAT(Parsing(cut),
                ThrowsMessage<io_error>(HasSubstr("gzip: the compressed data end before the end of the "
                                                  "stream, after ")));
    std::vector<std::uint8_t> no_trailer(gz.begin(), gz.end() - 4);  // the length field of the trailer
    EXPECT_THAT(Parsing(no_trailer), ThrowsMessage<io_error>(HasSubstr("(truncated file?)")));
    std::vector<std::uint8_t> bad_crc = gz;
    bad_crc[gz.size() - 8] ^= 0xFF;
    EXPECT_THAT(Parsing(bad_crc),
                ThrowsMessage<io_error>(HasSubstr("gzip: corrupt compressed data: incorrect data "
                                                  "check")));
    std::vector<std::uint8_t> scrambled = gz;
    for (std::size_t i = gz.size() / 2; i < gz.size() / 2 + 8; ++i) scrambled[i] ^= 0x55;
    EXPECT_THAT(Parsing(scrambled), ThrowsMessage<io_error>(HasSubstr("gzip: corrupt compressed data: ")));
    std::vector<std::uint8_t> garbage = gz;
    garbage.insert(garbage.end(), {'x', 'y', 'z'});
    EXPECT_THAT(Parsing(garbage),
                ThrowsMessage<io_error>(HasSubstr("gzip: 3 bytes after the end of the gzip stream at "
                                                  "byte " +
                                                  std::to_string(gz.size()) +
                                                  " are not another gzip member (trailing garbage)")));
    // A well-formed gzip of a truncated .nii: the decompressed size is checked like a .nii's.
    std::vector<std::uint8_t> nii = ReadBytes(Nifti("index_i16.nii"));
    nii.resize(nii.size() - 2);
    std::vector<std::uint8_t> short_gz;
    {
        const auto append = [&short_gz](const std::uint8_t* p, std::size_t n) {
            short_gz.insert(short_gz.end(), p, p + n);
        };
        detail::GzipWriter<decltype(append)> writer(append, "");
        writer.write(nii.data(), nii.size());
        writer.finish();
    }
    EXPECT_THAT(Parsing(short_gz),
                ThrowsMessage<io_error>(HasSubstr("need a decompressed file of 472 bytes, got 470 "
                                                  "(truncated file?)")));
}

// ---- writing
// -----------------------------------------------------------------------------------------------

template <class T>
void ExpectSameVolume(const Volume<T>& back, const Volume<T>& v) {
    EXPECT_TENSOR_EQ(back.data, v.data);
    EXPECT_EQ(back.spacing, v.spacing);
    EXPECT_TRUE(AffinesNear(back.affine, v.affine, 1e-5));
    EXPECT_EQ(back.sform_code, v.sform_code);
    EXPECT_EQ(back.qform_code, v.qform_code);
    EXPECT_EQ(back.spatial_unit, v.spatial_unit);
    EXPECT_EQ(back.time_unit, v.time_unit);
    EXPECT_EQ(back.intent_code, v.intent_code);
    EXPECT_EQ(back.intent_name, v.intent_name);
    EXPECT_EQ(back.description, v.description);
    EXPECT_EQ(back.datatype, detail::nifti_datatype_of<T>());
}

template <class T>
class NiftiRoundTrip : public ::testing::Test {};
using VolumeTypes = ::testing::Types<float, double, std::uint8_t, std::int8_t, std::int16_t, std::uint16_t,
                                     std::int32_t, std::uint32_t, std::int64_t, std::uint64_t>;
TYPED_TEST_SUITE(NiftiRoundTrip, VolumeTypes);

TYPED_TEST(NiftiRoundTrip, WritesWhatItReads) {
    using T = TypeParam;
    Volume<T> v;
    v.data = Tensor<T>::empty({3, 4, 5});
    Index k = 0;
    for (T& x : v.data) x = static_cast<T>((k++ * 7) % 100);
    v.data.data()[0] = std::numeric_limits<T>::lowest();
    v.data.data()[1] = std::numeric_limits<T>::max();
    v.spacing = {2.0, 0.75, 0.5};
    v.affine = kAffine;
    v.sform_code = 1;
    v.qform_code = 1;
    v.intent_code = 1002;
    v.intent_name = "labels";
    v.description = "written by vit3d";
    for (const char* suffix : {".nii", ".nii.gz"}) {
        const std::string path = TempPath(std::string("round_trip") + suffix);
        write_nifti(path, v);
        ExpectSameVolume(read_nifti<T>(path), v);
        EXPECT_TRUE(test::TemporaryFilesFor(path).empty());
        const std::vector<std::uint8_t> bytes = serialize_nifti(v, suffix[4] == '.');
        ExpectSameVolume(parse_nifti<T>(bytes.data(), bytes.size()), v);
    }
}

TEST(Nifti, WritesTheHeaderNibabelWrites) {
    // index_i16.nii as nibabel wrote it, and as vit3d writes what it read: the same fields and voxel bytes.
    const Volume<std::int16_t> v = read_nifti<std::int16_t>(Nifti("index_i16.nii"));
    const std::vector<std::uint8_t> ours = serialize_nifti(v), theirs = ReadBytes(Nifti("index_i16.nii"));
    ASSERT_EQ(ours.size(), theirs.size());
    EXPECT_TRUE(std::equal(ours.begin() + 352, ours.end(), theirs.begin() + 352));  // the voxels
    const NiftiHeader a = parse_nifti_header(ours.data(), ours.size());
    const NiftiHeader b = parse_nifti_header(theirs.data(), theirs.size());
    EXPECT_EQ(a.dim, b.dim);
    EXPECT_EQ(a.datatype, b.datatype);
    EXPECT_EQ(a.bitpix, b.bitpix);
    EXPECT_EQ(a.vox_offset, b.vox_offset);
    EXPECT_EQ(a.pixdim, b.pixdim);
    EXPECT_EQ(a.srow, b.srow);
    EXPECT_EQ(a.sform_code, b.sform_code);
    EXPECT_EQ(a.qform_code, b.qform_code);
    EXPECT_EQ(a.quatern_b, b.quatern_b);
    EXPECT_EQ(a.quatern_c, b.quatern_c);
    EXPECT_EQ(a.quatern_d, b.quatern_d);
    EXPECT_EQ(a.qoffset_x, b.qoffset_x);
    EXPECT_EQ(a.xyzt_units, b.xyzt_units);
    EXPECT_EQ(a.scl_slope, b.scl_slope);
    EXPECT_EQ(a.scl_inter, b.scl_inter);
}

TEST(Nifti, WritesQformsWithTheirHandedness) {
    Volume<float> v = read_nifti<float>(Nifti("qform_only.nii"));
    const std::string path = TempPath("qform.nii");
    write_nifti(path, v);
    const NiftiHeader h = read_nifti_header(path);
    EXPECT_EQ(h.pixdim[0], -1.0);
    EXPECT_EQ(h.sform_code, 0);
    const Volume<float> back = read_nifti<float>(path);
    EXPECT_EQ(back.affine_source, AffineSource::qform);
    EXPECT_TRUE(AffinesNear(back.affine, NibabelAffine("qform_only.nii"), 1e-6));
}

TEST(Nifti, NextToAnSformAQformHoldsTheNearestRotation) {
    // A sheared sform with a qform, as registration tools leave them: the sform keeps the affine, the qform
    // its nearest rotation (shears stripped, as nibabel writes it).
    Volume<float> v = read_nifti<float>(Nifti("sheared_sform.nii"));
    v.qform_code = 1;
    const std::vector<std::uint8_t> bytes = serialize_nifti(v);
    const Volume<float> back = parse_nifti<float>(bytes.data(), bytes.size());
    EXPECT_EQ(back.affine, v.affine);
    EXPECT_EQ(back.affine_source, AffineSource::sform);
    const Affine qform = detail::nifti_qform_affine(parse_nifti_header(bytes.data(), bytes.size()));
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double dot = 0.0;  // columns of the rotation part are orthogonal, of length spacing
            for (int r = 0; r < 3; ++r) dot += qform[r][i] * qform[r][j];
            const double expected = i == j ? v.spacing[2 - i] * v.spacing[2 - i] : 0.0;
            EXPECT_NEAR(dot, expected, 1e-5) << i << ", " << j;
        }
    for (int r = 0; r < 3; ++r) EXPECT_EQ(qform[r][3], v.affine[r][3]);
}

TEST(Nifti, ANearlySingularAffineGetsAValidRotation) {
    // Found by fuzz_nifti: an sform whose first two columns are nearly parallel (entries from 1e-45 to
    // 1e28), with qform_code 1. The unscaled polar iteration gave a rotation of garbage (b = 4.6e18), and
    // the file written could not be read back; with Higham's scaling it converges, and every header the
    // writer makes is now read back before it is written.
    const std::vector<std::uint8_t> bytes = ReadBytes(Nifti("fuzz_nearly_singular_sform.nii"));
    const Volume<double> v = parse_nifti<double>(bytes.data(), bytes.size());
    ASSERT_EQ(v.qform_code, 1);
    const std::vector<std::uint8_t> written = serialize_nifti(v);
    const NiftiHeader h = parse_nifti_header(written.data(), written.size());
    EXPECT_NEAR(h.quatern_b * h.quatern_b + h.quatern_c * h.quatern_c + h.quatern_d * h.quatern_d, 1.0, 1e-6);
    EXPECT_EQ(parse_nifti<double>(written.data(), written.size()).affine, v.affine);  // the sform, as float
    // A sheared, well-conditioned affine gets its nearest rotation; a zero column none.
    NiftiHeader q;
    Affine sheared = kAffine;
    sheared[0][1] = 0.3;
    EXPECT_EQ(detail::set_nifti_qform(q, sheared), detail::QformFit::sheared);
    EXPECT_LE(q.quatern_b * q.quatern_b + q.quatern_c * q.quatern_c + q.quatern_d * q.quatern_d, 1.0);
    sheared[1][1] = 0.0;
    sheared[2][1] = 0.0;
    sheared[0][1] = 0.0;
    EXPECT_EQ(detail::set_nifti_qform(q, sheared), detail::QformFit::singular);
}

TEST(Nifti, WritesNifti2WhenAnAxisExceedsNifti1) {
    Volume<std::uint8_t> v;
    v.data = Tensor<std::uint8_t>::full({1, 2, 40000}, 3);
    const std::vector<std::uint8_t> bytes = serialize_nifti(v, true);
    EXPECT_EQ(parse_nifti_header(bytes.data(), bytes.size()).version, 2);
    const Volume<std::uint8_t> back = parse_nifti<std::uint8_t>(bytes.data(), bytes.size());
    EXPECT_TENSOR_EQ(back.data, v.data);
    EXPECT_EQ(back.affine, identity_affine());
}

TEST(Nifti, VolumeLikeKeepsTheGeometry) {
    const Volume<float> image = read_nifti<float>(Nifti("index_i16.nii"));
    const Volume<std::uint8_t> mask = volume_like(image, Tensor<std::uint8_t>::full({3, 4, 5}, 1));
    const std::string path = TempPath("mask.nii.gz");
    write_nifti(path, mask);
    const Volume<std::uint8_t> back = read_nifti<std::uint8_t>(path);
    EXPECT_EQ(back.affine, image.affine);
    EXPECT_EQ(back.spacing, image.spacing);
    EXPECT_EQ(back.datatype, NiftiDataType::uint8);
}

TEST(Nifti, WriterRefusesWhatAFileCannotHold) {
    Volume<float> v;
    v.data = Tensor<float>({2, 2, 2});
    const std::string path = TempPath("bad.nii");
    const auto writing = [&](const Volume<float>& volume, const std::string& to) {
        return [&volume, to] { write_nifti(to, volume); };
    };
    EXPECT_THAT(writing(v, TempPath("bad.nifti")),
                ThrowsMessage<io_error>(HasSubstr("expected a file name ending in .nii or .nii.gz")));
    Volume<float> flat = v;
    flat.data = Tensor<float>({2, 2});
    EXPECT_THAT(
        writing(flat, path),
        ThrowsMessage<shape_error>(HasSubstr("expected data [nz, ny, nx] or [nt, nz, ny, nx], got [2, 2]")));
    flat.data = Tensor<float>({2, 0, 2});
    EXPECT_THAT(writing(flat, path), ThrowsMessage<shape_error>(HasSubstr("expected every length >= 1")));
    Volume<float> sheared = v;
    sheared.affine = NibabelAffine("sheared_sform.nii");
    sheared.qform_code = 1;
    sheared.sform_code = 0;
    EXPECT_THAT(writing(sheared, path),
                ThrowsMessage<io_error>(
                    HasSubstr("qform_code is 1 and sform_code 0, but the affine's columns are not "
                              "orthogonal (a shear), which a qform cannot hold")));
    Volume<float> sizes = v;
    sizes.affine = kAffine;
    sizes.qform_code = 1;  // spacing stays 1, 1, 1
    sizes.sform_code = 0;
    EXPECT_THAT(writing(sizes, path),
                ThrowsMessage<io_error>(HasSubstr("the affine's column 0 has length 0.5 but the "
                                                  "voxel size is 1")));
    Volume<float> singular = v;
    singular.affine[1][1] = 0.0;
    singular.qform_code = 1;
    EXPECT_THAT(
        writing(singular, path),
        ThrowsMessage<io_error>(HasSubstr("qform_code is 1, but the affine is singular (a zero column")));
    Volume<float> lost = v;
    lost.affine = kAffine;
    lost.sform_code = 0;
    EXPECT_THAT(writing(lost, path),
                ThrowsMessage<io_error>(HasSubstr("sform_code and qform_code are 0, so the file "
                                                  "would hold no affine")));
    Volume<float> wordy = v;
    wordy.description = std::string(81, 'x');
    EXPECT_THAT(writing(wordy, path),
                ThrowsMessage<io_error>(HasSubstr("description has 81 characters, at most 80")));
    Volume<float> code = v;
    code.sform_code = 6;
    EXPECT_THAT(writing(code, path),
                ThrowsMessage<io_error>(HasSubstr("sform_code is 6, expected a NIfTI transform "
                                                  "code 0 to 5")));
    EXPECT_THAT(writing(v, TempPath("no_such_dir") + "/x.nii"),
                ThrowsMessage<io_error>(HasSubstr("cannot create the temporary file")));
    EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace vit3d::io
