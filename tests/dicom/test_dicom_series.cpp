// Tests for vit3d/dicom/series.hpp and slice.hpp: the synthetic series of tests/fixtures/make_dicom_series.py
// read as SimpleITK's ImageSeriesReader reads them (voxels exactly; spacing and affine within 1e-6 mm, the
// rounding of the decimal strings that SimpleITK and vit3d turn into numbers in different orders), the
// compressed transfer syntaxes (RLE, JPEG lossless, JPEG-LS, JPEG 2000), pydicom's values where SimpleITK
// reads otherwise (per-slice rescale, 12 stored bits, MONOCHROME1), listing, choosing a series, and every
// refusal.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <vit3d/dicom/series.hpp>
#include <vit3d/formats/npy.hpp>

#include "support/affine_testing.hpp"
#include "support/io_testing.hpp"

namespace vit3d::dicom {
namespace {

using test::AffinesNear;
using test::FixturePath;
using test::ReadBytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;
using transforms::Affine;

constexpr double kGeometryTolerance = 1e-6;  // mm; and for the direction cosines

std::string Dicom(const std::string& name) { return FixturePath("dicom/" + name); }

// What SimpleITK read from a series: voxels [z, y, x], spacing (x, y, z), and the affine in RAS.
struct SitkRead {
    Tensor<double> voxels;
    std::array<double, 3> spacing{};
    Affine affine{};
    std::vector<std::string> files;
};

SitkRead Sitk(const std::string& name) {
    SitkRead out;
    out.voxels = io::read_npy<double>(Dicom(name + ".sitk_voxels.npy"));
    const Tensor<double> g = io::read_npy<double>(Dicom(name + ".sitk_geometry.npy"));  // [5, 3]
    for (int a = 0; a < 3; ++a) out.spacing[a] = g(0, a);
    out.affine = transforms::identity_affine();
    for (int r = 0; r < 3; ++r) {
        const double sign = r < 2 ? -1.0 : 1.0;  // SimpleITK's LPS -> RAS
        for (int c = 0; c < 3; ++c) out.affine[r][c] = sign * g(2 + r, c) * out.spacing[c];
        out.affine[r][3] = sign * g(1, r);
    }
    std::ifstream list(Dicom(name + ".sitk_files.txt"));
    for (std::string line; std::getline(list, line);)
        if (!line.empty()) out.files.push_back(line);
    return out;
}

template <class T>
::testing::AssertionResult SameVoxels(const Tensor<T>& actual, const Tensor<double>& expected) {
    if (actual.shape() != expected.shape())
        return ::testing::AssertionFailure()
               << "shape " << message(actual.shape()) << ", expected " << message(expected.shape());
    for (Index p = 0; p < actual.size(); ++p)
        if (static_cast<double>(actual.data()[p]) != expected.data()[p]) {
            const Index nx = actual.dim(2), ny = actual.dim(1);
            return ::testing::AssertionFailure()
                   << "voxel (k, j, i) = (" << p / (nx * ny) << ", " << p / nx % ny << ", " << p % nx
                   << ") is " << static_cast<double>(actual.data()[p]) << ", expected " << expected.data()[p];
        }
    return ::testing::AssertionSuccess();
}

std::vector<std::string> FileNames(const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const std::string& p : paths) out.push_back(std::filesystem::path(p).filename().string());
    return out;
}

template <class T>
void ExpectLikeSitk(const SeriesVolume<T>& read, const std::string& name) {
    const SitkRead expected = Sitk(name);
    EXPECT_TRUE(SameVoxels(read.volume.data, expected.voxels));
    for (int a = 0; a < 3; ++a)
        EXPECT_NEAR(read.volume.spacing[2 - a], expected.spacing[a], kGeometryTolerance) << "axis " << a;
    EXPECT_TRUE(AffinesNear(read.volume.affine, expected.affine, kGeometryTolerance));
    EXPECT_EQ(FileNames(read.facts.files), expected.files);
    EXPECT_EQ(read.volume.sform_code, 1);
    EXPECT_EQ(read.volume.affine_source, io::AffineSource::sform);
}

// ---- parity with SimpleITK
// ---------------------------------------------------------------------------------

TEST(DicomSeries, CtReadsAsSimpleItkReadsIt) {
    ExpectLikeSitk(read_series<double>(Dicom("ct_axial")), "ct_axial");
    ExpectLikeSitk(read_series<float>(Dicom("ct_axial")), "ct_axial");
    ExpectLikeSitk(read_series<std::int16_t>(Dicom("ct_axial")), "ct_axial");  // HU are exact in int16
}

TEST(DicomSeries, CompressedSeriesReadAsTheUncompressedOne) {
    for (const char* name : {"ct_rle", "ct_jpeg_lossless", "ct_jpegls", "ct_j2k"}) {
        SCOPED_TRACE(name);
        const SeriesVolume<std::int16_t> read = read_series<std::int16_t>(Dicom(name));
        ExpectLikeSitk(read, name);
        EXPECT_TRUE(SameVoxels(read.volume.data, Sitk("ct_axial").voxels));
    }
    EXPECT_EQ(read_series<float>(Dicom("ct_rle")).facts.transfer_syntax, "1.2.840.10008.1.2.5");
    EXPECT_EQ(read_series<float>(Dicom("ct_jpeg_lossless")).facts.transfer_syntax, "1.2.840.10008.1.2.4.70");
    EXPECT_EQ(read_series<float>(Dicom("ct_j2k")).facts.transfer_syntax, "1.2.840.10008.1.2.4.90");
    EXPECT_EQ(read_series<float>(Dicom("ct_jpegls")).facts.transfer_syntax, "1.2.840.10008.1.2.4.80");
}

TEST(DicomSeries, ObliqueMrReadsAsSimpleItkReadsIt) {
    ExpectLikeSitk(read_series<double>(Dicom("mr_oblique")), "mr_oblique");
    ExpectLikeSitk(read_series<float>(Dicom("mr_oblique")), "mr_oblique");  // 2.5 v + 10 is exact in float
}

TEST(DicomSeries, GeometryFollowsTheDicomConventions) {
    // ct_axial: row cosines (1, 0, 0), column cosines (0, 1, 0); PixelSpacing 0.7 between rows, 0.6 between
    // columns; positions z = 100 - 2.5 k in file order, so z = 85 comes first along the normal (0, 0, 1).
    const SeriesVolume<float> read = read_series<float>(Dicom("ct_axial"));
    EXPECT_EQ(read.volume.data.shape(), (Shape{7, 12, 10}));
    EXPECT_EQ(read.volume.spacing, (std::array<double, 3>{2.5, 0.7, 0.6}));
    const Affine expected = {{{-0.6, 0, 0, 30}, {0, -0.7, 0, 40}, {0, 0, 2.5, 85}, {0, 0, 0, 1}}};
    EXPECT_TRUE(AffinesNear(read.volume.affine, expected, 1e-12));
    // Stored value 3 i + 37 j + 311 k - 1000 at column i, row j of the k-th slice in file-creation order.
    EXPECT_EQ(read.volume.data(0, 0, 0), 311 * 6 - 1000 - 1024);
    EXPECT_EQ(read.volume.data(6, 11, 9), 27 + 37 * 11 - 1000 - 1024);
    EXPECT_EQ(read.facts.positions.front(), (std::array<double, 3>{-30, -40, 85}));
    EXPECT_EQ(read.facts.positions.back(), (std::array<double, 3>{-30, -40, 100}));
    EXPECT_EQ(read.facts.normal, (std::array<double, 3>{0, 0, 1}));
    EXPECT_EQ(read.facts.pixel_spacing, (std::array<double, 2>{0.7, 0.6}));
    EXPECT_EQ(read.facts.slice_spacing, 2.5);
}

TEST(DicomSeries, FactsComeAlongsideTheVolume) {
    const SeriesVolume<float> ct = read_series<float>(Dicom("ct_axial"));
    EXPECT_EQ(ct.facts.series_uid, "1.2.826.0.1.3680043.10.1234.10");
    EXPECT_EQ(ct.facts.study_uid, "1.2.826.0.1.3680043.10.1234.1");
    EXPECT_EQ(ct.facts.modality, "CT");
    EXPECT_EQ(ct.facts.description, "CT axial");
    EXPECT_EQ(ct.facts.photometric, "MONOCHROME2");
    EXPECT_EQ(ct.facts.transfer_syntax, "1.2.840.10008.1.2.1");
    EXPECT_EQ(ct.facts.window_center, std::vector<double>{40});
    EXPECT_EQ(ct.facts.window_width, std::vector<double>{400});
    EXPECT_EQ(ct.facts.bits_allocated, 16);
    EXPECT_TRUE(ct.facts.is_signed);
    EXPECT_EQ(ct.facts.rescale_intercept, std::vector<double>(7, -1024.0));
    EXPECT_EQ(ct.facts.sop_instance_uids.size(), 7u);
    EXPECT_EQ(ct.volume.datatype, io::NiftiDataType::int16);
    EXPECT_EQ(ct.volume.description, "CT axial");
    EXPECT_TRUE(ct.volume.scaled);
    EXPECT_EQ(ct.volume.scl_slope, 1.0);
    EXPECT_EQ(ct.volume.scl_inter, -1024.0);

    const SeriesVolume<float> mr = read_series<float>(Dicom("mr_oblique"));
    EXPECT_EQ(mr.facts.modality, "MR");
    EXPECT_EQ(mr.facts.transfer_syntax, "1.2.840.10008.1.2");  // implicit VR little endian
    EXPECT_TRUE(mr.facts.window_center.empty());
    EXPECT_EQ(mr.volume.datatype, io::NiftiDataType::uint16);
}

TEST(DicomSeries, SingleSliceTakesItsThicknessAlongZ) {
    const SeriesVolume<std::int16_t> read = read_series<std::int16_t>(Dicom("single_slice"));
    const SitkRead sitk = Sitk("single_slice");  // SimpleITK gives one slice spacing 1 along z
    EXPECT_TRUE(SameVoxels(read.volume.data, sitk.voxels));
    EXPECT_EQ(read.volume.spacing, (std::array<double, 3>{3.0, 0.7, 0.6}));  // SliceThickness 3
    Affine expected = sitk.affine;
    expected[2][2] = 3.0;
    EXPECT_TRUE(AffinesNear(read.volume.affine, expected, kGeometryTolerance));
}

// ---- pydicom's values where SimpleITK reads otherwise ---------------------------------------------------

TEST(DicomSeries, EachSliceHasItsOwnRescale) {
    // SimpleITK takes the first file's pixel type; pydicom: each slice's pixel_array x slope + intercept.
    const SeriesVolume<double> read = read_series<double>(Dicom("per_slice_rescale"));
    EXPECT_TRUE(
        SameVoxels(read.volume.data, io::read_npy<double>(Dicom("per_slice_rescale.pydicom_voxels.npy"))));
    EXPECT_EQ(read.volume.scl_slope, 0.0);  // no one slope for the whole series
    EXPECT_THAT(
        [] { (void)read_series<std::int32_t>(Dicom("per_slice_rescale")); },
        ThrowsMessage<io_error>(AllOf(HasSubstr("cannot hold exactly"),
                                      HasSubstr("(stored 555 x RescaleSlope 1.75 + RescaleIntercept -982.5)"),
                                      HasSubstr("read the series as float or double"))));
}

TEST(DicomSeries, BitsAboveTheHighBitAreNotPartOfTheValue) {
    const SeriesVolume<double> read = read_series<double>(Dicom("bits_stored_12"));
    EXPECT_TRUE(
        SameVoxels(read.volume.data, io::read_npy<double>(Dicom("bits_stored_12.pydicom_voxels.npy"))));
    EXPECT_EQ(read.facts.bits_stored, 12);
}

TEST(DicomSeries, Monochrome1IsReadAsStored) {
    const SeriesVolume<double> read = read_series<double>(Dicom("monochrome1"));
    EXPECT_TRUE(SameVoxels(read.volume.data, io::read_npy<double>(Dicom("monochrome1.pydicom_voxels.npy"))));
    EXPECT_EQ(read.facts.photometric, "MONOCHROME1");
}

// ---- listing and choosing a series ---------------------------------------------------------------------

TEST(DicomSeries, ListsTheSeriesOfAFolderAndSkipsOtherFiles) {
    const std::vector<SeriesInfo> list = list_series(Dicom("two_series"));
    ASSERT_EQ(list.size(), 2u);  // notes.txt skipped
    EXPECT_EQ(list[0].series_uid, "1.2.826.0.1.3680043.10.1234.30");
    EXPECT_EQ(list[0].modality, "CT");
    EXPECT_EQ(list[0].description, "CT of two");
    EXPECT_EQ(list[0].shape(), (Shape{7, 12, 10}));
    EXPECT_EQ(list[0].part, 0);
    EXPECT_EQ(list[1].series_uid, "1.2.826.0.1.3680043.10.1234.31");
    EXPECT_EQ(list[1].modality, "MR");
    EXPECT_EQ(list[1].shape(), (Shape{3, 12, 10}));
    EXPECT_EQ(FileNames(list[1].files), (std::vector<std::string>{"B00", "B01", "B02"}));
}

TEST(DicomSeries, SeveralSeriesNeedAChoice) {
    EXPECT_THAT([] { (void)read_series<float>(Dicom("two_series")); },
                ThrowsMessage<io_error>(AllOf(
                    StartsWith("vit3d::dicom::read_series(\"" + Dicom("two_series") +
                               "\"): expected one series, found 2"),
                    HasSubstr("choose one with ReadOptions::series_uid"),
                    HasSubstr("1.2.826.0.1.3680043.10.1234.30 (CT \"CT of two\", 7 slices of 12 x 10)"),
                    HasSubstr("1.2.826.0.1.3680043.10.1234.31 (MR \"MR of two\", 3 slices of 12 x 10)"))));
    ReadOptions options;
    options.series_uid = "1.2.826.0.1.3680043.10.1234.31";
    ExpectLikeSitk(read_series<double>(Dicom("two_series"), options), "two_series.31");
    options.series_uid = "1.2.826.0.1.3680043.10.1234.30";
    ExpectLikeSitk(read_series<std::int16_t>(Dicom("two_series"), options), "two_series.30");
    ExpectLikeSitk(read_series<std::int16_t>(list_series(Dicom("two_series"))[0]), "two_series.30");
    options.series_uid = "1.2.3";
    EXPECT_THAT([&] { (void)read_series<float>(Dicom("two_series"), options); },
                ThrowsMessage<io_error>(AllOf(HasSubstr("no series has SeriesInstanceUID \"1.2.3\""),
                                              HasSubstr("1.2.826.0.1.3680043.10.1234.31 (MR"))));
}

TEST(DicomSeries, ReadsAnExplicitListOfFiles) {
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(Dicom("mr_oblique")))
        files.push_back(entry.path().string());
    ExpectLikeSitk(read_series<double>(files), "mr_oblique");
    EXPECT_EQ(list_series(files).size(), 1u);
}

TEST(DicomSeries, AFolderWithoutDicomImagesIsRefused) {
    const std::string folder = test::TempPath("not_dicom");
    std::filesystem::create_directories(folder);
    test::WriteBytes(folder + "/a.txt", test::Bytes("hello"));
    std::filesystem::copy_file(Dicom("no_pixels.dcm"), folder + "/no_pixels.dcm");
    EXPECT_TRUE(list_series(folder).empty());
    EXPECT_THAT([&] { (void)read_series<float>(folder); },
                ThrowsMessage<io_error>(HasSubstr("expected DICOM images, found none (2 files skipped: not "
                                                  "DICOM Part 10, or without an image)")));
    EXPECT_THAT([&] { (void)read_series<float>(folder + "/missing"); },
                ThrowsMessage<io_error>(HasSubstr("expected a folder of DICOM files, got no such folder")));
}

// ---- refusals
// ----------------------------------------------------------------------------------------------

template <class Matcher>
void ExpectRefused(const std::string& name, Matcher matcher, ReadOptions options = {}) {
    SCOPED_TRACE(name);
    const std::string where = "vit3d::dicom::read_series(\"" + Dicom(name) + "\"): ";
    EXPECT_THAT([&] { (void)read_series<float>(Dicom(name), options); },
                ThrowsMessage<io_error>(AllOf(StartsWith(where), matcher)));
}

TEST(DicomSeries, RefusesMissingSlices) {
    ExpectRefused("missing_slice", AllOf(HasSubstr("missing slice(s): slice 2 (file"),
                                         HasSubstr(" are 5 mm apart along the slice "
                                                   "normal, about 2 times the median step 2.5 mm"),
                                         HasSubstr("expected every step within 1% of the median")));
}

TEST(DicomSeries, RefusesDuplicatePositions) {
    ExpectRefused("duplicate_position", AllOf(HasSubstr("duplicate slice position: slice 1 (file"),
                                              HasSubstr("ImagePositionPatient [-30, -40, 90])"),
                                              HasSubstr("are 0 mm apart along the slice normal")));
}

TEST(DicomSeries, RefusesNonUniformSpacingUnlessTolerated) {
    ExpectRefused("nonuniform", AllOf(HasSubstr("non-uniform slice spacing: slice 1"),
                                      HasSubstr("ImagePositionPatient [-30, -40, 90.5]) are 3 mm apart along "
                                                "the slice normal, the median step is 2.5 mm"),
                                      HasSubstr("(ReadOptions::spacing_tolerance)")));
    ReadOptions tolerant;
    tolerant.spacing_tolerance = 0.25;
    EXPECT_EQ(read_series<float>(Dicom("nonuniform"), tolerant).volume.data.dim(0), 7);
}

TEST(DicomSeries, RefusesGantryTilt) {
    ExpectRefused("tilted",
                  AllOf(HasSubstr("the slice positions do not lie along the slice normal [0, 0, 1] "
                                  "(gantry tilt or a sheared volume): slice 1"),
                        HasSubstr("a tilt of 15"), HasSubstr("vit3d does not resample tilted series")));
}

TEST(DicomSeries, RefusesDifferentGeometryWithinASeries) {
    ExpectRefused("mixed_size",
                  AllOf(HasSubstr("holds 2 parts whose rows, columns or ImageOrientationPatient differ"),
                        HasSubstr("part 1 (CT \"CT axial\", 6 slices of 12 x 10)"),
                        HasSubstr("part 2 (CT \"CT axial\", 1 slice of 12 x 11)"),
                        HasSubstr("read one part with ReadOptions::part")));
    ExpectRefused("mixed_orientation",
                  HasSubstr("holds 2 parts whose rows, columns or ImageOrientationPatient differ"));
    ExpectRefused("mixed_spacing",
                  AllOf(HasSubstr("expected the same PixelSpacing in every slice, got [0.7, 0.6] and "
                                  "[0.7, 0.65]")));
    // A part is a series of its own: this one lacks a slice.
    ReadOptions part;
    part.part = 1;
    ExpectRefused("mixed_size", HasSubstr("missing slice(s)"), part);
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(Dicom("mixed_size")))
        files.push_back(entry.path().string());
    EXPECT_THAT([&] { (void)detail::read_series_files<float>(files, {}, "x: "); },
                ThrowsMessage<io_error>(
                    HasSubstr("expected the same rows and columns in every slice, got 12 x 10 and 12 x 11")));
}

TEST(DicomSeries, RefusesMultiFrameAndColourImages) {
    ExpectRefused("multiframe",
                  HasSubstr("expected single-frame slices, got a multi-frame image of 2 frames"));
    ExpectRefused("color",
                  HasSubstr("expected a greyscale image (MONOCHROME1 or MONOCHROME2, 1 sample per pixel), "
                            "got \"RGB\" with 3 samples per pixel"));
}

TEST(DicomSeries, RefusesFilesWithoutAnImage) {
    const std::string path = Dicom("no_pixels.dcm");
    EXPECT_THAT([&] { (void)read_series<float>(std::vector<std::string>{path}); },
                ThrowsMessage<io_error>(HasSubstr("file \"" + path +
                                                  "\": it has no pixel data (7FE0,0010), SOP class "
                                                  "\"1.2.840.10008.5.1.4.1.1.2\": not an image")));
    const std::string text = Dicom("ct_axial.sitk_files.txt");
    EXPECT_THAT([&] { (void)list_series(std::vector<std::string>{text}); },
                ThrowsMessage<io_error>(
                    HasSubstr("not a DICOM file: expected \"DICM\" at byte 128 (DICOM Part 10), got a "
                              "file of ")));
}

TEST(DicomSeries, RefusesValuesAnIntegerTypeCannotHold) {
    // MR: 2.5 x stored + 10 is x.5 for odd stored values.
    EXPECT_THAT(
        [] { (void)read_series<std::int32_t>(Dicom("mr_oblique")); },
        ThrowsMessage<io_error>(AllOf(HasSubstr("slice 0 (file"),
                                      HasSubstr("pixel (column, row) = (1, 0) is 2517.5 (stored 1003 x "
                                                "RescaleSlope 2.5 + RescaleIntercept 10), which int32 "
                                                "cannot hold exactly"))));
    EXPECT_THAT(
        [] { (void)read_series<std::uint8_t>(Dicom("ct_axial")); },
        ThrowsMessage<io_error>(HasSubstr("which uint8 cannot hold exactly; expected integers in [0, 255]")));
}

// ---- one file from memory ------------------------------------------------------------------------------

TEST(DicomSlice, ParsesFromMemoryAsFromFiles) {
    std::vector<Slice> slices;
    for (const auto& entry : std::filesystem::directory_iterator(Dicom("ct_j2k"))) {
        const std::vector<std::uint8_t> bytes = ReadBytes(entry.path().string());
        slices.push_back(parse_slice(bytes.data(), bytes.size(), entry.path().string()));
    }
    std::vector<Slice> headers;
    for (const Slice& s : slices) {
        const std::vector<std::uint8_t> bytes = ReadBytes(s.source);
        headers.push_back(parse_slice(bytes.data(), bytes.size(), s.source, /*decode=*/false));
    }
    const SeriesVolume<std::int16_t> read = assemble_series<std::int16_t>(std::move(slices));
    EXPECT_TRUE(SameVoxels(read.volume.data, Sitk("ct_axial").voxels));
    EXPECT_THAT(
        [&] { (void)assemble_series<float>(headers); },
        ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::dicom::assemble_series: slice 0 (file "),
                                      HasSubstr("has 0 decoded pixels, expected 120 (parse slices with "
                                                "decode = true)"))));
}

TEST(DicomSlice, RefusesEveryTruncationWithAnIoError) {
    const std::vector<std::uint8_t> bytes = ReadBytes(Dicom("ct_jpeg_lossless/IM0000.dcm"));
    for (std::size_t size = 0; size < bytes.size(); size += size < 140 ? 1 : 7) {
        try {
            const Slice s = parse_slice(bytes.data(), size, "cut");
            // GDCM may read a file cut inside the pixel data's last fragment, never fewer pixels.
            EXPECT_EQ(s.pixels.size(), 120u) << size;
        } catch (const io_error& e) {
            EXPECT_THAT(e.what(), StartsWith("vit3d::dicom::parse_slice(\"cut\"): ")) << size;
        }
    }
}

// Inputs that aborted or crashed GDCM before vit3d checked the file's structure and attributes
// (tests/fuzz/corpus/dicom/): each must now be an io_error saying what is wrong.
TEST(DicomSlice, FuzzFindingsAreRefusedBeforeGdcmSeesThem) {
    const std::string corpus = FixturePath("../fuzz/corpus/dicom/");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"fuzz_cut_in_meta.dcm", "the file ends with its file meta information, before any data set"},
        {"fuzz_meta_unknown_vr.dcm",
         "expected a value representation after tag (0002,0000), got bytes 85 68"},
        {"fuzz_j2k_marker_past_end.dcm",
         "a JPEG 2000 codestream whose marker segments do not fit its fragments"},
        {"fuzz_j2k_size_mismatch.dcm",
         "the compressed image's header (transfer syntax \"1.2.840.10008.1.2.4.90\") does not match Rows 12, "
         "Columns 10, SamplesPerPixel 1 and BitsAllocated 16"},
        {"fuzz_jpeg_extraneous_bytes.dcm",
         "the compressed image's header (transfer syntax \"1.2.840.10008.1.2.4.70\")"},
        {"fuzz_intercept_without_slope.dcm",
         "expected RescaleSlope (0028,1053) with RescaleIntercept (0028,1052), got an intercept alone"},
        {"fuzz_samples_per_pixel.dcm", "expected SamplesPerPixel (0028,0002) 1 or 3, got 10241"},
        {"fuzz_rows_not_us.dcm", "expected value representation US for (0028,0010), got SS"},
        {"fuzz_native_pixels_short.dcm",
         "the pixel data (7FE0,0010) holds 240 bytes, expected 15600 (780 rows x 10 columns of 16 bits; "
         "truncated?)"},
        {"fuzz_no_fragment.dcm",
         "the encapsulated pixel data (7FE0,0010) has no fragment after its offset table"},
        {"fuzz_not_image_storage.dcm", "\" is not an image storage class GDCM decodes"},
        {"fuzz_retired_jpeg_syntax.dcm", "transfer syntax \"1.2.840.10008.1.2.4.55\" is not read"},
        {"invalid_truncated.dcm",
         "malformed DICOM at byte 700: element (0028,0102) of the data set has 2 bytes, the file has 0 after "
         "its header (truncated?) (file of 700 bytes)"},
    };
    for (const auto& [name, expected] : cases) {
        SCOPED_TRACE(name);
        const std::vector<std::uint8_t> bytes = ReadBytes(corpus + name);
        EXPECT_THAT([&] { (void)parse_slice(bytes.data(), bytes.size(), name); },
                    ThrowsMessage<io_error>(AllOf(StartsWith("vit3d::dicom::parse_slice(\"" + name + "\"): "),
                                                  HasSubstr(expected))));
    }
}

}  // namespace
}  // namespace vit3d::dicom
