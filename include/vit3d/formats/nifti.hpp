#pragma once
// Reading and writing NIfTI-1 and NIfTI-2 volumes, .nii and .nii.gz (vit3d's own reader and writer, with
// zlib for the compression; CMake target vit3d::nifti).
//
// Axis order: a NIfTI file stores voxel (i, j, k) with i (x) varying fastest, then j (y), then k (z), then t.
// vit3d reads that memory as it is, without a transpose, so the tensor is [nz, ny, nx] (3D) or
// [nt, nz, ny, nx] (4D) and volume.data(k, j, i) is voxel (i, j, k): the axes come in reverse order of
// NIfTI's (and of nibabel's array, which is data[i, j, k]). This is already the [D, H, W] order of a 3D
// model's input [B, C, D, H, W] (D = z, the slices; H = y; W = x): volume.data.reshape({1, 1, nz, ny, nx}).
// spacing follows the tensor's axes too, [z, y, x]; the affine maps the file's (i, j, k, 1) to world
// coordinates (x, y, z, 1) in the file's units (NIfTI: RAS+, usually mm), as NIfTI and nibabel define it.
//
// Why vit3d's own reader rather than libnifti2 (Debian's nifti_clib 3.0.1): that library prints errors to
// stderr whatever its debug level (e.g. "** ERROR: nifti_convert_n1hdr2nim: bad dim[1]" at level 0), silently
// reads x.nii.gz when asked for a missing x.nii, accepts ANALYZE 7.5 and ASCII headers and a header with
// dim[0] = 0, and reads only from paths (no fuzzing from memory); a library that must never print and must
// refuse what it cannot read exactly needs its own checks anyway. What is validated: see
// vit3d/formats/nifti_header.hpp, and the data: exactly vox_offset + voxels * bytes per voxel (of the
// decompressed file for .nii.gz), no byte more or less; every voxel exact in the type asked for when that is
// an integer type.
//
// Scaling: NiftiScaling::apply (the default) returns scl_slope * stored + scl_inter when the header sets a
// slope (finite, nonzero, and not slope 1 with intercept 0), computed in double. For an integer T every
// scaled value must then be an integer in T's range, so that an int16 CT with slope 1 and intercept -1024
// reads as exact Hounsfield units and a label mask as its labels, or the read fails naming the voxel.
// NiftiScaling::raw returns the stored values. Either way volume.scl_slope/scl_inter hold the header's
// values and volume.scaled says whether they were applied.
//
// Writing: NIfTI-1 (NIfTI-2 when a dimension exceeds 32767, or the intent code 16 bits, or the geometry the
// float range), little-endian, vox_offset 352 (544), the
// datatype of T, scl_slope 1 and scl_inter 0 (the data are written as they are), the sform from the affine
// when sform_code > 0, the qform from the affine when qform_code > 0: exactly when its columns are
// orthogonal, else (only allowed next to an sform, which readers use first) its nearest rotation, shears
// stripped, as nibabel writes it. Through a temporary file that replaces the destination only when complete.
// Not kept from a file read: extensions, slice timing, cal_min/cal_max.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/atomic_file_writer.hpp"
#include "vit3d/formats/byte_order.hpp"
#include "vit3d/formats/exact_conversion.hpp"
#include "vit3d/formats/gzip.hpp"
#include "vit3d/formats/nifti_header.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/formats/volume.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// What the reader does with scl_slope and scl_inter.
enum class NiftiScaling { apply, raw };

}  // namespace vit3d::io

namespace vit3d::detail {

// "(i, j, k)" or "(i, j, k, t)" of the flat voxel index p, in NIfTI's axis order, for messages.
inline std::string voxel_text(Index p, const io::NiftiHeader& h) {
    std::string out = "(";
    const int axes = h.dim[0] >= 4 ? 4 : 3;
    for (int a = 1; a <= axes; ++a) {
        const Index len = static_cast<Index>(h.dim[static_cast<std::size_t>(a)]);
        out += message(a > 1 ? ", " : "", p % len);
        p /= len;
    }
    return out + ")";
}

template <class T, class V>
void decode_nifti_voxels(const std::uint8_t* src, T* dst, const io::NiftiHeader& h, bool scale,
                         const std::string& where) {
    const Index n = h.voxel_count();
    for (Index p = 0; p < n; ++p) {
        const V v = load_number<V>(src + static_cast<std::size_t>(p) * sizeof(V), h.big_endian);
        if (scale) {
            const double x = h.scl_slope * static_cast<double>(v) + h.scl_inter;
            if constexpr (std::is_integral_v<T>) {
                if (!holds_exactly<T>(x))
                    throw io_error(message(
                        where, "voxel (i, j, k", (h.dim[0] >= 4 ? ", t" : ""), ") = ", voxel_text(p, h),
                        " is ", x, " after scaling (stored ", v, " x scl_slope ", h.scl_slope,
                        " + scl_inter ", h.scl_inter, "), which ", element_type_name<T>(),
                        " cannot hold exactly; expected integers in ", integer_range_text<T>(),
                        " (read as float or double, or with NiftiScaling::raw for the stored values)"));
            }
            dst[p] = convert_number<T>(x);
        } else {
            if constexpr (std::is_integral_v<T>) {
                if (!holds_exactly<T>(v))
                    throw io_error(message(
                        where, "voxel (i, j, k", (h.dim[0] >= 4 ? ", t" : ""), ") = ", voxel_text(p, h),
                        " is ", v, " (", io::nifti_datatype_name(h.datatype), "), which ",
                        element_type_name<T>(), " cannot hold exactly; expected integers in ",
                        integer_range_text<T>(), " (read the file as float or double to keep every value)"));
            }
            dst[p] = convert_number<T>(v);
        }
    }
}

template <class T>
void decode_nifti_data(const std::uint8_t* src, T* dst, const io::NiftiHeader& h, bool scale,
                       const std::string& where) {
    using io::NiftiDataType;
    switch (h.datatype) {
        case NiftiDataType::uint8:
            return decode_nifti_voxels<T, std::uint8_t>(src, dst, h, scale, where);
        case NiftiDataType::int8:
            return decode_nifti_voxels<T, std::int8_t>(src, dst, h, scale, where);
        case NiftiDataType::int16:
            return decode_nifti_voxels<T, std::int16_t>(src, dst, h, scale, where);
        case NiftiDataType::uint16:
            return decode_nifti_voxels<T, std::uint16_t>(src, dst, h, scale, where);
        case NiftiDataType::int32:
            return decode_nifti_voxels<T, std::int32_t>(src, dst, h, scale, where);
        case NiftiDataType::uint32:
            return decode_nifti_voxels<T, std::uint32_t>(src, dst, h, scale, where);
        case NiftiDataType::int64:
            return decode_nifti_voxels<T, std::int64_t>(src, dst, h, scale, where);
        case NiftiDataType::uint64:
            return decode_nifti_voxels<T, std::uint64_t>(src, dst, h, scale, where);
        case NiftiDataType::float32:
            return decode_nifti_voxels<T, float>(src, dst, h, scale, where);
        case NiftiDataType::float64:
            return decode_nifti_voxels<T, double>(src, dst, h, scale, where);
        default:  // parse_nifti_header refuses the others
            throw io_error(message(where, "internal error: datatype ", io::nifti_datatype_name(h.datatype)));
    }
}

// The size of the whole (uncompressed) file the header describes.
inline std::uint64_t nifti_file_size(const io::NiftiHeader& h, const std::string& where) {
    const auto offset = static_cast<std::uint64_t>(h.vox_offset);
    const std::uint64_t data = static_cast<std::uint64_t>(h.voxel_count()) * h.voxel_bytes();
    if (data > std::numeric_limits<std::uint64_t>::max() - offset)
        throw io_error(
            message(where, "vox_offset ", offset, " and ", data, " bytes of data exceed 2^64 bytes"));
    return offset + data;
}

// A volume from the bytes of an uncompressed .nii file (decompressed if it was a .nii.gz: `what` says
// "file" or "decompressed file" in messages).
template <class T>
io::Volume<T> nifti_volume(const std::uint8_t* bytes, std::size_t size, io::NiftiScaling scaling,
                           const std::string& where, const char* what) {
    static_assert(is_readable_element_type_v<T>,
                  "vit3d::io::read_nifti reads into float, double or a fixed-width integer type");
    const io::NiftiHeader h = parse_nifti_header(bytes, size, where);
    const std::uint64_t expected = nifti_file_size(h, where);
    const std::vector<std::int64_t> lengths(h.dim.begin() + 1, h.dim.begin() + 1 + h.dim[0]);
    const std::string layout =
        message("dim ", lengths, " of ", io::nifti_datatype_name(h.datatype), " from vox_offset ",
                h.vox_offset, " need a ", what, " of ", expected, " bytes");
    if (size < expected) throw io_error(message(where, layout, ", got ", size, " (truncated file?)"));
    if (size > expected)
        throw io_error(
            message(where, layout, ", got ", size - expected, " bytes more after the data (trailing data)"));

    io::Volume<T> v;
    v.data = Tensor<T>::empty(h.tensor_shape());
    v.scaled = scaling == io::NiftiScaling::apply && h.has_scaling();
    decode_nifti_data(bytes + h.vox_offset, v.data.data(), h, v.scaled, where);
    v.spacing = {h.pixdim[3], h.pixdim[2], h.pixdim[1]};
    v.time_step = h.dim[0] >= 4 ? h.pixdim[4] : 0.0;
    v.affine = nifti_best_affine(h, v.affine_source);
    v.sform_code = h.sform_code;
    v.qform_code = h.qform_code;
    v.spatial_unit = h.spatial_unit();
    v.time_unit = h.time_unit();
    v.intent_code = h.intent_code;
    v.intent_name = h.intent_name;
    v.description = h.descrip;
    v.datatype = h.datatype;
    v.scl_slope = h.scl_slope;
    v.scl_inter = h.scl_inter;
    return v;
}

// Decompresses a .nii.gz: first the header, then exactly the bytes the header describes (and one more,
// to tell trailing data), so that memory follows the data present, whatever the header claims.
inline std::vector<std::uint8_t> gunzip_nifti(const std::uint8_t* bytes, std::size_t size,
                                              const std::string& where) {
    GzipReader gz(bytes, size, where);
    std::vector<std::uint8_t> out;
    gz.read(out, nifti2_header_size + 4);
    const io::NiftiHeader h = parse_nifti_header(out.data(), out.size(), where);
    const std::uint64_t expected = nifti_file_size(h, where);
    if (out.size() < expected + 1) gz.read(out, expected + 1 - out.size());
    return out;  // nifti_volume reports a size other than `expected`
}

inline bool is_gzip_path(const std::string& path) {
    return path.size() >= 7 && path.compare(path.size() - 7, 7, ".nii.gz") == 0;
}

// The header of a .nii / .nii.gz file's bytes, whatever their compression.
inline io::NiftiHeader nifti_header_of(const std::uint8_t* bytes, std::size_t size,
                                       const std::string& where) {
    if (!has_gzip_magic(bytes, size)) return parse_nifti_header(bytes, size, where);
    GzipReader gz(bytes, size, where);
    std::vector<std::uint8_t> out;
    gz.read(out, nifti2_header_size + 4);
    return parse_nifti_header(out.data(), out.size(), where);
}

template <class T>
constexpr io::NiftiDataType nifti_datatype_of() {
    static_assert(is_readable_element_type_v<T>,
                  "vit3d::io::write_nifti writes float, double or fixed-width integer volumes");
    if constexpr (std::is_same_v<T, float>) return io::NiftiDataType::float32;
    if constexpr (std::is_same_v<T, double>) return io::NiftiDataType::float64;
    if constexpr (std::is_signed_v<T>) {
        if constexpr (sizeof(T) == 1) return io::NiftiDataType::int8;
        if constexpr (sizeof(T) == 2) return io::NiftiDataType::int16;
        if constexpr (sizeof(T) == 4) return io::NiftiDataType::int32;
        return io::NiftiDataType::int64;
    }
    if constexpr (sizeof(T) == 1) return io::NiftiDataType::uint8;
    if constexpr (sizeof(T) == 2) return io::NiftiDataType::uint16;
    if constexpr (sizeof(T) == 4) return io::NiftiDataType::uint32;
    return io::NiftiDataType::uint64;
}

// The header vit3d writes for a volume; throws for what a NIfTI file cannot hold.
template <class T>
io::NiftiHeader nifti_header_for(const io::Volume<T>& v, const std::string& where) {
    const Shape& shape = v.data.shape();
    if (shape.size() != 3 && shape.size() != 4)
        throw shape_error(message(where, "expected data [nz, ny, nx] or [nt, nz, ny, nx], got ", shape));
    for (const Index len : shape)
        if (len < 1)
            throw shape_error(
                message(where, "expected every length >= 1 (NIfTI has no empty axes), got ", shape));
    io::NiftiHeader h;
    // NIfTI-1 stores dims and intent_code in 16 bits and the geometry as floats; NIfTI-2 when they do not
    // fit.
    const auto fits_float = [](double x) {
        return std::abs(x) <= static_cast<double>(std::numeric_limits<float>::max());
    };
    bool fits_nifti1 = std::all_of(shape.begin(), shape.end(), [](Index len) { return len <= 32767; }) &&
                       v.intent_code >= std::numeric_limits<std::int16_t>::min() &&
                       v.intent_code <= std::numeric_limits<std::int16_t>::max() &&
                       std::all_of(v.spacing.begin(), v.spacing.end(), fits_float) && fits_float(v.time_step);
    for (const auto& row : v.affine)
        for (const double x : row) fits_nifti1 = fits_nifti1 && fits_float(x);
    h.version = fits_nifti1 ? 1 : 2;
    h.vox_offset = h.version == 1 ? 352 : 544;
    h.datatype = nifti_datatype_of<T>();
    h.bitpix = static_cast<int>(8 * sizeof(T));
    h.dim = {static_cast<std::int64_t>(shape.size()), 1, 1, 1, 1, 1, 1, 1};
    for (std::size_t a = 0; a < shape.size(); ++a) h.dim[shape.size() - a] = shape[a];  // reversed: x first
    for (std::size_t a = 0; a < 3; ++a)
        if (!std::isfinite(v.spacing[a]) || v.spacing[a] < 0.0)
            throw io_error(message(where, "spacing [z, y, x] = ", nifti_array_text(v.spacing.data(), 3),
                                   " must hold finite sizes >= 0"));
    h.pixdim = {1.0, v.spacing[2], v.spacing[1], v.spacing[0],
                1.0, 1.0,          1.0,          1.0};  // unused ones 1, as nibabel
    if (shape.size() == 4) {
        if (!std::isfinite(v.time_step)) throw io_error(message(where, "time_step is ", v.time_step));
        h.pixdim[4] = v.time_step;
    }
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    h.xyzt_units = static_cast<int>(v.spatial_unit) | static_cast<int>(v.time_unit);
    if ((h.xyzt_units & ~0x3f) != 0 || (static_cast<int>(v.spatial_unit) & ~0x07) != 0 ||
        (static_cast<int>(v.time_unit) & ~0x38) != 0)
        throw io_error(message(where,
                               "expected a spatial unit (meter, mm, micron) and a time unit (sec, msec, "
                               "usec, hz, ppm, rads), got codes ",
                               static_cast<int>(v.spatial_unit), " and ", static_cast<int>(v.time_unit)));
    h.intent_code = v.intent_code;
    if (v.intent_name.size() > 16)
        throw io_error(message(where, "intent_name has ", v.intent_name.size(),
                               " characters, at most 16 fit the header"));
    if (v.description.size() > 80)
        throw io_error(message(where, "description has ", v.description.size(),
                               " characters, at most 80 fit the header's descrip"));
    h.intent_name = v.intent_name;
    h.descrip = v.description;

    for (const auto& [name, code] : std::initializer_list<std::pair<const char*, int>>{
             {"sform_code", v.sform_code}, {"qform_code", v.qform_code}})
        if (code < 0 || code > 5)
            throw io_error(message(where, name, " is ", code, ", expected a NIfTI transform code 0 to 5"));
    h.sform_code = v.sform_code;
    h.qform_code = v.qform_code;
    for (const auto& row : v.affine)
        for (const double x : row)
            if (!std::isfinite(x)) throw io_error(message(where, "the affine has a non-finite entry"));
    if (v.sform_code > 0)
        for (std::size_t r = 0; r < 3; ++r) h.srow[r] = v.affine[r];
    if (v.qform_code > 0) {
        // With an sform, which readers use first, the qform may approximate the affine (shears stripped, as
        // nibabel writes it); alone, it must hold it exactly.
        const QformFit fit = set_nifti_qform(h, v.affine);
        if (fit == QformFit::singular)
            throw io_error(message(where, "qform_code is ", v.qform_code,
                                   ", but the affine is singular (a zero column, or columns too close to "
                                   "parallel for a rotation), which no qform can hold; set qform_code 0"));
        if (v.sform_code == 0 && fit == QformFit::sheared)
            throw io_error(
                message(where, "qform_code is ", v.qform_code,
                        " and sform_code 0, but the affine's columns are not orthogonal (a shear), which a "
                        "qform cannot hold; set sform_code (e.g. 2, aligned) to keep the affine"));
        for (std::size_t j = 0; j < 3 && v.sform_code == 0; ++j) {
            const double norm = std::sqrt(v.affine[0][j] * v.affine[0][j] + v.affine[1][j] * v.affine[1][j] +
                                          v.affine[2][j] * v.affine[2][j]);
            if (std::abs(norm - h.pixdim[j + 1]) > 1e-4 * std::max(1.0, norm))
                throw io_error(message(where, "the affine's column ", j, " has length ", norm,
                                       " but the voxel size is ", h.pixdim[j + 1],
                                       " (spacing [z, y, x] = ", nifti_array_text(v.spacing.data(), 3),
                                       "); a qform without an sform needs them equal"));
        }
    }
    if (v.sform_code == 0 && v.qform_code == 0 && v.affine != nifti_pixdim_affine(h))
        throw io_error(
            message(where,
                    "sform_code and qform_code are 0, so the file would hold no affine, but the affine is "
                    "not diag(voxel sizes); set sform_code (e.g. 2, aligned) to keep it"));
    // What vit3d writes it must be able to read: the header is checked as the reader checks it, so that a
    // gap in the checks above becomes an error here rather than an unreadable file.
    const std::vector<std::uint8_t> encoded = encode_nifti_header(h);
    try {
        (void)parse_nifti_header(encoded.data(), encoded.size(), "");
    } catch (const io_error& e) {
        throw io_error(message(where, "internal error, the header would not read back: ", e.what()));
    }
    return h;
}

// Header, extender and voxels (little-endian) to sink(const std::uint8_t*, std::size_t), in pieces.
template <class T, class Sink>
void write_nifti_bytes(const io::Volume<T>& v, const io::NiftiHeader& h, Sink&& sink) {
    const std::vector<std::uint8_t> header = encode_nifti_header(h);
    sink(header.data(), header.size());
    constexpr Index chunk = Index(1) << 16;
    std::vector<std::uint8_t> buffer;
    for (Index first = 0; first < v.data.size(); first += chunk) {
        const Index n = std::min(chunk, v.data.size() - first);
        buffer.resize(static_cast<std::size_t>(n) * sizeof(T));
        for (Index i = 0; i < n; ++i)
            store_number(buffer.data() + static_cast<std::size_t>(i) * sizeof(T), v.data.data()[first + i],
                         false);
        sink(buffer.data(), buffer.size());
    }
}

}  // namespace vit3d::detail

namespace vit3d::io {

// Validates the header of a .nii or .nii.gz file held in memory (compression told by the gzip magic bytes).
inline NiftiHeader parse_nifti_header(const std::uint8_t* bytes, std::size_t size,
                                      const std::string& source_name = "<memory>") {
    return detail::nifti_header_of(
        bytes, size, message("vit3d::io::parse_nifti_header(", detail::quoted_path(source_name), "): "));
}

// The header of the .nii or .nii.gz file at `path`.
inline NiftiHeader read_nifti_header(const std::string& path) {
    const std::string where = message("vit3d::io::read_nifti_header(", detail::quoted_path(path), "): ");
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::nifti_header_of(bytes.data(), bytes.size(), where);
}

// Parses a whole .nii or .nii.gz file held in memory (compression told by the gzip magic bytes) into a
// volume of T: float or double, or an integer type when every voxel is exact in it (see the top of this
// file for the axis order and for scaling).
template <class T>
Volume<T> parse_nifti(const std::uint8_t* bytes, std::size_t size,
                      const std::string& source_name = "<memory>",
                      NiftiScaling scaling = NiftiScaling::apply) {
    const std::string where = message("vit3d::io::parse_nifti(", detail::quoted_path(source_name), "): ");
    if (!detail::has_gzip_magic(bytes, size))
        return detail::nifti_volume<T>(bytes, size, scaling, where, "file");
    const std::vector<std::uint8_t> raw = detail::gunzip_nifti(bytes, size, where);
    return detail::nifti_volume<T>(raw.data(), raw.size(), scaling, where, "decompressed file");
}

// Reads the .nii or .nii.gz file at `path` as parse_nifti() does.
template <class T>
Volume<T> read_nifti(const std::string& path, NiftiScaling scaling = NiftiScaling::apply) {
    const std::string where = message("vit3d::io::read_nifti(", detail::quoted_path(path), "): ");
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    if (!detail::has_gzip_magic(bytes.data(), bytes.size()))
        return detail::nifti_volume<T>(bytes.data(), bytes.size(), scaling, where, "file");
    const std::vector<std::uint8_t> raw = detail::gunzip_nifti(bytes.data(), bytes.size(), where);
    return detail::nifti_volume<T>(raw.data(), raw.size(), scaling, where, "decompressed file");
}

// The bytes of the .nii (or, with gzip, .nii.gz) file write_nifti writes.
template <class T>
std::vector<std::uint8_t> serialize_nifti(const Volume<T>& volume, bool gzip = false) {
    const std::string where = "vit3d::io::serialize_nifti: ";
    const NiftiHeader h = detail::nifti_header_for(volume, where);
    std::vector<std::uint8_t> out;
    const auto append = [&out](const std::uint8_t* p, std::size_t n) { out.insert(out.end(), p, p + n); };
    if (!gzip) {
        detail::write_nifti_bytes(volume, h, append);
    } else {
        detail::GzipWriter<decltype(append)> gz(append, where);
        detail::write_nifti_bytes(volume, h, [&gz](const std::uint8_t* p, std::size_t n) { gz.write(p, n); });
        gz.finish();
    }
    return out;
}

// Writes a volume to `path`, a .nii or (compressed) .nii.gz file, through a temporary file that replaces
// `path` only when complete.
template <class T>
void write_nifti(const std::string& path, const Volume<T>& volume) {
    const std::string where = message("vit3d::io::write_nifti(", detail::quoted_path(path), "): ");
    const bool gzip = detail::is_gzip_path(path);
    if (!gzip && (path.size() < 4 || path.compare(path.size() - 4, 4, ".nii") != 0))
        throw io_error(message(where, "expected a file name ending in .nii or .nii.gz"));
    const NiftiHeader h = detail::nifti_header_for(volume, where);
    AtomicFileWriter file(path, where);
    const auto to_file = [&file](const std::uint8_t* p, std::size_t n) { file.write(p, n); };
    if (!gzip) {
        detail::write_nifti_bytes(volume, h, to_file);
    } else {
        detail::GzipWriter<decltype(to_file)> gz(to_file, where);
        detail::write_nifti_bytes(volume, h, [&gz](const std::uint8_t* p, std::size_t n) { gz.write(p, n); });
        gz.finish();
    }
    file.commit();
}

}  // namespace vit3d::io
