#pragma once
// A layer's weights packed for the GEMM kernel, kept between calls (core/weight_packing.hpp says when). The
// pack records its tensors' write stamps and is trusted while they stay so: any non-const access to a tensor
// clears its stamp (tensor/tensor.hpp), which drops the pack at the next call. Stamps come from one
// process-wide counter, so no other tensor can carry one's. A tensor is watched by one cache only (a second
// would re-stamp it, and each would repack at every call): a gated MLP's pack takes its fc1 weights from
// their Linear layers' caches (nn/mlp.hpp).
//
// forward() is const and may run on several threads at once: lookups and packing are serialised by a mutex,
// and a call holds its pack by shared_ptr, so a pack replaced by another thread stays alive while in use.
//
// A Linear in int8 or bf16 (core/precision.hpp) keeps its weight quantised and packed for the int8 GEMM
// (Int8WeightCache) or converted for the bf16 one (Bf16WeightCache) instead, the same way: made once, dropped
// when the weight is written, remade for another variant.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/weight_packing.hpp"
#include "vit3d/detail/bf16_gemm.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/int8_linear.hpp"
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

// The variant of the kernels a pack was made for, which the variant of a call must equal: the instruction-set
// level of a float pack (its member `isa`), the int8 kernel of an int8 one.
template <class Pack>
Isa pack_variant(const Pack& pack) {
    return pack.isa;
}
inline Int8Kernel pack_variant(const Int8AffineWeights& pack) { return pack.kernel(); }
// A bf16 pack's: the float kernels' level it was made at, which decides its bf16 variant (and, emulated, the
// float pack it holds).
inline Isa pack_variant(const Bf16Weights& pack) { return pack.isa; }

// Whether a kept pack would be read: a BLAS build hands float and double products to cblas_?gemm, which reads
// no pack of ours; the int8 GEMM reads its pack and nothing else, in every build.
template <class T, class Pack>
inline constexpr bool pack_is_read = own_gemm_runs<T>;
template <class T>
inline constexpr bool pack_is_read<T, Int8AffineWeights> = true;
template <class T>
inline constexpr bool pack_is_read<T, Bf16Weights> = true;

// A pack made from a few tensors (a weight and its bias, or a gated MLP's two weights and biases), kept while
// none of them is written: each records its own write stamp, as WeightPackCache's weight does. A source may
// be absent (a layer without bias): null in `Sources`. Pack has bytes() and a variant (pack_variant).
template <class T, class Pack, std::size_t Count>
class StampedPackCache {
  public:
    using Sources = std::array<const Tensor<T>*, Count>;
    using Variant = decltype(pack_variant(std::declval<const Pack&>()));

    StampedPackCache() = default;
    // Copies and moves start empty, for the reasons WeightPackCache gives.
    StampedPackCache(const StampedPackCache&) noexcept {}
    StampedPackCache(StampedPackCache&&) noexcept {}
    StampedPackCache& operator=(const StampedPackCache&) {
        clear();
        return *this;
    }
    StampedPackCache& operator=(StampedPackCache&&) {
        clear();
        return *this;
    }

    // The pack of `sources` as they are now for the kernels of `variant`, made by make_pack() when there is
    // none and `make` is set; null when there is none or packing is off. In verified mode, `matches(pack)` is
    // asked whether a kept pack still holds the sources. `op` names the layer in errors.
    template <class Make, class Matches>
    std::shared_ptr<const Pack> get(const Sources& sources, Variant variant, bool make, const char* op,
                                    Make&& make_pack, Matches&& matches) const {
        const WeightPacking mode = weight_packing();
        if (mode == WeightPacking::off || !pack_is_read<T, Pack>) {
            clear();
            return nullptr;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (!unchanged(sources)) {  // never packed, or a source was written since
            pack_.reset();
            recorded_ = true;
            for (std::size_t s = 0; s < Count; ++s) {
                data_[s] = sources[s] ? sources[s]->data() : nullptr;
                stamps_[s] = sources[s] ? fresh_write_stamp() : 0;
                if (sources[s]) sources[s]->set_write_stamp(stamps_[s]);
            }
        }
        const bool fits = pack_ && pack_variant(*pack_) == variant;
        if (fits && mode == WeightPacking::verified && !matches(*pack_))
            throw stale_weights_error(
                message(op,
                        ": the packed weights no longer match the weight tensor: it was "
                        "written through a pointer or map taken before the last forward "
                        "(take it again after a forward, or write through the tensor)"));
        if (!fits && make) pack_ = std::make_shared<const Pack>(make_pack());
        return fits || make ? pack_ : nullptr;
    }

    // Bytes held by the pack (0 when there is none).
    Index bytes() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return pack_ ? pack_->bytes() : 0;
    }

    // Drops the pack, if there is one (a layer that stopped reading it: another precision).
    void release() const { clear(); }

  private:
    bool unchanged(const Sources& sources) const {
        if (!recorded_) return false;
        for (std::size_t s = 0; s < Count; ++s) {
            if (!sources[s] ? data_[s] != nullptr || stamps_[s] != 0
                            : stamps_[s] == 0 || sources[s]->write_stamp() != stamps_[s] ||
                                  sources[s]->data() != data_[s])
                return false;
        }
        return true;
    }

    void clear() const {
        std::lock_guard<std::mutex> lock(mutex_);
        pack_.reset();
        recorded_ = false;
        stamps_ = {};
        data_ = {};
    }

    mutable std::mutex mutex_;
    mutable std::shared_ptr<const Pack> pack_;
    mutable bool recorded_ = false;
    mutable std::array<std::uint64_t, Count> stamps_{};
    mutable std::array<const T*, Count> data_{};
};

// One layer's weight [N, K] packed for the GEMM.
template <class T>
class WeightPackCache {
  public:
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
    Index bytes() const { return cache_.bytes(); }

    void release() const { cache_.release(); }

  private:
    std::shared_ptr<const GemmWeights<T>> lookup(const Tensor<T>& weight, Isa isa, bool make,
                                                 const char* op) const {
        const Index N = weight.dim(0), K = weight.dim(1);
        return cache_.get(
            {&weight}, isa, make, op,
            [&] { return GemmWeights<T>::pack(weight.data(), K, N, K, isa, num_threads()); },
            [&](const GemmWeights<T>& pack) { return pack.matches(weight.data(), K); });
    }

    StampedPackCache<T, GemmWeights<T>, 1> cache_;
};

// One float layer's weight [N, K] quantised and packed for the int8 GEMM, with its rounding error
// (Int8AffineWeights). Kept whatever the product's row count, unlike the float pack: it is half the weight's
// size, and the int8 GEMM reads no other form of the weight. The bias is not part of it (each call reads the
// bias as it is).
class Int8WeightCache {
  public:
    // The pack of `weight` for the int8 kernel `kernel`, made now when none fits the weight as it is now;
    // with packing off, one made for this call alone. `op` names the layer in errors.
    std::shared_ptr<const Int8AffineWeights> get(const Tensor<float>& weight, Int8Kernel kernel,
                                                 const char* op) const {
        std::shared_ptr<const Int8AffineWeights> pack = lookup(weight, kernel, op);
        return pack ? pack : std::make_shared<const Int8AffineWeights>(quantize(weight, kernel));
    }

    // Quantises and packs `weight` now, unless a pack of it as it is now exists (or packing is off).
    void pack(const Tensor<float>& weight, Int8Kernel kernel, const char* op) const {
        (void)lookup(weight, kernel, op);
    }

    // Bytes held by the pack (0 when there is none).
    Index bytes() const { return cache_.bytes(); }

    void release() const { cache_.release(); }

  private:
    static Int8AffineWeights quantize(const Tensor<float>& weight, Int8Kernel kernel) {
        const Index N = weight.dim(0), K = weight.dim(1);
        return Int8AffineWeights::quantize(weight.data(), K, N, K, kernel, num_threads());
    }

    std::shared_ptr<const Int8AffineWeights> lookup(const Tensor<float>& weight, Int8Kernel kernel,
                                                    const char* op) const {
        return cache_.get(
            {&weight}, kernel, true, op, [&] { return quantize(weight, kernel); },
            [&](const Int8AffineWeights& pack) {  // verified mode: the weight quantises to the pack now
                const Index N = weight.dim(0), K = weight.dim(1);
                const Int8Weights now = Int8Weights::quantize(weight.data(), K, N, K, kernel, num_threads());
                const Int8Weights& kept = pack.weights;
                return now.packed.size() == kept.packed.size() &&
                       std::memcmp(now.packed.data(), kept.packed.data(),
                                   static_cast<std::size_t>(now.packed.size())) == 0 &&
                       std::memcmp(now.scales.data(), kept.scales.data(),
                                   now.scales.size() * sizeof(float)) == 0;
            });
    }

    StampedPackCache<float, Int8AffineWeights, 1> cache_;
};

// One float layer's weight [N, K] in bf16 for the bf16 GEMM (Bf16Weights), kept as Int8WeightCache keeps its
// pack: whatever the product's row count, since the bf16 GEMM reads no other form of the weight.
class Bf16WeightCache {
  public:
    // The pack of `weight` for the bf16 variant of the float kernels' level `isa`, made now when none fits
    // the weight as it is now; with packing off, one made for this call alone. `op` names the layer in
    // errors.
    std::shared_ptr<const Bf16Weights> get(const Tensor<float>& weight, Isa isa, const char* op) const {
        std::shared_ptr<const Bf16Weights> pack = lookup(weight, isa, op);
        return pack ? pack : std::make_shared<const Bf16Weights>(convert(weight, isa));
    }

    // Converts and packs `weight` now, unless a pack of it as it is now exists (or packing is off).
    void pack(const Tensor<float>& weight, Isa isa, const char* op) const { (void)lookup(weight, isa, op); }

    // Bytes held by the pack (0 when there is none).
    Index bytes() const { return cache_.bytes(); }

    void release() const { cache_.release(); }

  private:
    static Bf16Weights convert(const Tensor<float>& weight, Isa isa) {
        const Index N = weight.dim(0), K = weight.dim(1);
        return Bf16Weights::convert(weight.data(), K, N, K, isa, num_threads());
    }

    std::shared_ptr<const Bf16Weights> lookup(const Tensor<float>& weight, Isa isa, const char* op) const {
        return cache_.get(
            {&weight}, isa, true, op, [&] { return convert(weight, isa); },
            [&](const Bf16Weights& pack) {  // verified mode: the weight converts to the pack now
                const Bf16Weights now = convert(weight, isa);
                if (now.kernel == Bf16Kernel::avx512bf16)
                    return now.packed.size() == pack.packed.size() &&
                           std::memcmp(now.packed.data(), pack.packed.data(),
                                       static_cast<std::size_t>(now.packed.size()) * sizeof(std::uint16_t)) ==
                               0;
                return now.rounded.packed.size() == pack.rounded.packed.size() &&
                       std::memcmp(now.rounded.packed.data(), pack.rounded.packed.data(),
                                   static_cast<std::size_t>(now.rounded.packed.size()) * sizeof(float)) == 0;
            });
    }

    StampedPackCache<float, Bf16Weights, 1> cache_;
};

}  // namespace vit3d::detail
