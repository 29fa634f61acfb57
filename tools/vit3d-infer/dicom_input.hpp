#pragma once
// DICOM series folders as inputs: a folder that holds a DICOM file (one with "DICM" at byte 128; its other
// files are left to the series reader, which skips what is not a DICOM image) is one input, read as a
// volume by vit3d::dicom::read_series (vit3d/dicom/series.hpp) and then preprocessed as a NIfTI volume is.
// A folder of such folders gives one input per series folder. The output is named after the folder; the
// record's digest of the input is the SHA-256 of the folder's file list ("<sha256>  <name>" lines in name
// order, as sha256sum prints them).
//
// Reading needs vit3d::dicom (GDCM): CMake defines VIT3D_INFER_DICOM when it exists. Without it, DICOM
// folders are still recognised, and each fails as an input saying why.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "sha256.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/formats/nifti_header.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/formats/volume.hpp"
#if VIT3D_INFER_DICOM
#include "vit3d/dicom/series.hpp"
#endif

namespace vit3d_infer {

// The regular, not hidden, files directly in `folder`, sorted by name.
inline std::vector<std::filesystem::path> folder_files(const std::string& folder) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        std::error_code e;
        if (!name.empty() && name[0] != '.' && it->is_regular_file(e)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

inline bool has_dicom_preamble(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    char head[132];
    return in.read(head, sizeof head) && std::memcmp(head + 128, "DICM", 4) == 0;
}

// Whether `path` is a folder holding a DICOM file (directly, not in a sub-folder).
inline bool is_dicom_folder(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return false;
    const std::vector<std::filesystem::path> files = folder_files(path);
    return std::any_of(files.begin(), files.end(), has_dicom_preamble);
}

// A folder's path as an input: without a trailing separator, so that its name names the output.
inline std::string dicom_folder_input(const std::string& folder) {
    std::filesystem::path p = std::filesystem::path(folder).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.string();
}

// The digest recorded for an input: a file's SHA-256, or a folder's file list's (see the top of this file).
inline FileDigest sha256_of_input(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return sha256_of_file(path);
    std::string listing;
    FileDigest out;
    for (const std::filesystem::path& file : folder_files(path)) {
        const FileDigest digest = sha256_of_file(file.string());
        listing += digest.sha256 + "  " + file.filename().string() + "\n";
        out.bytes += digest.bytes;
    }
    out.sha256 = sha256_hex(listing.data(), listing.size());
    return out;
}

// The folder's one series as a volume, and its stored type for the report ("int16", ...).
inline vit3d::io::Volume<float> read_dicom_volume(const std::string& folder, std::string& stored_dtype) {
#if VIT3D_INFER_DICOM
    vit3d::dicom::SeriesVolume<float> series = vit3d::dicom::read_series<float>(folder);
    stored_dtype = vit3d::io::nifti_datatype_name(series.volume.datatype);
    return std::move(series.volume);
#else
    (void)stored_dtype;
    throw std::runtime_error(
        vit3d::message("a DICOM series folder, but this vit3d-infer was built without "
                       "vit3d::dicom (GDCM; Debian: libgdcm-dev)"));
#endif
}

}  // namespace vit3d_infer
