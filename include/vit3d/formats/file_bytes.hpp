#pragma once
// Where the bytes of an opened safetensors file live, behind one small interface, so that the reader can
// decode a tensor straight into its destination from any of them:
//   - MemoryBytes: a buffer the caller handed over (Safetensors::parse, Safetensors::read);
//   - MappedFile:  the file mapped read-only with POSIX mmap; a tensor's pages are read from the file when
//                  first touched and can be dropped again once decoded (release), so a loader's resident
//                  memory holds about one tensor of the file at a time, not the whole file;
//   - StreamedFile: plain reads at an offset, for systems or files where mmap is not available: into the
//                  destination itself when no conversion is needed, else through a bounded buffer
//                  (detail::stream_chunk_bytes).
// Every storage is immutable after construction and safe to read from several threads at once.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define VIT3D_HAS_MMAP 1
#else
#define VIT3D_HAS_MMAP 0
#endif

namespace vit3d::io {

// How Safetensors::open reaches a file's bytes.
enum class FileAccess {
    map,     // mmap where the system has it (falls back to stream when mapping fails), else stream
    stream,  // read at offsets through a bounded buffer; never maps
};

}  // namespace vit3d::io

namespace vit3d::detail {

// Reads of a streamed file go through a buffer of at most this many bytes.
inline constexpr std::size_t stream_chunk_bytes = std::size_t(1) << 22;

class FileBytes {
  public:
    virtual ~FileBytes() = default;
    std::uint64_t size() const noexcept { return size_; }
    // The bytes from `offset` on when they are addressable memory (buffer, mapping), else nullptr.
    virtual const std::uint8_t* address(std::uint64_t offset) const noexcept = 0;
    // Copies bytes [offset, offset + n) to dst; throws io_error when the file no longer holds them.
    virtual void copy(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const = 0;
    // Tells the system that bytes [offset, offset + n) will not be read again soon; they stay readable.
    virtual void release(std::uint64_t /*offset*/, std::uint64_t /*n*/) const noexcept {}
    // "memory", "mmap" or "read": for messages and benchmarks.
    virtual const char* access_name() const noexcept = 0;

  protected:
    std::uint64_t size_ = 0;
};

class MemoryBytes final : public FileBytes {
  public:
    explicit MemoryBytes(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {
        size_ = bytes_.size();
    }
    const std::uint8_t* address(std::uint64_t offset) const noexcept override {
        return bytes_.data() + offset;
    }
    void copy(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const override {
        if (n > 0) std::memcpy(dst, bytes_.data() + offset, n);
    }
    const char* access_name() const noexcept override { return "memory"; }

  private:
    std::vector<std::uint8_t> bytes_;
};

class StreamedFile final : public FileBytes {
  public:
    StreamedFile(const std::string& path, const std::string& where)
        : where_(where), in_(path, std::ios::binary) {
        if (!in_) throw io_error(message(where, "cannot open the file for reading"));
        in_.seekg(0, std::ios::end);
        const std::streamoff end = in_.tellg();
        if (!in_ || end < 0) throw io_error(message(where, "cannot determine the file's size"));
        size_ = static_cast<std::uint64_t>(end);
    }
    const std::uint8_t* address(std::uint64_t) const noexcept override { return nullptr; }
    void copy(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const override {
        const std::lock_guard<std::mutex> lock(mutex_);
        in_.clear();
        in_.seekg(static_cast<std::streamoff>(offset));
        in_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
        if (static_cast<std::size_t>(in_.gcount()) != n)
            throw io_error(message(where_, "expected to read ", n, " bytes at offset ", offset, ", got ",
                                   in_.gcount(), " (was the file truncated after it was opened?)"));
    }
    const char* access_name() const noexcept override { return "read"; }

  private:
    std::string where_;
    mutable std::mutex mutex_;  // one stream position shared by all readers
    mutable std::ifstream in_;
};

#if VIT3D_HAS_MMAP

// The whole file mapped read-only and private. Pages are read on first access; release() drops them from
// the process (MADV_DONTNEED), and a later access reads them from the page cache or the file again.
// Like every mmap reader, a file truncated by another process while mapped makes access fault (SIGBUS):
// use FileAccess::stream for files that may change under the reader.
class MappedFile final : public FileBytes {
  public:
    // Maps `path`; returns nullptr (and leaves the fallback to the caller) when the file cannot be mapped,
    // e.g. an empty file or a file system without mmap. Throws io_error when it cannot be opened at all.
    static std::unique_ptr<MappedFile> open(const std::string& path, const std::string& where) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            throw io_error(
                message(where, "cannot open the file for reading: ", std::generic_category().message(errno)));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
            static_cast<std::uint64_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
            ::close(fd);
            return nullptr;
        }
        const std::size_t length = static_cast<std::size_t>(st.st_size);
        void* base = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
        ::close(fd);  // the mapping keeps the file referenced
        if (base == MAP_FAILED) return nullptr;
        return std::unique_ptr<MappedFile>(new MappedFile(static_cast<const std::uint8_t*>(base), length));
    }
    ~MappedFile() override { ::munmap(const_cast<std::uint8_t*>(base_), static_cast<std::size_t>(size_)); }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::uint8_t* address(std::uint64_t offset) const noexcept override { return base_ + offset; }
    void copy(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const override {
        if (n > 0) std::memcpy(dst, base_ + offset, n);
    }
    void release(std::uint64_t offset, std::uint64_t n) const noexcept override {
        if (n == 0) return;
        // Whole pages around the range: a neighbour sharing an edge page just reads it again if needed.
        static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        const std::uint64_t first = offset / page * page;
        const std::uint64_t last = std::min(size_, (offset + n + page - 1) / page * page);
        ::madvise(const_cast<std::uint8_t*>(base_) + first, static_cast<std::size_t>(last - first),
                  MADV_DONTNEED);
    }
    const char* access_name() const noexcept override { return "mmap"; }

  private:
    MappedFile(const std::uint8_t* base, std::size_t length) : base_(base) { size_ = length; }
    const std::uint8_t* base_;
};

#endif

// The bytes of the file at `path`, mapped or streamed as `access` asks (and the system allows).
inline std::unique_ptr<FileBytes> open_file_bytes(const std::string& path, io::FileAccess access,
                                                  const std::string& where) {
#if VIT3D_HAS_MMAP
    if (access == io::FileAccess::map) {
        if (std::unique_ptr<MappedFile> mapped = MappedFile::open(path, where)) return mapped;
    }
#else
    (void)access;
#endif
    return std::make_unique<StreamedFile>(path, where);
}

}  // namespace vit3d::detail
