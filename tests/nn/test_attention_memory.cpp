// No N x N buffer: slice-aware attention and a whole hybrid block at 4,097 tokens allocate nothing of the
// size of the attention scores (or of the dense slice bias). This program replaces the global operator new
// to record the largest single allocation while the forward runs; vit3d's tensors and workspaces
// (AlignedBuffer) and every std::vector go through it.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vit3d.hpp>

namespace {

std::atomic<bool> tracking{false};
std::atomic<std::size_t> largest{0};

void note(std::size_t bytes) {
    if (!tracking.load(std::memory_order_relaxed)) return;
    std::size_t seen = largest.load(std::memory_order_relaxed);
    while (bytes > seen && !largest.compare_exchange_weak(seen, bytes)) {
    }
}

void* allocate(std::size_t bytes, std::size_t alignment) {
    note(bytes);
    void* p = nullptr;
    if (alignment <= alignof(std::max_align_t)) {
        p = std::malloc(bytes ? bytes : 1);
    } else if (posix_memalign(&p, alignment, bytes ? bytes : 1) != 0) {
        p = nullptr;
    }
    if (!p) throw std::bad_alloc();
    return p;
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

void* operator new(std::size_t bytes) { return allocate(bytes, alignof(std::max_align_t)); }
void* operator new[](std::size_t bytes) { return allocate(bytes, alignof(std::max_align_t)); }
void* operator new(std::size_t bytes, std::align_val_t a) {
    return allocate(bytes, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t bytes, std::align_val_t a) {
    return allocate(bytes, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

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
    EXPECT_GE(largest_allocation([] { Tensor<float> scores({kTokens, kTokens}); }), kScoresBytes);
}

TEST(AttentionMemory, SliceAwareAttentionAt4097TokensAllocatesNoScoresSizedBuffer) {
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
