// No N x N buffer: slice-aware attention and a whole hybrid block at 4,097 tokens allocate nothing of the
// size of the attention scores (or of the dense slice bias). This program records the largest single
// allocation while the forward runs, by replacing malloc / calloc / realloc (vit3d's tensors and workspaces,
// AlignedBuffer, allocate with them) and the global operator new (std::vector and the rest). Under
// AddressSanitizer or ThreadSanitizer, whose runtimes own malloc, the tests skip themselves.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vit3d.hpp>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VIT3D_TRACK_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define VIT3D_TRACK_ALLOCATIONS 0
#endif
#endif
#if !defined(VIT3D_TRACK_ALLOCATIONS) && defined(__GLIBC__)
#define VIT3D_TRACK_ALLOCATIONS 1
#endif
#ifndef VIT3D_TRACK_ALLOCATIONS
#define VIT3D_TRACK_ALLOCATIONS 0
#endif

namespace {

std::atomic<bool> tracking{false};
std::atomic<std::size_t> largest{0};

void note(std::size_t bytes) {
    if (!tracking.load(std::memory_order_relaxed)) return;
    std::size_t seen = largest.load(std::memory_order_relaxed);
    while (bytes > seen && !largest.compare_exchange_weak(seen, bytes)) {
    }
}

// The largest allocation made while `body` runs.
template <class Body>
std::size_t largest_allocation(Body&& body) {
    largest = 0;
    tracking = true;
    body();
    tracking = false;
    return largest;
}

}  // namespace

#if VIT3D_TRACK_ALLOCATIONS
// glibc's own allocator under its internal names: the replacements below note the size and forward.
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
extern "C" void __libc_free(void*);

extern "C" void* malloc(std::size_t bytes) {
    note(bytes);
    return __libc_malloc(bytes);
}
extern "C" void* calloc(std::size_t count, std::size_t size) {
    note(count * size);
    return __libc_calloc(count, size);
}
extern "C" void* realloc(void* p, std::size_t bytes) {
    note(bytes);
    return __libc_realloc(p, bytes);
}
extern "C" void free(void* p) { __libc_free(p); }

namespace {
void* allocate(std::size_t bytes, std::size_t alignment) {
    note(bytes);
    void* p = alignment <= alignof(std::max_align_t) ? __libc_malloc(bytes ? bytes : 1)
                                                     : __libc_memalign(alignment, bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t bytes) { return allocate(bytes, alignof(std::max_align_t)); }
void* operator new[](std::size_t bytes) { return allocate(bytes, alignof(std::max_align_t)); }
void* operator new(std::size_t bytes, std::align_val_t a) {
    return allocate(bytes, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t bytes, std::align_val_t a) {
    return allocate(bytes, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
#endif

#if VIT3D_TRACK_ALLOCATIONS
#define VIT3D_REQUIRE_TRACKING()
#else
#define VIT3D_REQUIRE_TRACKING() \
    GTEST_SKIP() << "allocations are not tracked under a sanitizer runtime or off glibc"
#endif

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace nn = vit3d::nn;

constexpr Index kTokens = 4097;  // a class token and a 16 x 16 x 16 patch grid
constexpr std::size_t kScoresBytes = std::size_t(kTokens) * kTokens * sizeof(float);  // one head's, 67 MB

template <class Module>
void randomize(Module& m) {
    std::uint64_t seed = 1;
    m.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), seed++, 0.0f, 0.1f);
    });
}

TEST(AttentionMemory, TheTrackerSeesAScoresSizedTensor) {
    VIT3D_REQUIRE_TRACKING();
    EXPECT_GE(largest_allocation([] { Tensor<float> scores({kTokens, kTokens}); }), kScoresBytes);
}

TEST(AttentionMemory, SliceAwareAttentionAt4097TokensAllocatesNoScoresSizedBuffer) {
    VIT3D_REQUIRE_TRACKING();
    nn::SliceAwareAttentionConfig c;
    c.attention.dim = 96;
    c.attention.heads = 12;
    nn::SliceAwareAttention<float> attention(c);
    randomize(attention);
    const Tensor<float> x = Tensor<float>::randn({1, kTokens, 96}, 7);
    Tensor<float> y;
    const std::size_t biggest = largest_allocation([&] { y = attention.forward(x, {16, 16, 16}, 1); });
    // The largest is the qkv projection [1, 4097, 288] (4.7 MB); the scores of one head would be 67 MB, the
    // dense bias [1, 12, 4097, 4097] 806 MB.
    EXPECT_LT(biggest, kScoresBytes / 8) << "largest allocation " << biggest << " bytes";
    EXPECT_GT(biggest, std::size_t(0));
    EXPECT_EQ(y.shape(), (vit3d::Shape{1, kTokens, 96}));
}

TEST(AttentionMemory, AHybridBlockWithRegionsAt4097TokensAllocatesNoScoresSizedBuffer) {
    VIT3D_REQUIRE_TRACKING();
    nn::HybridBlockConfig c;
    c.dim = 96;
    c.heads = 12;
    c.mlp_dim = 384;
    nn::HybridBlock<float> block(c);
    randomize(block);
    const Tensor<float> x = Tensor<float>::randn({1, kTokens, 96}, 8);
    const Tensor<float> regions = Tensor<float>::randn({1, 5, 96}, 9);
    Tensor<float> assignment = Tensor<float>::full({1, kTokens - 1, 5}, 0.2f);
    Tensor<float> y;
    const std::size_t biggest = largest_allocation([&] {
        y = block.forward(x, {16, 16, 16}, 1, &regions, &assignment);
    });
    EXPECT_LT(biggest, kScoresBytes / 8) << "largest allocation " << biggest << " bytes";
    EXPECT_EQ(y.shape(), x.shape());
}

}  // namespace
