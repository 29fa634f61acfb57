#pragma once
// Owning, 64-byte aligned (one cache line, one AVX-512 register) storage for a tensor's elements.
// Unlike std::vector it can be allocated without initialising, so kernels that overwrite every
// element do not pay for a zero fill first.

#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "vit3d/core/config.hpp"

namespace vit3d::detail {

template <class T>
class AlignedBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable elements only");

  public:
    static constexpr std::size_t alignment = 64;

    AlignedBuffer() = default;
    explicit AlignedBuffer(Index size) : data_(allocate(size)), size_(size) {}
    AlignedBuffer(const AlignedBuffer& other) : AlignedBuffer(other.size_) {
        if (size_ > 0) std::memcpy(data_, other.data_, static_cast<std::size_t>(size_) * sizeof(T));
    }
    AlignedBuffer(AlignedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    AlignedBuffer& operator=(AlignedBuffer other) noexcept {
        swap(other);
        return *this;
    }
    ~AlignedBuffer() { deallocate(data_); }

    void swap(AlignedBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }

    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    Index size() const noexcept { return size_; }

  private:
    static T* allocate(Index size) {
        if (size <= 0) return nullptr;
        return static_cast<T*>(
            ::operator new(static_cast<std::size_t>(size) * sizeof(T), std::align_val_t(alignment)));
    }
    static void deallocate(T* p) noexcept {
        if (p) ::operator delete(p, std::align_val_t(alignment));
    }

    T* data_ = nullptr;
    Index size_ = 0;
};

}  // namespace vit3d::detail
