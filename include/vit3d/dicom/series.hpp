#pragma once
// Reading a DICOM series (a folder, or a list of files, of single-frame greyscale slices) into an io::Volume,
// as vit3d's NIfTI reader gives a volume, with the series' DICOM facts alongside (CMake target
// vit3d::dicom, which links GDCM; one file's parsing and decoding is vit3d/dicom/slice.hpp).
//
// Series: the files are grouped by SeriesInstanceUID, and within a series by rows, columns and
// ImageOrientationPatient; a series whose files differ in those is listed as parts (SeriesInfo::part 1, 2,
// ...) and read only one part at a time. In a folder (not its sub-folders), files that are not DICOM Part
// 10 ("DICM" at byte 128) or that hold no image (DICOMDIR, structured reports, presentation states) are
// skipped, as are hidden files; a malformed DICOM file is an error (naming it). Given as a list, every file
// must be a DICOM image.
//
// The volume: data [nz, ny, nx] with data(k, j, i) = pixel (column i, row j) of slice k, the slices sorted
// by their position along the slice normal n = row cosines x column cosines (ImageOrientationPatient),
// i.e. by n . ImagePositionPatient, ascending. Values are RescaleSlope * stored + RescaleIntercept of each
// slice (Hounsfield units for CT), computed in double; for an integer T every value must be an integer T
// holds, else the read fails naming the pixel (read as float or double). Stored values are taken as stored
// for MONOCHROME1 too (not inverted; SimpleITK inverts them). The affine maps (i, j, k, 1) to RAS+ mm, as a
// NIfTI file written by dcm2niix or SimpleITK means it: DICOM's LPS columns row cosines x column spacing
// (PixelSpacing[1]), column cosines x row spacing (PixelSpacing[0]), n x slice spacing, and the first
// slice's position, with the first two rows negated (L -> R, P -> A). spacing is [slice spacing, row
// spacing, column spacing] ([z, y, x]); sform_code and qform_code 1 (scanner). The slice spacing is the mean
// step between positions along n; a single slice takes SpacingBetweenSlices, else SliceThickness, else 1.
//
// Refused (io_error, naming the files): several series in a folder and none chosen (the message lists
// them), a series whose files differ in rows, columns, orientation or PixelSpacing, a file without
// ImagePositionPatient, ImageOrientationPatient or PixelSpacing, an orientation that is not two orthogonal
// unit vectors (within 1e-3), multi-frame files (NumberOfFrames > 1), colour images (SamplesPerPixel > 1
// or a photometric interpretation other than MONOCHROME1/2), and slice positions that do not make a
// regular grid: two slices within 0.001 mm along n (duplicates), a position off the line through the first
// slice along n by more than spacing_tolerance x its distance along n + 0.001 mm (gantry tilt or a sheared
// volume, which vit3d does not resample), a step between neighbours more than (1 + spacing_tolerance)
// times the median step and near a multiple of it (missing slices), or any other step off the median by
// more than spacing_tolerance of it (non-uniform spacing). spacing_tolerance is 1% by default.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/dicom/slice.hpp"
#include "vit3d/formats/exact_conversion.hpp"
#include "vit3d/formats/nifti_header.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/formats/volume.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"

namespace vit3d::dicom {

// One series (or part of a series) found by list_series.
struct SeriesInfo {
    std::string series_uid;
    int part = 0;  // 0: the series is one part; 1, 2, ...: its files differ in rows, columns or orientation
    std::string modality;     // (0008,0060) of its first file
    std::string description;  // SeriesDescription (0008,103E) of its first file
    Index slices = 0, rows = 0, columns = 0;
    std::vector<std::string> files;   // sorted by path
    std::vector<double> orientation;  // ImageOrientationPatient of its first file (empty when absent)
    Shape shape() const { return {slices, rows, columns}; }  // the volume's [nz, ny, nx]
};

// The DICOM facts of a series read, alongside its volume. Per-slice vectors are in slice order.
struct SeriesFacts {
    std::string series_uid, study_uid, frame_of_reference_uid, sop_class_uid;
    std::string modality, description;
    std::string photometric;      // PhotometricInterpretation: MONOCHROME2 or MONOCHROME1 (not inverted)
    std::string transfer_syntax;  // of the first slice
    int bits_allocated = 0, bits_stored = 0;
    bool is_signed = false;
    std::vector<double> window_center, window_width;  // of the first slice (one or more windows)
    std::array<double, 6> orientation{};    // ImageOrientationPatient: row cosines, column cosines (LPS)
    std::array<double, 3> normal{};         // unit slice normal: row cosines x column cosines (LPS)
    std::array<double, 2> pixel_spacing{};  // PixelSpacing: row spacing, column spacing (mm)
    double slice_spacing = 0.0;             // mean step between slices along the normal (mm)
    std::vector<std::string> files;
    std::vector<std::string> sop_instance_uids;
    std::vector<std::array<double, 3>> positions;  // ImagePositionPatient (LPS mm)
    std::vector<double> rescale_slope, rescale_intercept;
};

template <class T>
struct SeriesVolume {
    io::Volume<T> volume;
    SeriesFacts facts;
};

struct ReadOptions {
    std::string series_uid;           // which series of several; empty: the only one there is
    int part = 0;                     // which part of a series listed in parts (SeriesInfo::part)
    double spacing_tolerance = 0.01;  // relative: steps between slices within 1% of the median step
};

}  // namespace vit3d::dicom

namespace vit3d::detail {

inline std::string series_text(const dicom::SeriesInfo& s) {
    return message(s.series_uid, s.part ? message(" part ", s.part) : std::string(), " (", s.modality, " ",
                   detail::quoted(s.description), ", ", s.slices, " slice", (s.slices == 1 ? "" : "s"),
                   " of ", s.rows, " x ", s.columns, ")");
}

inline std::string series_list_text(const std::vector<dicom::SeriesInfo>& list) {
    std::string out;
    for (std::size_t i = 0; i < list.size(); ++i) out += message(i ? "; " : "", series_text(list[i]));
    return out;
}

inline bool same_orientation(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::abs(a[i] - b[i]) > 1e-4) return false;
    return true;
}

// Groups parsed headers into series and parts, sorted by series UID then part.
inline std::vector<dicom::SeriesInfo> group_series(const std::vector<dicom::Slice>& slices) {
    std::vector<dicom::SeriesInfo> groups;
    for (const dicom::Slice& s : slices) {
        auto it = std::find_if(groups.begin(), groups.end(), [&](const dicom::SeriesInfo& g) {
            return g.series_uid == s.series_uid && g.rows == s.rows && g.columns == s.columns &&
                   same_orientation(g.orientation, s.orientation);
        });
        if (it == groups.end()) {
            dicom::SeriesInfo g;
            g.series_uid = s.series_uid;
            g.modality = s.modality;
            g.description = s.series_description;
            g.rows = s.rows;
            g.columns = s.columns;
            g.orientation = s.orientation;
            groups.push_back(std::move(g));
            it = groups.end() - 1;
        }
        it->files.push_back(s.source);
        ++it->slices;
    }
    std::stable_sort(
        groups.begin(), groups.end(),
        [](const dicom::SeriesInfo& a, const dicom::SeriesInfo& b) { return a.series_uid < b.series_uid; });
    for (std::size_t i = 0; i < groups.size(); ++i) {
        const bool split = (i > 0 && groups[i - 1].series_uid == groups[i].series_uid) ||
                           (i + 1 < groups.size() && groups[i + 1].series_uid == groups[i].series_uid);
        if (split)
            groups[i].part =
                i > 0 && groups[i - 1].series_uid == groups[i].series_uid ? groups[i - 1].part + 1 : 1;
        std::sort(groups[i].files.begin(), groups[i].files.end());
    }
    return groups;
}

// Whether the bytes are a well-formed DICOM file without an image (DICOMDIR, a structured report, ...).
inline bool dicom_without_image(const std::uint8_t* bytes, std::size_t size) {
    DicomStructure structure(bytes, size, "");
    try {
        structure.check();
    } catch (const io_error&) {
        return false;  // parse_slice says what is wrong
    }
    return !structure.has_pixel_data();
}

inline dicom::Slice read_slice(const std::string& path, bool decode, const std::string& where) {
    const std::string file_where = message(where, "file ", quoted_path(path), ": ");
    const std::vector<std::uint8_t> bytes = read_file_bytes(path, file_where);
    return parse_slice(bytes.data(), bytes.size(), path, decode, file_where);
}

// The headers of the DICOM images of a folder (sorted by path); `skipped` counts the other files.
inline std::vector<dicom::Slice> folder_headers(const std::string& folder, const std::string& where,
                                                std::size_t& skipped) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
        throw io_error(message(where, "expected a folder of DICOM files, got ",
                               fs::exists(folder, ec) ? "a file" : "no such folder"));
    std::vector<std::string> paths;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        std::error_code e;
        if (!name.empty() && name[0] != '.' && it->is_regular_file(e)) paths.push_back(it->path().string());
    }
    if (ec) throw io_error(message(where, "cannot list the folder: ", ec.message()));
    std::sort(paths.begin(), paths.end());
    std::vector<dicom::Slice> out;
    skipped = 0;
    for (const std::string& path : paths) {
        const std::string file_where = message(where, "file ", quoted_path(path), ": ");
        const std::vector<std::uint8_t> bytes = read_file_bytes(path, file_where);
        if (!has_dicom_magic(bytes.data(), bytes.size()) || dicom_without_image(bytes.data(), bytes.size())) {
            ++skipped;
            continue;
        }
        out.push_back(parse_slice(bytes.data(), bytes.size(), path, false, file_where));
    }
    return out;
}

inline std::vector<dicom::Slice> files_headers(const std::vector<std::string>& files,
                                               const std::string& where) {
    std::vector<std::string> sorted = files;
    std::sort(sorted.begin(), sorted.end());
    std::vector<dicom::Slice> out;
    for (const std::string& path : sorted) out.push_back(read_slice(path, false, where));
    return out;
}

inline std::string files_where(const char* function, const std::vector<std::string>& files) {
    if (files.empty()) return message("vit3d::dicom::", function, "(no files): ");
    return message("vit3d::dicom::", function, "(", files.size(), " file", (files.size() == 1 ? "" : "s"),
                   ", first ", quoted_path(files.front()), "): ");
}

// The series (or part) options choose among `list`.
inline const dicom::SeriesInfo& choose_series(const std::vector<dicom::SeriesInfo>& list,
                                              const dicom::ReadOptions& options, const std::string& where,
                                              const std::string& skipped_text) {
    if (list.empty()) throw io_error(message(where, "expected DICOM images, found none", skipped_text));
    std::vector<const dicom::SeriesInfo*> matching;
    for (const dicom::SeriesInfo& s : list)
        if (options.series_uid.empty() || s.series_uid == options.series_uid) matching.push_back(&s);
    if (matching.empty())
        throw io_error(message(where, "no series has SeriesInstanceUID ", detail::quoted(options.series_uid),
                               "; there ", list.size() == 1 ? "is " : "are ", series_list_text(list)));
    if (options.series_uid.empty() && matching.size() > 1 &&
        matching.front()->series_uid != matching.back()->series_uid) {
        std::size_t count = 1;
        for (std::size_t i = 1; i < list.size(); ++i) count += list[i].series_uid != list[i - 1].series_uid;
        throw io_error(message(where, "expected one series, found ", count,
                               "; choose one with ReadOptions::series_uid: ", series_list_text(list)));
    }
    if (matching.size() == 1 && options.part == 0) return *matching.front();
    if (options.part == 0) {
        std::vector<dicom::SeriesInfo> parts;
        for (const dicom::SeriesInfo* s : matching) parts.push_back(*s);
        throw io_error(
            message(where, "series ", detail::quoted(matching.front()->series_uid), " holds ", parts.size(),
                    " parts whose rows, columns or ImageOrientationPatient differ: ", series_list_text(parts),
                    "; expected one geometry within a series (read one "
                    "part with ReadOptions::part)"));
    }
    for (const dicom::SeriesInfo* s : matching)
        if (s->part == options.part) return *s;
    throw io_error(message(where, "series ", detail::quoted(matching.front()->series_uid), " has no part ",
                           options.part, ": ", series_list_text(list)));
}

inline std::array<double, 3> cross(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double dot(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

inline std::string file_pair(const dicom::Slice& a, const dicom::Slice& b) {
    return message(quoted_path(a.source), " and ", quoted_path(b.source));
}

// Checks one slice for what a volume needs of it, and that it agrees with the first.
inline void check_slice(const dicom::Slice& s, const dicom::Slice& first, const std::string& where) {
    const std::string file = message("file ", quoted_path(s.source), ": ");
    check_single_frame_greyscale(s, where + file);
    for (const auto& [values, name] : {std::pair{&s.position, "ImagePositionPatient (0020,0032)"},
                                       std::pair{&s.orientation, "ImageOrientationPatient (0020,0037)"},
                                       std::pair{&s.pixel_spacing, "PixelSpacing (0028,0030)"}})
        if (values->empty())
            throw io_error(message(where, file, "expected ", name, ", which places the slice, got none"));
    if (s.series_uid != first.series_uid)
        throw io_error(message(where, "expected one series, got SeriesInstanceUIDs ",
                               detail::quoted(first.series_uid), " and ", detail::quoted(s.series_uid),
                               " (files ", file_pair(first, s), ")"));
    if (s.rows != first.rows || s.columns != first.columns)
        throw io_error(message(where, "expected the same rows and columns in every slice, got ", first.rows,
                               " x ", first.columns, " and ", s.rows, " x ", s.columns, " (files ",
                               file_pair(first, s), ")"));
    if (!same_orientation(s.orientation, first.orientation))
        throw io_error(message(where, "expected the same ImageOrientationPatient in every slice, got ",
                               first.orientation, " and ", s.orientation, " (files ", file_pair(first, s),
                               ")"));
    for (std::size_t a = 0; a < 2; ++a)
        if (std::abs(s.pixel_spacing[a] - first.pixel_spacing[a]) > 1e-4)
            throw io_error(message(where, "expected the same PixelSpacing in every slice, got ",
                                   first.pixel_spacing, " and ", s.pixel_spacing, " (files ",
                                   file_pair(first, s), ")"));
    if (s.pixel_spacing[0] <= 0.0 || s.pixel_spacing[1] <= 0.0)
        throw io_error(message(where, file, "PixelSpacing is ", s.pixel_spacing, ", expected two sizes > 0"));
}

// The stored value v of slice `s` rescaled, as T.
template <class T>
T rescaled_value(double stored, const dicom::Slice& s, Index k, Index p, const std::string& where) {
    const double x = s.rescale_slope * stored + s.rescale_intercept;
    if constexpr (std::is_integral_v<T>) {
        if (!holds_exactly<T>(x))
            throw io_error(message(
                where, "slice ", k, " (file ", quoted_path(s.source), ") pixel (column, row) = (",
                p % s.columns, ", ", p / s.columns, ") is ", x, " (stored ", stored, " x RescaleSlope ",
                s.rescale_slope, " + RescaleIntercept ", s.rescale_intercept, "), which ",
                element_type_name<T>(), " cannot hold exactly; expected integers in ",
                integer_range_text<T>(), " (read the series as float or double to keep every value)"));
    }
    return convert_number<T>(x);
}

// The series description cut to the 80 bytes of NIfTI's descrip, at a UTF-8 character boundary.
inline std::string nifti_description(const std::string& text) {
    if (text.size() <= 80) return text;
    std::size_t end = 80;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

inline io::NiftiDataType stored_datatype(const dicom::Slice& s) {
    using io::NiftiDataType;
    if (s.bits_allocated == 8) return s.is_signed ? NiftiDataType::int8 : NiftiDataType::uint8;
    if (s.bits_allocated == 16) return s.is_signed ? NiftiDataType::int16 : NiftiDataType::uint16;
    return s.is_signed ? NiftiDataType::int32 : NiftiDataType::uint32;
}

// The volume of slices whose headers are parsed; pixels_of(slice) gives each slice's decoded stored values
// when its turn comes (from the slice itself, or by decoding its file then), so that memory holds the
// volume and one slice's values, not every slice's.
template <class T, class PixelsOf>
dicom::SeriesVolume<T> assemble_series(std::vector<dicom::Slice> slices, const dicom::ReadOptions& options,
                                       const std::string& where, PixelsOf&& pixels_of) {
    static_assert(is_readable_element_type_v<T>,
                  "vit3d::dicom::read_series reads into float, double or a fixed-width integer type");
    if (slices.empty()) throw io_error(message(where, "expected at least one slice, got none"));
    const double tolerance = options.spacing_tolerance;
    if (!(tolerance >= 0.0 && tolerance < 1.0))
        throw io_error(message(where, "ReadOptions::spacing_tolerance is ", tolerance, ", expected [0, 1)"));
    for (const dicom::Slice& s : slices) check_slice(s, slices.front(), where);

    const std::vector<double> o = slices.front().orientation;
    const std::array<double, 3> row{o[0], o[1], o[2]}, column{o[3], o[4], o[5]};
    std::array<double, 3> normal = cross(row, column);
    const double normal_length = std::sqrt(dot(normal, normal));
    if (std::abs(std::sqrt(dot(row, row)) - 1.0) > 1e-3 ||
        std::abs(std::sqrt(dot(column, column)) - 1.0) > 1e-3 || std::abs(dot(row, column)) > 1e-3 ||
        normal_length < 0.5)
        throw io_error(message(where, "ImageOrientationPatient is ", o,
                               ", expected two orthogonal unit vectors (within 1e-3; file ",
                               quoted_path(slices.front().source), ")"));
    for (double& x : normal) x /= normal_length;

    // Slices sorted along the normal.
    const Index n = static_cast<Index>(slices.size());
    std::vector<double> along(slices.size());
    for (std::size_t k = 0; k < slices.size(); ++k)
        along[k] = dot(normal, {slices[k].position[0], slices[k].position[1], slices[k].position[2]});
    std::vector<std::size_t> order(slices.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return along[a] < along[b]; });
    std::vector<dicom::Slice> sorted;
    std::vector<double> s;
    for (const std::size_t k : order) {
        sorted.push_back(std::move(slices[k]));
        s.push_back(along[k]);
    }
    const dicom::Slice& first = sorted.front();  // the slices agree in all but position and values

    const auto position_of = [&](Index k) {
        const std::vector<double>& p = sorted[static_cast<std::size_t>(k)].position;
        return std::array<double, 3>{p[0], p[1], p[2]};
    };
    const auto slice_text = [&](Index k) {
        return message("slice ", k, " (file ", quoted_path(sorted[static_cast<std::size_t>(k)].source),
                       ", ImagePositionPatient ", sorted[static_cast<std::size_t>(k)].position, ")");
    };
    double slice_spacing = 1.0;
    if (n >= 2) {
        std::vector<double> steps;
        for (Index k = 0; k + 1 < n; ++k) {
            const double step = s[static_cast<std::size_t>(k + 1)] - s[static_cast<std::size_t>(k)];
            if (step < 1e-3)
                throw io_error(message(where, "duplicate slice position: ", slice_text(k), " and ",
                                       slice_text(k + 1), " are ", step,
                                       " mm apart along the slice normal, expected distinct slices "
                                       "(at least 0.001 mm apart)"));
            steps.push_back(step);
        }
        // Positions on the line through the first slice along the normal, or the volume is sheared.
        const std::array<double, 3> p0 = position_of(0);
        for (Index k = 1; k < n; ++k) {
            const std::array<double, 3> p = position_of(k);
            const std::array<double, 3> d{p[0] - p0[0], p[1] - p0[1], p[2] - p0[2]};
            const double a = dot(d, normal);
            const std::array<double, 3> off{d[0] - a * normal[0], d[1] - a * normal[1], d[2] - a * normal[2]};
            const double distance = std::sqrt(dot(off, off));
            if (distance > tolerance * std::abs(a) + 1e-3) {
                const double degrees = std::atan2(distance, std::abs(a)) * 180.0 / 3.14159265358979323846;
                throw io_error(message(
                    where, "the slice positions do not lie along the slice normal ", normal,
                    " (gantry tilt or a "
                    "sheared volume): ",
                    slice_text(k), " is ", distance, " mm off the line through ", slice_text(0),
                    " along the normal, a tilt of ", degrees, " degrees; expected at most ",
                    tolerance * std::abs(a) + 1e-3, " mm (spacing_tolerance ", tolerance,
                    " of the distance along the normal + 0.001 mm); vit3d does not resample tilted series"));
            }
        }
        std::vector<double> sorted_steps = steps;
        std::sort(sorted_steps.begin(), sorted_steps.end());
        const double median = sorted_steps[(sorted_steps.size() - 1) / 2];
        for (Index k = 0; k + 1 < n; ++k) {
            const double step = steps[static_cast<std::size_t>(k)];
            if (std::abs(step - median) <= tolerance * median) continue;
            const double ratio = step / median;
            const bool gap = ratio >= 1.5 && std::abs(ratio - std::round(ratio)) <= 0.25;
            if (gap)
                throw io_error(message(
                    where, "missing slice(s): ", slice_text(k), " and ", slice_text(k + 1), " are ", step,
                    " mm apart along the slice normal, about ", std::round(ratio), " times the median step ",
                    median, " mm; expected every step within ", tolerance * 100.0, "% of the median"));
            throw io_error(message(where, "non-uniform slice spacing: ", slice_text(k), " and ",
                                   slice_text(k + 1), " are ", step,
                                   " mm apart along the slice normal, the median step is ", median,
                                   " mm; expected every step within ", tolerance * 100.0,
                                   "% of the median (ReadOptions::spacing_tolerance)"));
        }
        slice_spacing = (s.back() - s.front()) / static_cast<double>(n - 1);
    } else if (first.spacing_between_slices && *first.spacing_between_slices > 0.0) {
        slice_spacing = *first.spacing_between_slices;
    } else if (first.slice_thickness && *first.slice_thickness > 0.0) {
        slice_spacing = *first.slice_thickness;
    }

    dicom::SeriesVolume<T> out;
    io::Volume<T>& v = out.volume;
    const Index ny = first.rows, nx = first.columns;
    v.data = Tensor<T>::empty({n, ny, nx});
    T* dst = v.data.data();
    const Index plane = ny * nx;
    for (Index k = 0; k < n; ++k) {
        dicom::Slice& slice = sorted[static_cast<std::size_t>(k)];
        const std::vector<double> pixels = pixels_of(slice);
        if (static_cast<Index>(pixels.size()) != plane)
            throw io_error(message(where, "slice ", k, " (file ", quoted_path(slice.source), ") has ",
                                   pixels.size(), " decoded pixels, expected ", plane,
                                   " (parse slices with decode = true)"));
        for (Index p = 0; p < plane; ++p)
            dst[k * plane + p] = rescaled_value<T>(pixels[static_cast<std::size_t>(p)], slice, k, p, where);
    }
    const double row_spacing = first.pixel_spacing[0], column_spacing = first.pixel_spacing[1];
    v.spacing = {slice_spacing, row_spacing, column_spacing};
    const std::array<double, 3> p0 = position_of(0);
    transforms::Affine a = transforms::identity_affine();
    for (std::size_t r = 0; r < 3; ++r) {
        const double sign = r < 2 ? -1.0 : 1.0;  // LPS -> RAS
        a[r][0] = sign * row[r] * column_spacing;
        a[r][1] = sign * column[r] * row_spacing;
        a[r][2] = sign * normal[r] * slice_spacing;
        a[r][3] = sign * p0[r];
    }
    v.affine = a;
    v.affine_source = io::AffineSource::sform;
    v.sform_code = 1;
    v.qform_code = 1;
    v.spatial_unit = io::NiftiUnit::mm;
    v.description = nifti_description(first.series_description);
    v.datatype = stored_datatype(first);
    const bool one_rescale = std::all_of(sorted.begin(), sorted.end(), [&](const dicom::Slice& x) {
        return x.rescale_slope == first.rescale_slope && x.rescale_intercept == first.rescale_intercept;
    });
    v.scl_slope = one_rescale ? first.rescale_slope : 0.0;
    v.scl_inter = one_rescale ? first.rescale_intercept : 0.0;
    v.scaled = std::any_of(sorted.begin(), sorted.end(), [](const dicom::Slice& x) {
        return x.rescale_slope != 1.0 || x.rescale_intercept != 0.0;
    });

    dicom::SeriesFacts& f = out.facts;
    f.series_uid = first.series_uid;
    f.study_uid = first.study_uid;
    f.frame_of_reference_uid = first.frame_of_reference_uid;
    f.sop_class_uid = first.sop_class_uid;
    f.modality = first.modality;
    f.description = first.series_description;
    f.photometric = first.photometric;
    f.transfer_syntax = first.transfer_syntax;
    f.bits_allocated = first.bits_allocated;
    f.bits_stored = first.bits_stored;
    f.is_signed = first.is_signed;
    f.window_center = first.window_center;
    f.window_width = first.window_width;
    std::copy(o.begin(), o.end(), f.orientation.begin());
    f.normal = normal;
    f.pixel_spacing = {row_spacing, column_spacing};
    f.slice_spacing = slice_spacing;
    for (const dicom::Slice& x : sorted) {
        f.files.push_back(x.source);
        f.sop_instance_uids.push_back(x.sop_instance_uid);
        f.positions.push_back({x.position[0], x.position[1], x.position[2]});
        f.rescale_slope.push_back(x.rescale_slope);
        f.rescale_intercept.push_back(x.rescale_intercept);
    }
    return out;
}

// The volume of files whose headers are parsed: each file is decoded in its turn, and must still have the
// header it had.
template <class T>
dicom::SeriesVolume<T> read_series_headers(std::vector<dicom::Slice> headers,
                                           const dicom::ReadOptions& options, const std::string& where) {
    return assemble_series<T>(std::move(headers), options, where, [&](const dicom::Slice& header) {
        dicom::Slice decoded = read_slice(header.source, true, where);
        if (decoded.rows != header.rows || decoded.columns != header.columns ||
            decoded.position != header.position || decoded.rescale_slope != header.rescale_slope ||
            decoded.rescale_intercept != header.rescale_intercept)
            throw io_error(
                message(where, "file ", quoted_path(header.source), ": changed while the series was read"));
        return std::move(decoded.pixels);
    });
}

template <class T>
dicom::SeriesVolume<T> read_series_files(const std::vector<std::string>& files,
                                         const dicom::ReadOptions& options, const std::string& where) {
    std::vector<dicom::Slice> headers;
    for (const std::string& path : files) headers.push_back(read_slice(path, false, where));
    return read_series_headers<T>(std::move(headers), options, where);
}

// The headers of the chosen series' files, out of all those listed.
inline std::vector<dicom::Slice> headers_of(std::vector<dicom::Slice> all, const dicom::SeriesInfo& chosen) {
    std::vector<dicom::Slice> out;
    for (dicom::Slice& s : all)
        if (std::binary_search(chosen.files.begin(), chosen.files.end(), s.source))
            out.push_back(std::move(s));
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::dicom {

// The series of the DICOM images in `folder` (not its sub-folders), sorted by SeriesInstanceUID; files that
// are not DICOM images are skipped.
inline std::vector<SeriesInfo> list_series(const std::string& folder) {
    const std::string where = message("vit3d::dicom::list_series(", detail::quoted_path(folder), "): ");
    std::size_t skipped = 0;
    return detail::group_series(detail::folder_headers(folder, where, skipped));
}

// The series of the given files, each of which must be a DICOM image.
inline std::vector<SeriesInfo> list_series(const std::vector<std::string>& files) {
    const std::string where = detail::files_where("list_series", files);
    return detail::group_series(detail::files_headers(files, where));
}

// Reads the series in `folder` (the only one, or options.series_uid) as a volume of T.
template <class T>
SeriesVolume<T> read_series(const std::string& folder, const ReadOptions& options = {}) {
    const std::string where = message("vit3d::dicom::read_series(", detail::quoted_path(folder), "): ");
    std::size_t skipped = 0;
    std::vector<Slice> headers = detail::folder_headers(folder, where, skipped);
    const std::vector<SeriesInfo> list = detail::group_series(headers);
    const std::string skipped_text = skipped ? message(" (", skipped, " file", (skipped == 1 ? "" : "s"),
                                                       " skipped: not DICOM Part 10, or without an image)")
                                             : std::string(" (the folder holds no file)");
    const SeriesInfo& chosen = detail::choose_series(list, options, where, skipped_text);
    return detail::read_series_headers<T>(detail::headers_of(std::move(headers), chosen), options, where);
}

// Reads the given files, which must be DICOM images, as a volume of T (their only series, or
// options.series_uid).
template <class T>
SeriesVolume<T> read_series(const std::vector<std::string>& files, const ReadOptions& options = {}) {
    const std::string where = detail::files_where("read_series", files);
    std::vector<Slice> headers = detail::files_headers(files, where);
    const std::vector<SeriesInfo> list = detail::group_series(headers);
    const SeriesInfo& chosen = detail::choose_series(list, options, where, "");
    return detail::read_series_headers<T>(detail::headers_of(std::move(headers), chosen), options, where);
}

// Reads a series (or part) list_series found.
template <class T>
SeriesVolume<T> read_series(const SeriesInfo& series, const ReadOptions& options = {}) {
    const std::string where = detail::files_where("read_series", series.files);
    return detail::read_series_files<T>(series.files, options, where);
}

// A volume from slices parsed with parse_slice(..., decode = true), e.g. of files held in memory: the
// checks and conventions of read_series.
template <class T>
SeriesVolume<T> assemble_series(std::vector<Slice> slices, const ReadOptions& options = {}) {
    return detail::assemble_series<T>(std::move(slices), options, "vit3d::dicom::assemble_series: ",
                                      [](Slice& slice) { return std::move(slice.pixels); });
}

}  // namespace vit3d::dicom
