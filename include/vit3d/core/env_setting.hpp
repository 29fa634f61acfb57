#pragma once
// A process-wide setting that an environment variable gives at its first use and code may change afterwards
// (core/weight_packing.hpp, core/huge_pages.hpp).

#include <atomic>
#include <cstdlib>

namespace vit3d::detail {

// The value in `slot`, which holds -1 until the first call: then `parse(text)` of the variable when it is set
// and not empty (parse throws on text it does not take), else `fallback`. A value stored by code before the
// first call wins.
template <class Parse>
int env_setting(std::atomic<int>& slot, const char* variable, int fallback, Parse parse) {
    int value = slot.load(std::memory_order_relaxed);
    if (value < 0) {
        const char* text = std::getenv(variable);
        int expected = -1;
        slot.compare_exchange_strong(expected, text && *text ? parse(text) : fallback);
        value = slot.load(std::memory_order_relaxed);
    }
    return value;
}

}  // namespace vit3d::detail
