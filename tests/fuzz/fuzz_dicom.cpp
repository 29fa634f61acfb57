// libFuzzer target for vit3d's DICOM file parsing (vit3d/dicom/slice.hpp: the element structure walk, GDCM's
// parsing and decoding, the attributes vit3d reads) and a one-slice series built from it (series.hpp), from
// memory. Any input must either parse or throw vit3d::io_error; every other exception, a crash, an abort
// (GDCM's assertions), a leak or a sanitizer report is a bug. A file parsed without decoding must give the
// same header; a slice that reads as a double volume must read as float, and as int32 exactly when every
// value is an integer. GDCM itself is not instrumented, so coverage guides only through vit3d's code.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>
#include <vit3d/dicom/series.hpp>

namespace {

// Like assert, but also in release builds.
void require(bool condition) {
    if (!condition) std::abort();
}

}  // namespace

// Leaks inside GDCM 3.0.21 that vit3d cannot free: JPEG2000Codec::GetHeaderInfo does not destroy its
// openjpeg decoder when opj_read_header refuses a codestream (about 20 KB per such file);
// JPEGLSCodec::GetHeaderInfo and Decode do not free their copy of the frame when CharLS refuses it; the JPEG
// codec does not release libjpeg's memory when libjpeg fails on corrupt scan data (GDCM's own copy of
// libjpeg, libgdcmjpeg8/12/16; up to the size of the image). Suppressed for those allocations only, so that
// fuzzing goes on to other faults and vit3d's own allocations are still checked.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libopenjp2.so\nleak:gdcm::JPEGLSCodec::\nleak:libgdcmjpeg\n";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vit3d;
    std::optional<dicom::Slice> slice;
    try {
        slice.emplace(dicom::parse_slice(data, size, "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    const dicom::Slice header = dicom::parse_slice(data, size, "fuzz", false);
    require(header.series_uid == slice->series_uid && header.rows == slice->rows &&
            header.columns == slice->columns && header.position == slice->position);
    require(static_cast<Index>(slice->pixels.size()) ==
            slice->rows * slice->columns * slice->frames * slice->samples_per_pixel);

    std::optional<dicom::SeriesVolume<double>> volume;
    try {
        volume.emplace(dicom::assemble_series<double>({*slice}));
    } catch (const io_error&) {
        return 0;  // no geometry, several frames, colour, ...
    }
    const io::Volume<double>& v = volume->volume;
    require(v.data.shape() == (Shape{1, slice->rows, slice->columns}));
    const dicom::SeriesVolume<float> as_float = dicom::assemble_series<float>({*slice});
    require(as_float.volume.data.shape() == v.data.shape());
    bool integral = true;
    for (Index i = 0; i < v.data.size(); ++i) {
        const double x = v.data.data()[i];
        integral = integral && std::isfinite(x) && x == std::trunc(x) && std::abs(x) < 2147483648.0;
    }
    try {
        const dicom::SeriesVolume<std::int32_t> labels =
            dicom::assemble_series<std::int32_t>({std::move(*slice)});
        require(integral);
        for (Index i = 0; i < v.data.size(); ++i) require(labels.volume.data.data()[i] == v.data.data()[i]);
    } catch (const io_error&) {
        require(!integral);
    }
    for (const auto& row : v.affine)
        for (const double x : row) require(std::isfinite(x));
    return 0;
}
