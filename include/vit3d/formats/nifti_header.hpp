#pragma once
// The NIfTI-1 and NIfTI-2 headers (https://nifti.nimh.nih.gov/nifti-1, nifti2.h): their layout, read and
// written by one field list per version (so the two directions cannot disagree), strict validation, and the
// voxel-to-world affine the header describes. No compression and no voxel data here: vit3d/formats/nifti.hpp
// builds the reader and writer on this. Needs nothing but vit3d::vit3d; part of the vit3d::nifti target.
//
// The affine: from the sform when sform_code > 0, else from the qform when qform_code > 0, else from the
// voxel sizes alone (diag(pixdim[1], pixdim[2], pixdim[3]), origin 0: the NIfTI standard's "method 1").
// That is the order the standard recommends and nibabel's get_best_affine() uses; the sform comes first
// because it can hold any affine (registration results, shears), while the qform is limited to a rotation
// and voxel sizes. The qform is computed as nibabel computes it (quaternion normalised, b^2 + c^2 + d^2 up
// to 1 + 3 epsilons of the header's float type accepted). Only in the last case does vit3d differ from
// nibabel, whose fallback is an ANALYZE-style affine centred on the volume with x flipped.

#include <algorithm>
#include <array>
#include <cmath>
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
#include "vit3d/formats/byte_order.hpp"
#include "vit3d/formats/exact_conversion.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/transforms/affine.hpp"

namespace vit3d::io {

// NIfTI datatype codes (nifti1.h DT_*). vit3d reads and writes the real scalar ones; the others (complex,
// RGB, float128, binary) are refused with their name.
enum class NiftiDataType : int {
    uint8 = 2,
    int16 = 4,
    int32 = 8,
    float32 = 16,
    complex64 = 32,
    float64 = 64,
    rgb24 = 128,
    int8 = 256,
    uint16 = 512,
    uint32 = 768,
    int64 = 1024,
    uint64 = 1280,
    float128 = 1536,
    complex128 = 1792,
    complex256 = 2048,
    rgba32 = 2304,
};

constexpr auto enum_names(NiftiDataType) {
    return enum_table<NiftiDataType>({{NiftiDataType::uint8, "uint8"},
                                      {NiftiDataType::int16, "int16"},
                                      {NiftiDataType::int32, "int32"},
                                      {NiftiDataType::float32, "float32"},
                                      {NiftiDataType::complex64, "complex64"},
                                      {NiftiDataType::float64, "float64"},
                                      {NiftiDataType::rgb24, "rgb24"},
                                      {NiftiDataType::int8, "int8"},
                                      {NiftiDataType::uint16, "uint16"},
                                      {NiftiDataType::uint32, "uint32"},
                                      {NiftiDataType::int64, "int64"},
                                      {NiftiDataType::uint64, "uint64"},
                                      {NiftiDataType::float128, "float128"},
                                      {NiftiDataType::complex128, "complex128"},
                                      {NiftiDataType::complex256, "complex256"},
                                      {NiftiDataType::rgba32, "rgba32"}});
}

// "uint8", "int16", ...; "binary" for code 1, "unknown" for codes NIfTI does not define.
inline const char* nifti_datatype_name(NiftiDataType type) {
    return enum_name(type, static_cast<int>(type) == 1 ? "binary" : "unknown");
}

// The units of xyzt_units (nifti1.h NIFTI_UNITS_*): spatial ones in the low 3 bits, temporal ones above.
enum class NiftiUnit : int {
    unknown = 0,
    meter = 1,
    mm = 2,
    micron = 3,
    sec = 8,
    msec = 16,
    usec = 24,
    hz = 32,
    ppm = 40,
    rads = 48,
};

// Which of the header's transforms an affine comes from.
enum class AffineSource { sform, qform, pixdim };

// A NIfTI header as stored (NIfTI-1's 16-bit and float fields widened to NIfTI-2's), after validation.
// dim and pixdim are in the file's axis order: dim[1] = nx, the fastest-varying axis.
struct NiftiHeader {
    int version = 1;  // 1 (348-byte header, magic "n+1") or 2 (540 bytes, "n+2")
    bool big_endian = false;
    NiftiDataType datatype = NiftiDataType::float32;
    int bitpix = 32;
    std::array<std::int64_t, 8> dim{};  // dim[0] = number of dimensions, dim[1..7] their lengths
    std::array<double, 8> pixdim{};     // pixdim[0] = qfac, pixdim[1..3] voxel sizes, pixdim[4] time step
    std::int64_t vox_offset = 352;      // where the voxels start in the (uncompressed) file
    double scl_slope = 0.0;  // stored value * scl_slope + scl_inter, unless scl_slope is 0 or not finite
    double scl_inter = 0.0;
    double cal_min = 0.0, cal_max = 0.0;  // display range, 0 0 when unset
    double slice_duration = 0.0, toffset = 0.0;
    std::int64_t slice_start = 0, slice_end = 0;
    int slice_code = 0, dim_info = 0;
    int qform_code = 0, sform_code = 0;  // NIFTI_XFORM_*: 0 unknown (unset), 1 scanner, 2 aligned, 3
                                         // Talairach, 4 MNI 152, 5 other template
    double quatern_b = 0.0, quatern_c = 0.0, quatern_d = 0.0;
    double qoffset_x = 0.0, qoffset_y = 0.0, qoffset_z = 0.0;
    std::array<std::array<double, 4>, 3> srow{};  // the sform's first three rows
    int intent_code = 0;
    std::array<double, 3> intent_p{};
    std::string intent_name;  // up to 16 characters
    std::string descrip;      // up to 80 characters
    int xyzt_units = 0;
    bool has_extensions = false;  // the extender's first byte; the extensions themselves are skipped

    NiftiUnit spatial_unit() const { return static_cast<NiftiUnit>(xyzt_units & 0x07); }
    NiftiUnit time_unit() const { return static_cast<NiftiUnit>(xyzt_units & 0x38); }
    // Bytes per voxel.
    std::size_t voxel_bytes() const { return static_cast<std::size_t>(bitpix / 8); }
    // Whether scl_slope and scl_inter change the stored values (a finite, nonzero slope other than 1 with 0).
    bool has_scaling() const {
        return std::isfinite(scl_slope) && scl_slope != 0.0 && !(scl_slope == 1.0 && scl_inter == 0.0);
    }
    // The voxel data as a tensor shape: [nz, ny, nx] for up to 3 dimensions, [nt, nz, ny, nx] for 4 (and for
    // 5 to 7 when every dimension beyond the fourth has length 1). The file's own memory order, x fastest.
    Shape tensor_shape() const {
        const std::int64_t nt = dim[0] >= 4 ? dim[4] : 1;
        Shape s{static_cast<Index>(dim[0] >= 3 ? dim[3] : 1), static_cast<Index>(dim[0] >= 2 ? dim[2] : 1),
                static_cast<Index>(dim[1])};
        if (dim[0] >= 4) s.insert(s.begin(), static_cast<Index>(nt));
        return s;
    }
    Index voxel_count() const { return shape_numel(tensor_shape()); }
};

}  // namespace vit3d::io

namespace vit3d::detail {

inline constexpr std::size_t nifti1_header_size = 348;
inline constexpr std::size_t nifti2_header_size = 540;
inline constexpr char nifti1_magic[4] = {'n', '+', '1', '\0'};
inline constexpr char nifti2_magic[8] = {'n', '+', '2', '\0', '\r', '\n', '\032', '\n'};

// Reads (decode) or writes (encode) a header's fields at their offsets in the file's byte order, so that
// one field list per version serves both directions.
class NiftiFieldCodec {
  public:
    NiftiFieldCodec(std::uint8_t* bytes, bool big_endian, bool encode)
        : bytes_(bytes), big_endian_(big_endian), encode_(encode) {}

    // A number stored as Stored (int16_t, int32_t, int64_t, float, double, uint8_t) at `offset`.
    template <class Stored, class Value>
    void number(std::size_t offset, Value& value) {
        if (encode_) {
            store_number(bytes_ + offset, convert_number<Stored>(value), big_endian_);
        } else {
            value = static_cast<Value>(load_number<Stored>(bytes_ + offset, big_endian_));
        }
    }
    template <class Stored, class Value, std::size_t N>
    void numbers(std::size_t offset, std::array<Value, N>& values) {
        for (std::size_t i = 0; i < N; ++i) number<Stored>(offset + i * sizeof(Stored), values[i]);
    }
    // A NUL-padded character field of `length` bytes (the text ends at the first NUL, or fills the field).
    void text(std::size_t offset, std::size_t length, std::string& value) {
        char* p = reinterpret_cast<char*>(bytes_ + offset);
        if (encode_) {
            std::memset(p, 0, length);
            std::memcpy(p, value.data(), std::min(value.size(), length));
        } else {
            value.assign(p, static_cast<std::size_t>(std::find(p, p + length, '\0') - p));
        }
    }

  private:
    std::uint8_t* bytes_;
    bool big_endian_;
    bool encode_;
};

// The NIfTI-1 layout (nifti1.h, struct nifti_1_header). sizeof_hdr, magic and the extender are handled
// by the callers; data_type, db_name, extents, session_error, regular, glmax and glmin are unused fields
// of ANALYZE 7.5, written as zeros.
inline void nifti1_fields(NiftiFieldCodec& f, io::NiftiHeader& h) {
    int datatype = static_cast<int>(h.datatype);
    f.number<std::uint8_t>(39, h.dim_info);
    f.numbers<std::int16_t>(40, h.dim);
    f.numbers<float>(56, h.intent_p);
    f.number<std::int16_t>(68, h.intent_code);
    f.number<std::int16_t>(70, datatype);
    f.number<std::int16_t>(72, h.bitpix);
    f.number<std::int16_t>(74, h.slice_start);
    f.numbers<float>(76, h.pixdim);
    double vox_offset = static_cast<double>(h.vox_offset);
    f.number<float>(108, vox_offset);
    f.number<float>(112, h.scl_slope);
    f.number<float>(116, h.scl_inter);
    f.number<std::int16_t>(120, h.slice_end);
    f.number<std::uint8_t>(122, h.slice_code);
    f.number<std::uint8_t>(123, h.xyzt_units);
    f.number<float>(124, h.cal_max);
    f.number<float>(128, h.cal_min);
    f.number<float>(132, h.slice_duration);
    f.number<float>(136, h.toffset);
    f.text(148, 80, h.descrip);
    f.number<std::int16_t>(252, h.qform_code);
    f.number<std::int16_t>(254, h.sform_code);
    f.number<float>(256, h.quatern_b);
    f.number<float>(260, h.quatern_c);
    f.number<float>(264, h.quatern_d);
    f.number<float>(268, h.qoffset_x);
    f.number<float>(272, h.qoffset_y);
    f.number<float>(276, h.qoffset_z);
    for (std::size_t row = 0; row < 3; ++row) f.numbers<float>(280 + 16 * row, h.srow[row]);
    f.text(328, 16, h.intent_name);
    h.datatype = static_cast<io::NiftiDataType>(datatype);
    // vox_offset is a float in NIfTI-1; the caller checks that it holds an integer.
    h.vox_offset = std::isfinite(vox_offset) && std::abs(vox_offset) < 9.0e15
                       ? static_cast<std::int64_t>(vox_offset)
                       : -1;
}

// The NIfTI-2 layout (nifti2.h, struct nifti_2_header).
inline void nifti2_fields(NiftiFieldCodec& f, io::NiftiHeader& h) {
    int datatype = static_cast<int>(h.datatype);
    f.number<std::int16_t>(12, datatype);
    f.number<std::int16_t>(14, h.bitpix);
    f.numbers<std::int64_t>(16, h.dim);
    f.numbers<double>(80, h.intent_p);
    f.numbers<double>(104, h.pixdim);
    f.number<std::int64_t>(168, h.vox_offset);
    f.number<double>(176, h.scl_slope);
    f.number<double>(184, h.scl_inter);
    f.number<double>(192, h.cal_max);
    f.number<double>(200, h.cal_min);
    f.number<double>(208, h.slice_duration);
    f.number<double>(216, h.toffset);
    f.number<std::int64_t>(224, h.slice_start);
    f.number<std::int64_t>(232, h.slice_end);
    f.text(240, 80, h.descrip);
    f.number<std::int32_t>(344, h.qform_code);
    f.number<std::int32_t>(348, h.sform_code);
    f.number<double>(352, h.quatern_b);
    f.number<double>(360, h.quatern_c);
    f.number<double>(368, h.quatern_d);
    f.number<double>(376, h.qoffset_x);
    f.number<double>(384, h.qoffset_y);
    f.number<double>(392, h.qoffset_z);
    for (std::size_t row = 0; row < 3; ++row) f.numbers<double>(400 + 32 * row, h.srow[row]);
    f.number<std::int32_t>(496, h.slice_code);
    f.number<std::int32_t>(500, h.xyzt_units);
    f.number<std::int32_t>(504, h.intent_code);
    f.text(508, 16, h.intent_name);
    f.number<std::uint8_t>(524, h.dim_info);
    h.datatype = static_cast<io::NiftiDataType>(datatype);
}

// Bytes per voxel of a datatype vit3d reads, 0 for the others.
inline int nifti_readable_bytes(io::NiftiDataType type) {
    switch (type) {
        case io::NiftiDataType::uint8:
        case io::NiftiDataType::int8:
            return 1;
        case io::NiftiDataType::int16:
        case io::NiftiDataType::uint16:
            return 2;
        case io::NiftiDataType::int32:
        case io::NiftiDataType::uint32:
        case io::NiftiDataType::float32:
            return 4;
        case io::NiftiDataType::int64:
        case io::NiftiDataType::uint64:
        case io::NiftiDataType::float64:
            return 8;
        default:
            return 0;
    }
}

// The NIfTI header size (348 or 540) and byte order that the first four bytes (sizeof_hdr) announce.
inline std::size_t nifti_header_size(const std::uint8_t* bytes, std::size_t size, bool& big_endian,
                                     const std::string& where) {
    if (size < 4)
        throw io_error(message(where, "expected at least 348 bytes (a NIfTI-1 header), got ", size));
    for (const bool be : {false, true}) {
        const std::uint32_t sizeof_hdr = load_unsigned<std::uint32_t>(bytes, be);
        if (sizeof_hdr == nifti1_header_size || sizeof_hdr == nifti2_header_size) {
            big_endian = be;
            return sizeof_hdr;
        }
    }
    throw io_error(message(where,
                           "expected sizeof_hdr 348 (NIfTI-1) or 540 (NIfTI-2) in either byte order, got ",
                           load_unsigned<std::uint32_t>(bytes, false), " (little-endian) / ",
                           load_unsigned<std::uint32_t>(bytes, true), " (big-endian): not a NIfTI file"));
}

// "[a, b, ...]" of n numbers, for messages.
inline std::string nifti_array_text(const double* v, std::size_t n) {
    return message(std::vector<double>(v, v + n));
}

// Parses and validates the header at the start of `bytes` (at least 348 or 540 bytes, as sizeof_hdr says).
inline io::NiftiHeader parse_nifti_header(const std::uint8_t* bytes, std::size_t size,
                                          const std::string& where) {
    io::NiftiHeader h;
    const std::size_t header_size = nifti_header_size(bytes, size, h.big_endian, where);
    h.version = header_size == nifti1_header_size ? 1 : 2;
    const std::string version = h.version == 1 ? "NIfTI-1" : "NIfTI-2";
    if (size < header_size)
        throw io_error(message(where, "sizeof_hdr says a ", version, " header of ", header_size,
                               " bytes, but the file has only ", size, " (truncated file?)"));
    // Decoding only reads; the codec takes a mutable pointer because encoding writes.
    std::vector<std::uint8_t> copy(bytes, bytes + header_size);
    NiftiFieldCodec codec(copy.data(), h.big_endian, false);
    if (h.version == 1) {
        const char* magic = reinterpret_cast<const char*>(bytes + 344);
        if (std::memcmp(magic, "ni1\0", 4) == 0)
            throw io_error(message(where,
                                   "magic \"ni1\" marks a two-file NIfTI-1 header (.hdr with an .img); vit3d "
                                   "reads single-file .nii and .nii.gz, expected magic \"n+1\""));
        if (std::memcmp(magic, nifti1_magic, 4) != 0)
            throw io_error(message(where, "expected the NIfTI-1 magic \"n+1\\x00\" at byte 344, got ",
                                   quoted_path(std::string(magic, 4)), " (an ANALYZE 7.5 header?)"));
        nifti1_fields(codec, h);
    } else {
        const char* magic = reinterpret_cast<const char*>(bytes + 4);
        if (std::memcmp(magic, "ni2\0", 4) == 0)
            throw io_error(message(where,
                                   "magic \"ni2\" marks a two-file NIfTI-2 header (.hdr with an .img); vit3d "
                                   "reads single-file .nii and .nii.gz, expected magic \"n+2\""));
        if (std::memcmp(magic, nifti2_magic, 8) != 0)
            throw io_error(message(
                where, "expected the NIfTI-2 magic \"n+2\\x00\\r\\n\\x1a\\n\" at byte 4, got ",
                quoted_path(std::string(magic, 8)),
                (std::memcmp(magic, nifti2_magic, 4) == 0 ? " (line endings changed by a text-mode copy?)"
                                                          : "")));
        nifti2_fields(codec, h);
    }
    h.has_extensions = size > header_size && bytes[header_size] != 0;

    const int voxel_bytes = nifti_readable_bytes(h.datatype);
    const int code = static_cast<int>(h.datatype);
    if (voxel_bytes == 0)
        throw io_error(message(where, "datatype ", code, " (", io::nifti_datatype_name(h.datatype),
                               ") is not supported; expected a real scalar type: uint8, int8, int16, uint16, "
                               "int32, uint32, int64, uint64, float32 or float64"));
    if (h.bitpix != 8 * voxel_bytes)
        throw io_error(message(where, "bitpix is ", h.bitpix, ", but datatype ",
                               io::nifti_datatype_name(h.datatype), " has ", 8 * voxel_bytes,
                               " bits per voxel"));

    const std::string dims = message(h.dim);
    if (h.dim[0] < 1 || h.dim[0] > 7)
        throw io_error(message(where, "dim[0] (the number of dimensions) is ", h.dim[0],
                               ", expected 1 to 7 (dim = ", dims, ")"));
    for (std::int64_t i = 1; i <= h.dim[0]; ++i)
        if (h.dim[static_cast<std::size_t>(i)] < 1)
            throw io_error(message(where, "dim[", i, "] is ", h.dim[static_cast<std::size_t>(i)],
                                   ", expected a length >= 1 (dim = ", dims, ")"));
    for (std::int64_t i = 5; i <= h.dim[0]; ++i)
        if (h.dim[static_cast<std::size_t>(i)] != 1)
            throw io_error(message(where, "dim = ", dims, " has ", h.dim[0], " dimensions with dim[", i,
                                   "] > 1; vit3d reads 3D volumes and 4D series only"));
    for (std::int64_t i = h.dim[0] + 1; i <= 7; ++i) h.dim[static_cast<std::size_t>(i)] = 1;  // unused
    Index voxels = 1;
    for (std::size_t i = 1; i <= 4; ++i) {
        const std::int64_t len = h.dim[i];
        if (len > std::numeric_limits<Index>::max() / voxels)
            throw io_error(message(where, "dim = ", dims, " has more voxels than vit3d can index"));
        voxels *= static_cast<Index>(len);
    }
    if (static_cast<std::uint64_t>(voxels) > std::numeric_limits<std::uint64_t>::max() / 8)
        throw io_error(message(where, "dim = ", dims, " needs more than 2^64 bytes"));

    const std::int64_t min_offset = static_cast<std::int64_t>(header_size) + 4;
    if (h.version == 1) {
        double stored = 0.0;
        NiftiFieldCodec(copy.data(), h.big_endian, false).number<float>(108, stored);
        if (!(stored >= static_cast<double>(min_offset)) || stored != std::floor(stored) || h.vox_offset < 0)
            throw io_error(message(where, "vox_offset is ", stored,
                                   ", expected a whole number >= 352 (the data follow the 348-byte header "
                                   "and a 4-byte extender)"));
    } else if (h.vox_offset < min_offset) {
        throw io_error(
            message(where, "vox_offset is ", h.vox_offset,
                    ", expected >= 544 (the data follow the 540-byte header and a 4-byte extender)"));
    }

    for (std::size_t i = 1; i <= 3; ++i)
        if (!std::isfinite(h.pixdim[i]) || h.pixdim[i] < 0.0)
            throw io_error(message(where, "pixdim[", i, "] (a voxel size) is ", h.pixdim[i],
                                   ", expected a finite size >= 0 (an axis' direction belongs in the qform's "
                                   "qfac or the sform); pixdim = ",
                                   nifti_array_text(h.pixdim.data(), 8)));
    if (h.dim[0] >= 4 && !std::isfinite(h.pixdim[4]))
        throw io_error(message(where, "pixdim[4] (the time step) is ", h.pixdim[4], ", expected a number"));

    if (std::isfinite(h.scl_slope) && h.scl_slope != 0.0 && !std::isfinite(h.scl_inter))
        throw io_error(message(where, "scl_slope is ", h.scl_slope, " but scl_inter is ", h.scl_inter,
                               "; expected a finite intercept with a valid slope"));

    for (const auto& [name, value] : std::initializer_list<std::pair<const char*, int>>{
             {"qform_code", h.qform_code}, {"sform_code", h.sform_code}})
        if (value < 0 || value > 5)
            throw io_error(message(where, name, " is ", value,
                                   ", expected a NIfTI transform code 0 to 5 (unknown, scanner, aligned, "
                                   "Talairach, MNI 152, other template)"));
    if (h.sform_code > 0)
        for (const auto& row : h.srow)
            for (const double v : row)
                if (!std::isfinite(v))
                    throw io_error(message(where, "sform_code is ", h.sform_code,
                                           " but the sform has a non-finite entry: srow_x/y/z = ",
                                           nifti_array_text(h.srow[0].data(), 4), " ",
                                           nifti_array_text(h.srow[1].data(), 4), " ",
                                           nifti_array_text(h.srow[2].data(), 4)));
    if (h.qform_code > 0) {
        const double q[6] = {h.quatern_b, h.quatern_c, h.quatern_d, h.qoffset_x, h.qoffset_y, h.qoffset_z};
        for (const double v : q)
            if (!std::isfinite(v))
                throw io_error(message(where, "qform_code is ", h.qform_code,
                                       " but the quaternion and offsets (b, c, d, x, y, z) = ",
                                       nifti_array_text(q, 6), " are not all finite"));
        const double w2 =
            1.0 - (h.quatern_b * h.quatern_b + h.quatern_c * h.quatern_c + h.quatern_d * h.quatern_d);
        // nibabel's quaternion_threshold: 3 epsilons of the header's float type.
        const double epsilon =
            h.version == 1 ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
        if (w2 < -3.0 * epsilon)
            throw io_error(message(where, "quatern_b, c, d = ", nifti_array_text(q, 3),
                                   " have b^2 + c^2 + d^2 = ", 1.0 - w2,
                                   " > 1: not the vector part of a unit quaternion"));
        if (h.pixdim[0] != 0.0 && h.pixdim[0] != 1.0 && h.pixdim[0] != -1.0)
            throw io_error(message(where, "pixdim[0] (qfac, the qform's handedness) is ", h.pixdim[0],
                                   ", expected -1 or 1 (or 0, read as 1)"));
    }
    return h;
}

// The sform as an affine.
inline transforms::Affine nifti_sform_affine(const io::NiftiHeader& h) {
    transforms::Affine a = transforms::identity_affine();
    for (std::size_t r = 0; r < 3; ++r) a[r] = h.srow[r];
    return a;
}

// The qform as an affine, computed as nibabel's Nifti1Header.get_qform computes it.
inline transforms::Affine nifti_qform_affine(const io::NiftiHeader& h) {
    const double x = h.quatern_b, y = h.quatern_c, z = h.quatern_d;
    const double w2 = 1.0 - (x * x + y * y + z * z);
    const double w = w2 < 0.0 ? 0.0 : std::sqrt(w2);
    // quat2mat: rotation of the normalised quaternion (w, x, y, z).
    const double n = w * w + x * x + y * y + z * z;
    double r[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    if (n >= std::numeric_limits<double>::epsilon()) {
        const double s = 2.0 / n;
        const double X = x * s, Y = y * s, Z = z * s;
        const double wX = w * X, wY = w * Y, wZ = w * Z;
        const double xX = x * X, xY = x * Y, xZ = x * Z;
        const double yY = y * Y, yZ = y * Z, zZ = z * Z;
        const double m[3][3] = {{1.0 - (yY + zZ), xY - wZ, xZ + wY},
                                {xY + wZ, 1.0 - (xX + zZ), yZ - wX},
                                {xZ - wY, yZ + wX, 1.0 - (xX + yY)}};
        std::memcpy(r, m, sizeof r);
    }
    const double qfac = h.pixdim[0] < 0.0 ? -1.0 : 1.0;
    const double scale[3] = {h.pixdim[1], h.pixdim[2], h.pixdim[3] * qfac};
    transforms::Affine a = transforms::identity_affine();
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) a[i][j] = r[i][j] * scale[j];
    a[0][3] = h.qoffset_x;
    a[1][3] = h.qoffset_y;
    a[2][3] = h.qoffset_z;
    return a;
}

// The affine of the NIfTI standard's method 1 (no transform set): voxel sizes on the diagonal.
inline transforms::Affine nifti_pixdim_affine(const io::NiftiHeader& h) {
    transforms::Affine a = transforms::identity_affine();
    for (std::size_t i = 0; i < 3; ++i) a[i][i] = h.pixdim[i + 1];
    return a;
}

// The affine the header prescribes (see the top of this file) and where it comes from.
inline transforms::Affine nifti_best_affine(const io::NiftiHeader& h, io::AffineSource& source) {
    if (h.sform_code > 0) {
        source = io::AffineSource::sform;
        return nifti_sform_affine(h);
    }
    if (h.qform_code > 0) {
        source = io::AffineSource::qform;
        return nifti_qform_affine(h);
    }
    source = io::AffineSource::pixdim;
    return nifti_pixdim_affine(h);
}

// The determinant and the inverse of a 3 x 3 matrix (the inverse is left unset when det is 0).
inline double inverse3(const double m[3][3], double inv[3][3]) {
    const double c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    const double c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    const double c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    const double det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    if (det == 0.0 || !std::isfinite(det)) return det;
    inv[0][0] = c00 / det;
    inv[1][0] = c01 / det;
    inv[2][0] = c02 / det;
    inv[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
    inv[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
    inv[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
    inv[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
    inv[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
    inv[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
    return det;
}

// How well a qform can hold an affine.
enum class QformFit {
    exact,     // the affine's columns are orthogonal: the qform reproduces it (to float precision)
    sheared,   // they are not: the qform holds the nearest rotation (shears stripped, as nibabel does)
    singular,  // a column is zero or not finite: no qform
};

// Sets the qform fields (quaternion, offsets, qfac in pixdim[0]) from an affine: the rotation is the
// orthogonal matrix nearest to the affine's normalised columns (its polar factor; the columns themselves
// when they are orthogonal), the quaternion as nifti_mat44_to_quatern computes it. pixdim[1..3] are left
// as they are.
inline QformFit set_nifti_qform(io::NiftiHeader& h, const transforms::Affine& affine) {
    double r[3][3];
    for (std::size_t j = 0; j < 3; ++j) {
        const double norm = std::sqrt(affine[0][j] * affine[0][j] + affine[1][j] * affine[1][j] +
                                      affine[2][j] * affine[2][j]);
        if (!(norm > 0.0) || !std::isfinite(norm)) return QformFit::singular;
        for (std::size_t i = 0; i < 3; ++i) r[i][j] = affine[i][j] / norm;
    }
    QformFit fit = QformFit::exact;
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = a + 1; b < 3; ++b)
            if (std::abs(r[0][a] * r[0][b] + r[1][a] * r[1][b] + r[2][a] * r[2][b]) > 1e-4)
                fit = QformFit::sheared;
    if (fit == QformFit::sheared) {
        // Polar factor by Newton's iteration with Higham's scaling, R <- (g R + R^-T / g) / 2 with
        // g = sqrt(|R^-1| / |R|) (Frobenius norms), which converges in a few steps even for ill-conditioned
        // R.
        for (int iteration = 0; iteration < 100; ++iteration) {
            double inv[3][3];
            const double det = inverse3(r, inv);
            if (det == 0.0 || !std::isfinite(det)) return QformFit::singular;
            double norm = 0.0, inv_norm = 0.0;
            for (std::size_t i = 0; i < 3; ++i)
                for (std::size_t j = 0; j < 3; ++j) {
                    norm += r[i][j] * r[i][j];
                    inv_norm += inv[i][j] * inv[i][j];
                }
            const double g = std::sqrt(std::sqrt(inv_norm / norm));
            if (!std::isfinite(g) || !(g > 0.0)) return QformFit::singular;
            double change = 0.0;
            for (std::size_t i = 0; i < 3; ++i)
                for (std::size_t j = 0; j < 3; ++j) {
                    const double next = 0.5 * (g * r[i][j] + inv[j][i] / g);
                    change = std::max(change, std::abs(next - r[i][j]));
                    r[i][j] = next;
                }
            if (change < 1e-15) break;
        }
        // An affine so close to singular that the iteration did not reach a rotation has none worth writing.
        for (std::size_t a = 0; a < 3; ++a)
            for (std::size_t b = 0; b < 3; ++b) {
                const double dot = r[0][a] * r[0][b] + r[1][a] * r[1][b] + r[2][a] * r[2][b];
                if (!(std::abs(dot - (a == b ? 1.0 : 0.0)) <= 1e-9)) return QformFit::singular;
            }
    }
    const double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
                       r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
                       r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    const double qfac = det < 0.0 ? -1.0 : 1.0;
    for (std::size_t i = 0; i < 3; ++i) r[i][2] *= qfac;
    double a = r[0][0] + r[1][1] + r[2][2] + 1.0, b, c, d;
    if (a > 0.5) {
        a = 0.5 * std::sqrt(a);
        b = 0.25 * (r[2][1] - r[1][2]) / a;
        c = 0.25 * (r[0][2] - r[2][0]) / a;
        d = 0.25 * (r[1][0] - r[0][1]) / a;
    } else {
        const double xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        const double yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        const double zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if (xd > 1.0) {
            b = 0.5 * std::sqrt(xd);
            c = 0.25 * (r[0][1] + r[1][0]) / b;
            d = 0.25 * (r[0][2] + r[2][0]) / b;
            a = 0.25 * (r[2][1] - r[1][2]) / b;
        } else if (yd > 1.0) {
            c = 0.5 * std::sqrt(yd);
            b = 0.25 * (r[0][1] + r[1][0]) / c;
            d = 0.25 * (r[1][2] + r[2][1]) / c;
            a = 0.25 * (r[0][2] - r[2][0]) / c;
        } else {
            d = 0.5 * std::sqrt(zd);
            b = 0.25 * (r[0][2] + r[2][0]) / d;
            c = 0.25 * (r[1][2] + r[2][1]) / d;
            a = 0.25 * (r[1][0] - r[0][1]) / d;
        }
        if (a < 0.0) {
            b = -b;
            c = -c;
            d = -d;
        }
    }
    h.quatern_b = b;
    h.quatern_c = c;
    h.quatern_d = d;
    h.qoffset_x = affine[0][3];
    h.qoffset_y = affine[1][3];
    h.qoffset_z = affine[2][3];
    h.pixdim[0] = qfac;
    return fit;
}

// The bytes of a header (version 1 or 2, little-endian) followed by the 4-byte extender (no extensions).
inline std::vector<std::uint8_t> encode_nifti_header(io::NiftiHeader h) {
    const std::size_t size = h.version == 1 ? nifti1_header_size : nifti2_header_size;
    std::vector<std::uint8_t> out(size + 4, 0);
    store_number(out.data(), static_cast<std::int32_t>(size), false);
    NiftiFieldCodec codec(out.data(), false, true);
    if (h.version == 1) {
        nifti1_fields(codec, h);
        std::memcpy(out.data() + 344, nifti1_magic, 4);
    } else {
        std::memcpy(out.data() + 4, nifti2_magic, 8);
        nifti2_fields(codec, h);
    }
    return out;
}

}  // namespace vit3d::detail
