// Tests for vit3d/formats/atomic_file_writer.hpp: the destination holds the old file or the complete new one,
// never a partial one, and no temporary file is left behind on success or failure.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vit3d/formats/atomic_file_writer.hpp>

#include "support/io_testing.hpp"

namespace vit3d::io {
namespace {

using test::Bytes;
using test::ReadBytes;
using test::TemporaryFilesFor;
using test::TempPath;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::ThrowsMessage;

TEST(AtomicFileWriter, CommitReplacesTheDestination) {
    const std::string path = TempPath("out.bin");
    test::WriteBytes(path, Bytes("old"));
    AtomicFileWriter file(path, "test: ");
    EXPECT_EQ(std::filesystem::path(file.temporary_path()).parent_path(),
              std::filesystem::path(path).parent_path());
    EXPECT_THAT(std::filesystem::path(file.temporary_path()).filename().string(),
                StartsWith("." + std::filesystem::path(path).filename().string() + ".tmp-"));
    file.write("new ", 4);
    file.write("contents", 8);
    EXPECT_EQ(ReadBytes(path), Bytes("old"));  // untouched until commit
    file.commit();
    EXPECT_EQ(ReadBytes(path), Bytes("new contents"));
    EXPECT_TRUE(TemporaryFilesFor(path).empty());
    EXPECT_THAT([&] { file.write("x", 1); },
                ThrowsMessage<io_error>(HasSubstr("test: write after commit or after a failed write")));
}

// close() puts every byte in the temporary file and leaves the destination alone; commit() then renames.
TEST(AtomicFileWriter, CloseWritesEveryByteBeforeTheRename) {
    const std::string path = TempPath("closed.bin");
    test::WriteBytes(path, Bytes("old"));
    AtomicFileWriter file(path, "test: ");
    file.write("new", 3);
    file.close();
    EXPECT_EQ(ReadBytes(file.temporary_path()), Bytes("new"));
    EXPECT_EQ(ReadBytes(path), Bytes("old"));
    EXPECT_THAT([&] { file.close(); }, ThrowsMessage<io_error>(HasSubstr("test: close after close")));
    file.commit();
    EXPECT_EQ(ReadBytes(path), Bytes("new"));
    EXPECT_TRUE(TemporaryFilesFor(path).empty());
}

TEST(AtomicFileWriter, AnUncommittedWriteLeavesTheOldFileAndNoTemporary) {
    const std::string path = TempPath("kept.bin");
    test::WriteBytes(path, Bytes("old"));
    try {
        AtomicFileWriter file(path, "test: ");
        file.write("partial", 7);
        throw std::runtime_error("the producer failed half-way");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(ReadBytes(path), Bytes("old"));
    EXPECT_TRUE(TemporaryFilesFor(path).empty());
}

TEST(AtomicFileWriter, AFailedRenameRemovesTheTemporary) {
    // The destination turns into a non-empty directory between creation and commit: rename must fail.
    const std::string path = TempPath("becomes_a_directory");
    AtomicFileWriter file(path, "test: ");
    file.write("data", 4);
    std::filesystem::create_directories(path + "/inside");
    EXPECT_THAT([&] { file.commit(); },
                ThrowsMessage<io_error>(AllOf(StartsWith("test: cannot move the written file into place: "),
                                              HasSubstr("\"" + path + "\" was left unchanged"))));
    EXPECT_TRUE(TemporaryFilesFor(path).empty());
    EXPECT_TRUE(std::filesystem::is_directory(path + "/inside"));
}

TEST(AtomicFileWriter, RefusesDirectoriesAndMissingParents) {
    const std::string dir = TempPath("a_directory");
    std::filesystem::create_directories(dir);
    EXPECT_THAT([&] { AtomicFileWriter(dir, "test: "); },
                ThrowsMessage<io_error>(HasSubstr("test: cannot write the file: it is a directory")));
    EXPECT_THAT([&] { AtomicFileWriter(dir + "/missing/x.bin", "test: "); },
                ThrowsMessage<io_error>(AllOf(
                    HasSubstr("test: cannot create the temporary file \"" + dir + "/missing/.x.bin.tmp-"),
                    HasSubstr("No such file or directory"))));
}

}  // namespace
}  // namespace vit3d::io
