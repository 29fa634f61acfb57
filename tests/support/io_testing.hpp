#pragma once
// Helpers for the file reader and writer tests: committed fixture paths, temporary paths unique to the
// running test (ctest runs tests of one executable in parallel processes), whole-file reads and writes, and
// the leftovers an atomic writer must not leave behind.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace vit3d::test {

// tests/fixtures/<relative>.
inline std::string FixturePath(const std::string& relative) {
    return std::string(VIT3D_TEST_FIXTURE_DIR) + "/" + relative;
}

// A path in the temporary directory named after the running test and `name`, removed first if it exists.
inline std::string TempPath(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string stem = std::string("vit3d_") + info->test_suite_name() + "_" + info->name() + "_";
    for (char& c : stem)
        if (c == '/') c = '_';  // parameterised test names
    const std::string path = ::testing::TempDir() + stem + name;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
    return path;
}

inline std::vector<std::uint8_t> ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::vector<std::uint8_t> Bytes(const std::string& text) {
    return std::vector<std::uint8_t>(text.begin(), text.end());
}

// Files in the directory of `path` whose names start with "." + the file name of `path` + ".tmp-": the
// temporary files of vit3d::io::AtomicFileWriter for that destination.
inline std::vector<std::string> TemporaryFilesFor(const std::string& path) {
    const std::filesystem::path p(path);
    const std::string prefix = "." + p.filename().string() + ".tmp-";
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(p.parent_path()))
        if (entry.path().filename().string().rfind(prefix, 0) == 0) found.push_back(entry.path().string());
    return found;
}

}  // namespace vit3d::test
