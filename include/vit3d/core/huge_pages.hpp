#pragma once
// Whether vit3d asks the operating system for transparent huge pages for its large buffers.
//
// On Linux, every buffer of huge_page_advice_bytes or more that vit3d allocates (tensors, packed weights,
// kernel workspaces: detail/aligned_buffer.hpp) is advised with madvise(MADV_HUGEPAGE) over the whole 2 MiB
// pages inside it. With 4 KiB pages, a GEMM at thousands of tokens touches hundreds of pages per block of
// rows (every row of A and C its own page), and a Linear's packed weight is 7-9 MiB: on a Xeon VM whose
// transparent_hugepage setting is "madvise", the advice made the ViT-B GEMMs at 1,576 and 4,097 rows 4-7%
// faster and the 3D ViT at 4,097 tokens 2-4% (bench/README.md, "Findings"). Where the setting is "always" the
// advice changes nothing, and where it is "never" the kernel ignores it. Only whole 2 MiB pages inside a
// buffer are advised, so memory grows only where a large buffer is left partly untouched.
//
// The environment variable VIT3D_HUGE_PAGES (on, off) sets it at first use; set_huge_pages from code. A
// change applies to buffers allocated from then on.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "vit3d/core/env_setting.hpp"
#include "vit3d/core/message.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace vit3d {

// Buffers at least this large are advised; smaller ones rarely hold a whole aligned 2 MiB page.
inline constexpr std::size_t huge_page_advice_bytes = std::size_t(4) << 20;

// "on" or "off"; anything else throws std::invalid_argument.
inline bool parse_huge_pages(const std::string& text, const char* op = "vit3d::parse_huge_pages") {
    if (text == "on") return true;
    if (text == "off") return false;
    throw std::invalid_argument(message(op, ": expected on or off, got '", text, "'"));
}

}  // namespace vit3d

namespace vit3d::detail {

// -1: not read yet; otherwise 0 (off) or 1 (on). Read from VIT3D_HUGE_PAGES on first use.
inline std::atomic<int>& huge_pages_setting() {
    static std::atomic<int> on{-1};
    return on;
}

}  // namespace vit3d::detail

namespace vit3d {

inline bool huge_pages() {
    return detail::env_setting(detail::huge_pages_setting(), "VIT3D_HUGE_PAGES", 1, [](const char* text) {
               return parse_huge_pages(text, "VIT3D_HUGE_PAGES") ? 1 : 0;
           }) == 1;
}

inline void set_huge_pages(bool on) { detail::huge_pages_setting().store(on ? 1 : 0); }

}  // namespace vit3d

namespace vit3d::detail {

// Advises the whole 2 MiB pages of [block, block + bytes) for transparent huge pages, when huge_pages() is
// on and the block is large enough. Advice only: a failure (an old kernel, no THP) changes nothing.
inline void advise_huge_pages(void* block, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes < huge_page_advice_bytes || !huge_pages()) return;
    constexpr std::uintptr_t page = std::uintptr_t(2) << 20;
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(block);
    const std::uintptr_t first = (begin + page - 1) & ~(page - 1), last = (begin + bytes) & ~(page - 1);
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
    (void)block;
    (void)bytes;
#endif
}

}  // namespace vit3d::detail
