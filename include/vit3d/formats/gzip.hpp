#pragma once
// gzip streams (RFC 1952) through zlib, for .nii.gz: a decompressor that produces output in the amounts
// asked for (so that a reader can look at a header before deciding how much more it needs, and memory
// grows with the data actually present, never with sizes a corrupt header claims) and a compressor that
// writes to a sink as it goes. Concatenated gzip members (what `cat a.gz b.gz` makes) are one stream, as
// gzip(1) reads them; bytes after the last member, a truncated member or a wrong CRC are errors. Part of
// the vit3d::nifti target (zlib: Debian zlib1g-dev).

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"

namespace vit3d::detail {

inline bool has_gzip_magic(const std::uint8_t* bytes, std::size_t size) {
    return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

class GzipReader {
  public:
    // `bytes` must outlive the reader; `where` starts every error message.
    GzipReader(const std::uint8_t* bytes, std::size_t size, std::string where)
        : input_(bytes), size_(size), where_(std::move(where)) {
        if (!has_gzip_magic(bytes, size)) fail("expected the gzip magic bytes 1f 8b at the start");
        std::memset(&stream_, 0, sizeof stream_);
        if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK)  // 16 +: gzip wrapper only
            throw io_error(message(where_, "zlib could not start decompressing"));
        active_ = true;
    }
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;
    ~GzipReader() {
        if (active_) inflateEnd(&stream_);
    }

    // Appends up to `n` more decompressed bytes to `out`; fewer only at the end of the stream. Memory grows
    // with the bytes produced, not with n.
    void read(std::vector<std::uint8_t>& out, std::uint64_t n) {
        constexpr std::size_t chunk = std::size_t(1) << 20;
        while (n > 0 && !finished_) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk));
            const std::size_t old_size = out.size();
            out.resize(old_size + want);
            const std::size_t got = inflate_into(out.data() + old_size, want);
            out.resize(old_size + got);
            n -= got;
        }
    }

    // Whether the stream has ended (all members decompressed, their CRCs checked).
    bool finished() const noexcept { return finished_; }

    // Decompressed bytes produced so far.
    std::uint64_t produced() const noexcept { return produced_; }

  private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw io_error(message(where_, "gzip: ", parts...));
    }

    std::size_t inflate_into(std::uint8_t* dst, std::size_t n) {
        std::size_t got = 0;
        while (got < n && !finished_) {
            if (stream_.avail_in == 0) {
                const std::size_t remaining = size_ - consumed_;
                if (remaining == 0)
                    fail("the compressed data end before the end of the stream, after ", produced_,
                         " bytes (truncated file?)");
                const auto feed =
                    static_cast<uInt>(std::min<std::size_t>(remaining, std::numeric_limits<uInt>::max()));
                stream_.next_in = const_cast<Bytef*>(input_ + consumed_);
                stream_.avail_in = feed;
                consumed_ += feed;
            }
            stream_.next_out = dst + got;
            const auto room =
                static_cast<uInt>(std::min<std::size_t>(n - got, std::numeric_limits<uInt>::max()));
            stream_.avail_out = room;
            const int rc = inflate(&stream_, Z_NO_FLUSH);
            const std::size_t produced_now = room - stream_.avail_out;
            got += produced_now;
            produced_ += produced_now;
            if (rc == Z_STREAM_END) {
                next_member();
            } else if (rc == Z_BUF_ERROR && produced_now == 0 && stream_.avail_in != 0) {
                fail("zlib made no progress (corrupt data)");
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                fail("corrupt compressed data: ", stream_.msg ? stream_.msg : message("zlib error ", rc),
                     ", after ", produced_, " decompressed bytes");
            }
        }
        return got;
    }

    // After a member's end: another member follows, or the input must end here.
    void next_member() {
        const std::size_t unused = stream_.avail_in;
        const std::size_t at = consumed_ - unused;  // first byte after the member
        if (at == size_) {
            finished_ = true;
            return;
        }
        if (!has_gzip_magic(input_ + at, size_ - at))
            fail(size_ - at, " bytes after the end of the gzip stream at byte ", at,
                 " are not another gzip member (trailing garbage)");
        if (inflateReset(&stream_) != Z_OK) fail("zlib could not start the next member");
    }

    const std::uint8_t* input_;
    std::size_t size_;
    std::string where_;
    z_stream stream_;
    bool active_ = false;
    bool finished_ = false;
    std::size_t consumed_ = 0;  // input bytes handed to zlib
    std::uint64_t produced_ = 0;
};

// Compresses what is written into a gzip stream handed, piece by piece, to sink(const std::uint8_t*,
// std::size_t). zlib's default level; the gzip header holds no name and no time, so the output depends
// on the input only.
template <class Sink>
class GzipWriter {
  public:
    GzipWriter(Sink sink, std::string where)
        : sink_(std::move(sink)), where_(std::move(where)), buffer_(std::size_t(1) << 16) {
        std::memset(&stream_, 0, sizeof stream_);
        if (deflateInit2(&stream_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            throw io_error(message(where_, "zlib could not start compressing"));
    }
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;
    ~GzipWriter() { deflateEnd(&stream_); }

    void write(const void* data, std::size_t n) {
        pump(static_cast<const std::uint8_t*>(data), n, Z_NO_FLUSH);
    }
    // Ends the stream (trailer with CRC and length); nothing may be written after.
    void finish() { pump(nullptr, 0, Z_FINISH); }

  private:
    // zlib's deflate loop: feed the input (at most 4 GiB per call), drain the output until deflate leaves
    // room in it, which means it has taken all the input (or, with Z_FINISH, ended the stream).
    void pump(const std::uint8_t* data, std::size_t n, int flush) {
        for (;;) {
            const auto feed = static_cast<uInt>(std::min<std::size_t>(n, std::numeric_limits<uInt>::max()));
            const bool last = feed == n;
            stream_.next_in = const_cast<Bytef*>(data);
            stream_.avail_in = feed;
            do {
                stream_.next_out = buffer_.data();
                stream_.avail_out = static_cast<uInt>(buffer_.size());
                if (deflate(&stream_, last ? flush : Z_NO_FLUSH) == Z_STREAM_ERROR)
                    throw io_error(message(where_, "gzip: zlib could not compress"));
                sink_(buffer_.data(), buffer_.size() - stream_.avail_out);
            } while (stream_.avail_out == 0);
            if (last) return;
            data += feed;
            n -= feed;
        }
    }

    Sink sink_;
    std::string where_;
    z_stream stream_;
    std::vector<std::uint8_t> buffer_;
};

}  // namespace vit3d::detail
