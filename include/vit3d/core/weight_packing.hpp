#pragma once
// Whether linear layers keep their weights packed for the GEMM kernel between calls.
//
// The GEMM reads its weight operand in panels laid out for its register block. `cached` (the default) keeps
// a layer's whole weight packed once made, and reuses the pack until the weight is written: every non-const
// access to the weight tensor clears its write stamp (tensor/tensor.hpp), which drops the pack. A pack is
// made where it pays, and never in the middle of a series of calls, so that no call is slower than the first:
//   - io::load_model packs a model's layers as it loads it, when the model's input gives fewer than
//     detail::packed_weight_max_rows tokens (nn::pack_weights packs any module's layers on request);
//   - otherwise a layer packs its weight at its first forward (after a write) with fewer rows than that;
//   - a forward with more rows and no pack packs the weight inside the call, into a temporary buffer: at that
//     size this costs under 1% of the product, and it keeps no second copy of the weight in memory.
// A kept pack costs one more copy of the weight in memory and saves the repacking on every call (5-7% of a
// ViT-B/16 forward at one image). `off` packs panels inside every call, as needed, and keeps nothing.
// `verified` is `cached` plus a comparison of the pack with the weights at every call: for programs that keep
// a pointer into a weight and write through it after a forward, which write tracking cannot see; a mismatch
// throws stale_weights_error.
//
// The environment variable VIT3D_WEIGHT_PACKING (off, cached, verified) sets it at first use;
// set_weight_packing from code. A change applies from the next call on.

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/env_setting.hpp"
#include "vit3d/core/message.hpp"

namespace vit3d {

enum class WeightPacking { off = 0, cached = 1, verified = 2 };

constexpr auto enum_names(WeightPacking) {
    return enum_table<WeightPacking>({{WeightPacking::off, "off"},
                                      {WeightPacking::cached, "cached"},
                                      {WeightPacking::verified, "verified"}});
}

inline const char* weight_packing_name(WeightPacking mode) { return enum_name(mode); }

// "off", "cached" or "verified"; anything else throws std::invalid_argument.
inline WeightPacking parse_weight_packing(const std::string& text,
                                          const char* op = "vit3d::parse_weight_packing") {
    if (const std::optional<WeightPacking> mode = enum_from_name<WeightPacking>(text)) return *mode;
    throw std::invalid_argument(message(op, ": expected ", enum_name_list<WeightPacking>("", ", ", " or "),
                                        ", got ", detail::quoted(text)));
}

}  // namespace vit3d

namespace vit3d::detail {

// -1: not read yet; otherwise the mode as an int. Read from VIT3D_WEIGHT_PACKING on first use.
inline std::atomic<int>& weight_packing_setting() {
    static std::atomic<int> mode{-1};
    return mode;
}

}  // namespace vit3d::detail

namespace vit3d {

inline WeightPacking weight_packing() {
    return static_cast<WeightPacking>(
        detail::env_setting(detail::weight_packing_setting(), "VIT3D_WEIGHT_PACKING",
                            static_cast<int>(WeightPacking::cached), [](const char* text) {
                                return static_cast<int>(parse_weight_packing(text, "VIT3D_WEIGHT_PACKING"));
                            }));
}

inline void set_weight_packing(WeightPacking mode) {
    detail::weight_packing_setting().store(static_cast<int>(mode));
}

}  // namespace vit3d
