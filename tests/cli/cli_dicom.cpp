// vit3d-infer on DICOM series folders (tools/vit3d-infer/dicom_input.hpp): a folder of DICOM files is one
// input, preprocessed as the same volume written as NIfTI is; a folder of such folders gives one input per
// series folder, each output named after its folder; a folder of two series fails as an input, naming them.
// Built when vit3d::dicom exists (tests/cli/CMakeLists.txt).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli_runner.hpp"
#include "vit3d/dicom/series.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"

namespace {

using namespace vit3d_cli_test;
using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;

const std::string vitpt3d = model("vit_pytorch_vit3d_f32");  // 3D, BCDHW [8, 16, 16]

class CliDicom : public CliTest {
  protected:
    // A copy of the fixture series `name` as `folder`.
    void copy_series(const std::string& name, const std::string& folder) {
        fs::create_directories(fs::path(folder).parent_path());
        fs::copy(fixture("dicom/" + name), folder, fs::copy_options::recursive);
    }
};

TEST_F(CliDicom, ASeriesFolderIsOneVolumeInput) {
    copy_series("ct_axial", path("scans/patient1"));
    const Result r = infer(
        {"-w", vitpt3d, "-i", path("scans/patient1") + "/", "-o", path("o.npy"), "--save-input", path("in")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out + r.err, HasSubstr("[7, 12, 10]"));

    // The same volume as NIfTI goes through the same preprocessing.
    io::write_nifti(path("patient1.nii"), vit3d::dicom::read_series<float>(path("scans/patient1")).volume);
    ASSERT_EQ(infer({"-w", vitpt3d, "-i", path("patient1.nii"), "-o", path("n.npy"), "--save-input",
                     path("nifti_in")})
                  .code,
              0);
    const Tensor<float> dicom = io::read_npy<float>(path("in/patient1.npy"));
    const Tensor<float> nifti = io::read_npy<float>(path("nifti_in/patient1.npy"));
    ASSERT_EQ(dicom.shape(), (vit3d::Shape{1, 1, 8, 16, 16}));
    ASSERT_EQ(dicom.shape(), nifti.shape());
    for (Index i = 0; i < dicom.size(); ++i) ASSERT_EQ(dicom.data()[i], nifti.data()[i]) << "element " << i;
    EXPECT_EQ(io::read_npy<float>(path("o.npy")).shape(), io::read_npy<float>(path("n.npy")).shape());
}

TEST_F(CliDicom, AFolderOfSeriesFoldersIsOneInputPerFolder) {
    copy_series("ct_axial", path("scans/patient1"));
    copy_series("mr_oblique", path("scans/patient2"));
    copy_series("ct_rle", path("scans/1.2.840.5"));  // named by a UID: the whole name names the output
    const Result r = infer({"-w", vitpt3d, "-i", path("scans"), "-o", path("out")});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(names_in(path("out")), with_records({"1.2.840.5.npy", "patient1.npy", "patient2.npy"}));
}

TEST_F(CliDicom, AFolderOfTwoSeriesFailsNamingThem) {
    copy_series("two_series", path("both"));
    const Result r = infer({"-w", vitpt3d, "-i", path("both"), "-o", path("o.npy")});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("vit3d-infer: " + path("both") + ": failed: "));
    EXPECT_THAT(r.err, HasSubstr("expected one series, found 2; choose one with ReadOptions::series_uid"));
}

}  // namespace
