#pragma once
// Writing a file so that its path never holds a partial one. The bytes go to a temporary file created next
// to the destination (same directory, hence same file system, so that the final rename is atomic), and
// commit() renames it onto the destination once every byte has been written and the file closed. Until
// then the destination is untouched: an old file of that name stays as it was. If commit() is not reached
// (an exception, a full disk) the destructor removes the temporary file. close() may come first, to learn
// of every write error before the rename: a caller that must write something else before the destination
// appears (a record of what the file holds) does that between close() and commit().
//
// What this does not give: durability across a power failure (there is no fsync; a crash of the process or
// an exception is what it protects against), and the old file's permissions (the new file is created with
// the default ones, like any new file). A symbolic link at the destination is replaced, not written through.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include "vit3d/core/error.hpp"
#include "vit3d/formats/read_file.hpp"

namespace vit3d::io {

class AtomicFileWriter {
  public:
    // Creates the temporary file. `where` starts every error message (e.g. "vit3d::io::write_npy(\"x\"): ").
    AtomicFileWriter(std::string path, std::string where) : path_(std::move(path)), where_(std::move(where)) {
        const std::filesystem::path destination(path_);
        if (destination.filename().empty())
            throw io_error(message(where_, "expected a file name, got a path ending in a separator"));
        std::error_code ec;
        if (std::filesystem::is_directory(destination, ec))
            throw io_error(message(where_, "cannot write the file: it is a directory"));
        // "wbx" (C11) fails if the name exists, so two writers never share a temporary file.
        std::uint64_t seed = random_seed();
        std::string candidate;
        int error = 0;
        for (int attempt = 0; attempt < 16 && file_ == nullptr; ++attempt) {
            candidate = (destination.parent_path() /
                         ("." + destination.filename().string() + ".tmp-" + hex(splitmix(seed))))
                            .string();
            file_ = std::fopen(candidate.c_str(), "wbx");
            error = errno;
            if (file_ == nullptr && error != EEXIST) break;
        }
        if (file_ == nullptr)
            throw io_error(message(where_, "cannot create the temporary file ",
                                   detail::quoted_path(candidate), ": ",
                                   std::generic_category().message(error)));
        temporary_ = std::move(candidate);
    }

    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    ~AtomicFileWriter() { discard(); }

    // Appends `size` bytes; throws io_error (and removes the temporary file) if they cannot be written.
    void write(const void* data, std::size_t size) {
        if (file_ == nullptr) throw io_error(message(where_, "write after commit or after a failed write"));
        if (size > 0 && std::fwrite(data, 1, size, file_) != size) {
            const int error = errno;
            discard();
            throw io_error(message(where_, "writing ", size,
                                   " bytes failed: ", std::generic_category().message(error), "; ",
                                   detail::quoted_path(path_), " was left unchanged"));
        }
        written_ += size;
    }

    // Flushes and closes the temporary file, so that the only step commit() has left is the rename. Throws
    // io_error (and removes the temporary file) if the bytes cannot all be written.
    void close() {
        if (file_ == nullptr)
            throw io_error(message(where_, "close after close, after commit or after a failed write"));
        std::FILE* file = std::exchange(file_, nullptr);
        const bool flushed = std::fflush(file) == 0 && !std::ferror(file);
        const int flush_error = errno;
        if (std::fclose(file) != 0 || !flushed) {
            const int error = flushed ? errno : flush_error;
            remove_temporary();
            throw io_error(message(where_, "writing ", written_,
                                   " bytes failed: ", std::generic_category().message(error), "; ",
                                   detail::quoted_path(path_), " was left unchanged"));
        }
    }

    // Closes the temporary file (unless close() did) and renames it onto the destination. Throws io_error
    // (and removes the temporary file) if closing or renaming fails.
    void commit() {
        if (file_ != nullptr) close();
        if (temporary_.empty())
            throw io_error(message(where_, "commit after commit or after a failed write"));
        std::error_code ec;
        std::filesystem::rename(temporary_, path_, ec);
        if (ec) {
            remove_temporary();
            throw io_error(message(where_, "cannot move the written file into place: ", ec.message(), "; ",
                                   detail::quoted_path(path_), " was left unchanged"));
        }
        temporary_.clear();
    }

    // The temporary file's path while it exists (empty after commit()).
    const std::string& temporary_path() const noexcept { return temporary_; }

  private:
    void discard() noexcept {
        if (file_ != nullptr) std::fclose(std::exchange(file_, nullptr));
        remove_temporary();
    }
    void remove_temporary() noexcept {
        if (temporary_.empty()) return;
        std::error_code ignored;
        std::filesystem::remove(temporary_, ignored);
        temporary_.clear();
    }

    static std::uint64_t random_seed() {
        std::uint64_t seed =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        try {
            seed ^= static_cast<std::uint64_t>(std::random_device{}()) << 32;
        } catch (...) {  // std::random_device may throw where no entropy source exists; the clock will do
        }
        return seed;
    }
    static std::uint64_t splitmix(std::uint64_t& state) {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    static std::string hex(std::uint64_t v) {
        static const char digits[] = "0123456789abcdef";
        std::string out(12, '0');
        for (auto& c : out) {
            c = digits[v & 15];
            v >>= 4;
        }
        return out;
    }

    std::string path_;
    std::string where_;
    std::string temporary_;
    std::FILE* file_ = nullptr;
    std::size_t written_ = 0;
};

}  // namespace vit3d::io
