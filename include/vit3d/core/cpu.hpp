#pragma once
// Which instruction set vit3d's kernels run with. The hot kernels (GEMM, fused attention, GELU, LayerNorm)
// are compiled in one variant per instruction-set level inside every translation unit that uses them,
// whatever flags it was built with, and the best level this CPU supports is chosen once, at first use, from
// CPUID. The environment variable VIT3D_ISA (generic, avx2 or avx512) caps the choice for tests and
// reproducibility; set_isa_cap does the same from code.
//
// `generic` is Eigen's packets for the flags the translation unit was compiled with (SSE2 on a plain x86-64
// build, AVX-512 with -march=native on such a CPU, NEON on aarch64). The avx2 (AVX2 + FMA) and avx512
// (AVX-512 F/BW/DQ/VL) variants exist on x86-64 with GCC or Clang, and only above that baseline: a variant
// at or below what the flags already give is the generic one.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(VIT3D_NO_ISA_DISPATCH)
#define VIT3D_ISA_DISPATCH 1
#else
#define VIT3D_ISA_DISPATCH 0
#endif

// The level the compiler flags alone give (the generic variant's level).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define VIT3D_BASELINE_ISA 2
#elif defined(__AVX2__) && defined(__FMA__)
#define VIT3D_BASELINE_ISA 1
#else
#define VIT3D_BASELINE_ISA 0
#endif

#define VIT3D_HAS_AVX2_VARIANT (VIT3D_ISA_DISPATCH && VIT3D_BASELINE_ISA < 1)
#define VIT3D_HAS_AVX512_VARIANT (VIT3D_ISA_DISPATCH && VIT3D_BASELINE_ISA < 2)

namespace vit3d {

// Ordered: a level includes the ones below it.
enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

constexpr auto enum_names(Isa) {
    return enum_table<Isa>({{Isa::generic, "generic"}, {Isa::avx2, "avx2"}, {Isa::avx512, "avx512"}});
}

inline const char* isa_name(Isa isa) { return enum_name(isa); }

// "generic", "avx2" or "avx512" (as isa_name writes them); anything else throws std::invalid_argument.
inline Isa parse_isa(const std::string& text, const char* op = "vit3d::parse_isa") {
    if (const std::optional<Isa> isa = enum_from_name<Isa>(text)) return *isa;
    throw std::invalid_argument(message(op, ": expected an instruction-set level ",
                                        enum_name_list<Isa>("", ", ", " or "), ", got '", text, "'"));
}

struct CpuInfo {
    Isa supported;  // the best level this CPU (and its operating system) supports
    Isa baseline;   // what this translation unit's compiler flags give without dispatch
    Isa compiled;   // the best level compiled into this translation unit
    Isa cap;        // VIT3D_ISA or set_isa_cap (the best compiled level when neither is set)
    Isa active;     // what the kernels run: min(supported, compiled, cap), never below baseline
};

}  // namespace vit3d

namespace vit3d::detail {

inline Isa cpu_supported_isa() {
#if VIT3D_ISA_DISPATCH
    // GCC's and Clang's CPUID readers also check that the operating system saves the vector registers.
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::generic;
#else
    return static_cast<Isa>(VIT3D_BASELINE_ISA);
#endif
}

inline constexpr Isa compiled_isa() {
#if VIT3D_HAS_AVX512_VARIANT
    return Isa::avx512;
#elif VIT3D_HAS_AVX2_VARIANT
    return Isa::avx2;
#else
    return static_cast<Isa>(VIT3D_BASELINE_ISA);
#endif
}

// -1: not read yet; otherwise the cap as an int. Read from VIT3D_ISA on first use.
inline std::atomic<int>& isa_cap_setting() {
    static std::atomic<int> cap{-1};
    return cap;
}

inline Isa isa_cap() {
    int cap = isa_cap_setting().load(std::memory_order_relaxed);
    if (cap < 0) {
        const char* env = std::getenv("VIT3D_ISA");
        const Isa from_env = env && *env ? parse_isa(env, "VIT3D_ISA") : Isa::avx512;
        int expected = -1;
        isa_cap_setting().compare_exchange_strong(expected, static_cast<int>(from_env));
        cap = isa_cap_setting().load(std::memory_order_relaxed);
    }
    return static_cast<Isa>(cap);
}

inline Isa cached_supported_isa() {
    static const Isa supported = cpu_supported_isa();
    return supported;
}

// The level the kernels of this translation unit run, read once per kernel call (outside parallel regions:
// a bad VIT3D_ISA throws here).
inline Isa active_isa() {
    const int best = std::min(static_cast<int>(cached_supported_isa()), static_cast<int>(compiled_isa()));
    const int capped = std::min(best, static_cast<int>(isa_cap()));
    return static_cast<Isa>(std::max(capped, VIT3D_BASELINE_ISA));
}

}  // namespace vit3d::detail

namespace vit3d {

inline CpuInfo cpu_info() {
    return {detail::cached_supported_isa(), static_cast<Isa>(VIT3D_BASELINE_ISA), detail::compiled_isa(),
            detail::isa_cap(), detail::active_isa()};
}

// Caps the level the kernels use from the next call on (as VIT3D_ISA does). Asking for a level above what
// the CPU supports is not an error: the cap is a ceiling, cpu_info().active says what runs.
inline void set_isa_cap(Isa cap) { detail::isa_cap_setting().store(static_cast<int>(cap)); }

}  // namespace vit3d
