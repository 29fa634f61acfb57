// libFuzzer target for vit3d's NIfTI reader (vit3d/formats/nifti.hpp: its own header validation, the gzip
// decompression of .nii.gz and the voxel decoding), from memory. Any input must either parse or throw
// vit3d::io_error; every other exception, a crash, a leak or a sanitizer report is a bug. A volume that
// reads as double must read as float too, its header must say its shape, and written back (as .nii, or
// .nii.gz for odd-sized inputs) it must read back with the same voxels bit for bit, the same codes, and
// the affine rounded as the output format stores it. Writing may refuse only a volume with a qform, which
// needs an affine the qform can hold.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vit3d/formats/nifti.hpp>

namespace {

// Like assert, but also in release builds.
void require(bool condition) {
    if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vit3d;
    using namespace vit3d::io;
    std::optional<NiftiHeader> header;
    try {
        header.emplace(parse_nifti_header(data, size, "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    std::optional<Volume<double>> volume;
    try {
        volume.emplace(parse_nifti<double>(data, size, "fuzz"));
    } catch (const io_error&) {
        return 0;  // the data do not match the header (size, compression)
    }
    const Volume<double>& v = *volume;
    require(v.data.shape() == header->tensor_shape());
    require(parse_nifti<float>(data, size, "fuzz").data.shape() == v.data.shape());
    require(parse_nifti<double>(data, size, "fuzz", NiftiScaling::raw).data.shape() == v.data.shape());
    try {
        const Volume<std::int16_t> labels = parse_nifti<std::int16_t>(data, size, "fuzz");
        for (Index i = 0; i < labels.data.size(); ++i) require(labels.data.data()[i] == v.data.data()[i]);
    } catch (const io_error&) {
        // some voxel is not an int16
    }

    std::vector<std::uint8_t> bytes;
    try {
        bytes = serialize_nifti(v, size % 2 == 1);
    } catch (const io_error&) {
        require(v.qform_code > 0);
        return 0;
    }
    const Volume<double> back = parse_nifti<double>(bytes.data(), bytes.size(), "fuzz (written back)");
    require(back.data.shape() == v.data.shape());
    require(std::memcmp(back.data.data(), v.data.data(),
                        static_cast<std::size_t>(v.data.size()) * sizeof(double)) == 0);
    require(back.sform_code == v.sform_code && back.qform_code == v.qform_code);
    require(back.intent_code == v.intent_code && back.intent_name == v.intent_name);
    require(back.description == v.description);
    if (back.affine_source == AffineSource::sform || back.affine_source == AffineSource::pixdim) {
        const bool nifti1 = parse_nifti_header(bytes.data(), bytes.size()).version == 1;
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) {
                const double expected =
                    nifti1 ? static_cast<double>(io::f32_from_double(v.affine[r][c])) : v.affine[r][c];
                require(back.affine[r][c] == expected);
            }
    }
    return 0;
}
