#pragma once
// Owning, 64-byte aligned (one cache line, one AVX-512 register) storage for a tensor's elements.
// Unlike std::vector it can be allocated without initialising, so kernels that overwrite every
// element do not pay for a zero fill first.
//
// A zeroed buffer comes from calloc, not from malloc + memset: large blocks are fresh pages from the
// operating system, which are zero already and cost nothing until first written. So building a model
// whose parameters a weight loader then overwrites touches each parameter's memory once, at load, instead
// of twice. Blocks of 4 MiB and more are advised for transparent huge pages (core/huge_pages.hpp).
// calloc has no aligned variant, so a block is over-allocated by the alignment and the data
// pointer rounded up inside it; the block's own pointer is kept for free().

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "vit3d/core/config.hpp"
#include "vit3d/core/huge_pages.hpp"

namespace vit3d::detail {

// Tag for AlignedBuffer's zero-initialised constructor.
struct ZeroedTag {};
inline constexpr ZeroedTag zeroed{};

template <class T>
class AlignedBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable elements only");

  public:
    static constexpr std::size_t alignment = 64;

    AlignedBuffer() = default;
    // `size` elements, uninitialised.
    explicit AlignedBuffer(Index size) : size_(size) { allocate(size, false); }
    // `size` elements, all zero (all bits zero, which is 0 for the arithmetic types a tensor holds).
    AlignedBuffer(Index size, ZeroedTag) : size_(size) { allocate(size, true); }
    AlignedBuffer(const AlignedBuffer& other) : AlignedBuffer(other.size_) {
        if (size_ > 0) std::memcpy(data_, other.data_, static_cast<std::size_t>(size_) * sizeof(T));
    }
    AlignedBuffer(AlignedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)),
          block_(std::exchange(other.block_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}
    AlignedBuffer& operator=(AlignedBuffer other) noexcept {
        swap(other);
        return *this;
    }
    ~AlignedBuffer() { std::free(block_); }

    void swap(AlignedBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(block_, other.block_);
        std::swap(size_, other.size_);
    }

    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    Index size() const noexcept { return size_; }

  private:
    void allocate(Index size, bool zero) {
        if (size <= 0) return;
        constexpr std::size_t max_bytes = std::numeric_limits<std::size_t>::max() - alignment;
        if (static_cast<std::size_t>(size) > max_bytes / sizeof(T)) throw std::bad_alloc();
        const std::size_t bytes = static_cast<std::size_t>(size) * sizeof(T) + alignment;
        block_ = zero ? std::calloc(bytes, 1) : std::malloc(bytes);
        if (!block_) throw std::bad_alloc();
        const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(block_);
        data_ = reinterpret_cast<T*>((address + alignment - 1) / alignment * alignment);
        advise_huge_pages(block_, bytes);  // large blocks only (core/huge_pages.hpp)
    }

    T* data_ = nullptr;
    void* block_ = nullptr;  // what malloc/calloc returned; data_ lies within its first `alignment` bytes
    Index size_ = 0;
};

}  // namespace vit3d::detail
