#pragma once
// One layer's weight [N, K] packed for the GEMM kernel, kept between calls (core/weight_packing.hpp says
// when). The pack records the weight tensor's write stamp and is trusted while it stays so: any non-const
// access to the tensor clears the stamp (tensor/tensor.hpp), which drops the pack at the next call. Stamps
// come from one process-wide counter, so no other tensor can carry this one's.
//
// forward() is const and may run on several threads at once: lookups and packing are serialised by a mutex,
// and a call holds its pack by shared_ptr, so a pack replaced by another thread stays alive while in use.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/weight_packing.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::detail {

inline std::uint64_t fresh_write_stamp() {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;  // never 0, the "written" stamp
}

// Whether vit3d's own GEMM (which reads packs) runs products of T: a BLAS build hands float and double to
// cblas_?gemm, which packs for itself.
template <class T>
inline constexpr bool own_gemm_runs =
#ifdef VIT3D_USE_BLAS
    !(std::is_same_v<T, float> || std::is_same_v<T, double>);
#else
    true;
#endif

// A layer keeps its weight packed for products with fewer rows (tokens of a batch) than this. From this many
// rows on, packing the weight inside the call costs under 1% of the product, and a kept pack would only add
// a copy of the weight to memory (a 16,385-token CT volume through ViT-B-sized layers: 340 MB).
inline constexpr Index packed_weight_max_rows = 4096;

template <class T>
class WeightPackCache {
  public:
    WeightPackCache() = default;
    // A copied layer has a copied weight, which no pack describes yet: copies start empty.
    // A moved layer's weight was moved, which clears its stamp: moves start empty as well (and are noexcept,
    // so that vectors of layers move rather than copy when they grow).
    WeightPackCache(const WeightPackCache&) noexcept {}
    WeightPackCache(WeightPackCache&&) noexcept {}
    WeightPackCache& operator=(const WeightPackCache&) {
        clear();
        return *this;
    }
    WeightPackCache& operator=(WeightPackCache&&) {
        clear();
        return *this;
    }

    // The pack of `weight` [N, K] for the kernels of `isa`, for a product with `rows` rows, or null: the GEMM
    // then packs panels itself. A pack is made here when none fits the weight as it is now and the product
    // has fewer than packed_weight_max_rows rows; null when packing is off. `op` names the layer in errors.
    std::shared_ptr<const GemmWeights<T>> get(const Tensor<T>& weight, Isa isa, Index rows,
                                              const char* op) const {
        return lookup(weight, isa, rows < packed_weight_max_rows, op);
    }

    // Packs `weight` for the kernels of `isa` now, unless a pack of it as it is now exists (or packing is
    // off).
    void pack(const Tensor<T>& weight, Isa isa, const char* op) const { (void)lookup(weight, isa, true, op); }

    // Bytes held by the pack (0 when there is none).
    Index bytes() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return pack_ ? static_cast<Index>(pack_->packed.size() * sizeof(T)) : 0;
    }

  private:
    std::shared_ptr<const GemmWeights<T>> lookup(const Tensor<T>& weight, Isa isa, bool make,
                                                 const char* op) const {
        const WeightPacking mode = weight_packing();
        if (mode == WeightPacking::off || !own_gemm_runs<T>) {
            clear();
            return nullptr;
        }
        const Index N = weight.dim(0), K = weight.dim(1);
        std::lock_guard<std::mutex> lock(mutex_);
        const bool unchanged = stamp_ != 0 && weight.write_stamp() == stamp_ && source_ == weight.data();
        if (!unchanged) {  // never packed, or written since
            pack_.reset();
            source_ = weight.data();
            stamp_ = fresh_write_stamp();
            weight.set_write_stamp(stamp_);
        }
        const bool fits = pack_ && pack_->isa == isa && pack_->N == N && pack_->K == K;
        if (fits && mode == WeightPacking::verified && !pack_->matches(weight.data(), K))
            throw stale_weights_error(
                message(op,
                        ": the packed weights no longer match the weight tensor: it was "
                        "written through a pointer or map taken before the last forward "
                        "(take it again after a forward, or write through the tensor)"));
        if (!fits && make)
            pack_ = std::make_shared<const GemmWeights<T>>(
                GemmWeights<T>::pack(weight.data(), K, N, K, isa, num_threads()));
        return fits || make ? pack_ : nullptr;
    }

    void clear() const {
        std::lock_guard<std::mutex> lock(mutex_);
        pack_.reset();
        stamp_ = 0;
        source_ = nullptr;
    }

    mutable std::mutex mutex_;
    mutable std::shared_ptr<const GemmWeights<T>> pack_;
    mutable std::uint64_t stamp_ = 0;
    mutable const T* source_ = nullptr;
};

}  // namespace vit3d::detail
