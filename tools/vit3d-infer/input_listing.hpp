#pragma once
// From what --input and --input-list name to the sorted list of input files, their output names, and this
// shard's share of them.
//
// An --input value is a file (one that does not exist is refused up front, as a folder or a glob that gives
// no file is: a mistyped name is a bad command line; one of an unknown type, or that cannot be read, is
// reported as a failed input when its turn comes), a folder (its files of a known type, hidden ones and
// sub-folders left out unless
// --recursive), a glob (quoted, so that the shell leaves it alone; expanded with glob(3)), or @LIST: a file
// of such values, one a line, blank lines and lines starting with # skipped. The union is sorted by path and
// duplicates dropped, so that every run, and every shard of a run, sees the same list.

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "dicom_input.hpp"
#include "options.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/formats/read_file.hpp"

namespace vit3d_infer {

using vit3d::message;

namespace fs = std::filesystem;

enum class InputFormat { npy, image, nifti, unknown };

inline std::string lowercase(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

inline bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

inline InputFormat format_of(const std::string& path) {
    const std::string name = lowercase(fs::path(path).filename().string());
    if (ends_with(name, ".npy")) return InputFormat::npy;
    if (ends_with(name, ".nii") || ends_with(name, ".nii.gz")) return InputFormat::nifti;
    for (const char* ext : {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm"})
        if (ends_with(name, ext)) return InputFormat::image;
    return InputFormat::unknown;
}

inline const char* known_extensions = ".npy, .png, .jpg, .jpeg, .bmp, .pgm, .ppm, .pnm, .nii, .nii.gz";

// The file name without its type: "a.nii.gz" -> "a", "b.png" -> "b", "c" -> "c".
inline std::string stem_of(const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    std::error_code ec;
    if (fs::is_directory(path, ec)) return name;  // a DICOM series folder, often named by a UID with dots
    if (ends_with(lowercase(name), ".nii.gz")) return name.substr(0, name.size() - 7);
    return fs::path(name).stem().string();
}

// A path in double quotes, odd characters escaped.
inline std::string quote(const std::string& s) { return vit3d::detail::quoted_path(s); }

struct InputListing {
    std::vector<std::string> files;  // sorted, unique
    bool several = false;            // anything but one plain file: --output is a folder
};

namespace detail {

inline bool has_glob_characters(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

inline void add_folder(const std::string& folder, bool recursive, std::vector<std::string>& out) {
    std::error_code ec;
    std::vector<std::string> found;
    const auto visit = [&](const fs::directory_entry& entry) {
        const std::string name = entry.path().filename().string();
        if (!name.empty() && name[0] == '.') return;  // hidden, and the writers' temporary files
        std::error_code e;
        if (entry.is_regular_file(e) && format_of(name) != InputFormat::unknown)
            found.push_back(entry.path().string());
        else if (entry.is_directory(e) && is_dicom_folder(entry.path().string()))
            found.push_back(dicom_folder_input(entry.path().string()));
    };
    if (recursive) {
        for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (!name.empty() && name[0] == '.' && it->is_directory()) {
                it.disable_recursion_pending();
                continue;
            }
            if (it->is_directory() && is_dicom_folder(it->path().string())) it.disable_recursion_pending();
            visit(*it);
        }
    } else {
        for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) visit(*it);
    }
    if (ec) throw usage_error(message("input folder ", quote(folder), ": cannot list it: ", ec.message()));
    if (found.empty())
        throw usage_error(message("input folder ", quote(folder), " holds no input file (", known_extensions,
                                  ", or a folder of DICOM files)",
                                  (recursive ? "" : "; --recursive descends into its sub-folders")));
    out.insert(out.end(), found.begin(), found.end());
}

inline void add_glob(const std::string& pattern, bool recursive, std::vector<std::string>& out) {
    glob_t matches{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
    std::vector<std::string> paths;
    for (std::size_t i = 0; rc == 0 && i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
    globfree(&matches);
    if (rc == GLOB_NOMATCH || (rc == 0 && paths.empty()))
        throw usage_error(message("--input ", quote(pattern), ": no file matches the pattern"));
    if (rc != 0)
        throw usage_error(message("--input ", quote(pattern), ": cannot expand the pattern (glob failed)"));
    for (const std::string& p : paths) {
        std::error_code ec;
        if (fs::is_directory(p, ec))
            add_folder(p, recursive, out);
        else
            out.push_back(p);
    }
}

// `origin` names where `value` came from in messages: empty for the command line, else the list's line.
inline void add_value(const std::string& value, bool recursive, const std::string& origin,
                      std::vector<std::string>& out, bool& several);

inline void add_list(const std::string& list, bool recursive, std::vector<std::string>& out, bool& several) {
    std::ifstream in(list);
    if (!in) {
        std::error_code ec;
        throw usage_error(
            message("input list ", quote(list), ": cannot read it: ",
                    (fs::exists(list, ec) ? "permission denied or not a file" : "no such file")));
    }
    std::size_t entries = 0;
    std::size_t number = 0;
    for (std::string line; std::getline(in, line);) {
        ++number;
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        std::size_t start = 0;
        while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
        line.erase(0, start);
        if (line.empty() || line[0] == '#') continue;
        add_value(line, recursive, message("input list ", quote(list), " line ", number), out, several);
        ++entries;
    }
    if (entries == 0) throw usage_error(message("input list ", quote(list), " names no input"));
    several = true;
}

inline void add_value(const std::string& value, bool recursive, const std::string& origin,
                      std::vector<std::string>& out, bool& several) {
    if (value.empty()) throw usage_error("--input: expected a path, got an empty string");
    std::error_code ec;
    if (origin.empty() && value[0] == '@') {
        add_list(value.substr(1), recursive, out, several);
    } else if (fs::is_directory(value, ec) && is_dicom_folder(value)) {
        out.push_back(dicom_folder_input(value));  // one series: one input
    } else if (fs::is_directory(value, ec)) {
        add_folder(value, recursive, out);
        several = true;
    } else if (has_glob_characters(value) && !fs::exists(value, ec)) {
        add_glob(value, recursive, out);
        several = true;
    } else {
        // Only "not there" is refused here; a path the system cannot look at (permissions) is read in its
        // turn, and fails with the system's reason.
        if (fs::status(value, ec).type() == fs::file_type::not_found)
            throw usage_error(
                message(origin.empty() ? "--input " : message(origin, ": "), quote(value), ": no such file"));
        out.push_back(value);
    }
}

}  // namespace detail

inline InputListing list_inputs(const Options& o) {
    InputListing listing;
    std::vector<std::string> files;
    for (const std::string& value : o.inputs)
        detail::add_value(value, o.recursive, "", files, listing.several);
    for (const std::string& list : o.input_lists) detail::add_list(list, o.recursive, files, listing.several);
    for (std::string& f : files) f = fs::path(f).lexically_normal().string();
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    listing.several = listing.several || files.size() != 1;
    listing.files = std::move(files);
    return listing;
}

// Two inputs of one stem would write one output: refused up front, naming both.
inline void check_unique_stems(const std::vector<std::string>& files, const std::string& output_folder) {
    std::map<std::string, std::string> seen;
    for (const std::string& f : files) {
        const auto [it, inserted] = seen.emplace(stem_of(f), f);
        if (!inserted)
            throw usage_error(message("inputs ", quote(it->second), " and ", quote(f), " would both write ",
                                      quote((fs::path(output_folder) / (it->first + ".npy")).string()),
                                      "; rename one, or run them into different --output folders"));
    }
}

// The indices of shard K/N's inputs in the sorted list of `count`: those equal to K modulo N (round robin, so
// that shards get near-equal shares of each folder).
inline std::vector<std::size_t> shard_of(std::size_t count, const Shard& shard) {
    std::vector<std::size_t> mine;
    for (std::size_t i = static_cast<std::size_t>(shard.index); i < count;
         i += static_cast<std::size_t>(shard.count))
        mine.push_back(i);
    return mine;
}

}  // namespace vit3d_infer
