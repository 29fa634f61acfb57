#pragma once
// The generic kernel variant: Eigen's packets for the instruction set the translation unit is compiled for
// (SSE2 on a plain x86-64 build, NEON on aarch64, one scalar without vectorisation), behind the vocabulary
// the kernels are written in (detail/isa/kernels.inc).

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <unsupported/Eigen/SpecialFunctions>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/distance_bias_runs.hpp"
#include "vit3d/detail/isa/kernel_shapes.hpp"
#include "vit3d/detail/isa/targets.hpp"
#include "vit3d/detail/packet_math.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace vit3d::detail::VIT3D_GENERIC_ISA_NAMESPACE {

inline constexpr Isa this_isa = static_cast<Isa>(VIT3D_BASELINE_ISA);

template <class T>
struct Simd {
    using V = Packet<T>;
    static constexpr int width = packet_width<T>;
    static constexpr int registers = vector_registers;

    static V zero() { return Eigen::internal::pset1<V>(T(0)); }
    static V set1(T x) { return Eigen::internal::pset1<V>(x); }
    static V loadu(const T* p) { return Eigen::internal::ploadu<V>(p); }
    static void storeu(T* p, const V& v) { Eigen::internal::pstoreu(p, v); }
    static V add(const V& a, const V& b) { return Eigen::internal::padd(a, b); }
    static V sub(const V& a, const V& b) { return Eigen::internal::psub(a, b); }
    static V mul(const V& a, const V& b) { return Eigen::internal::pmul(a, b); }
    static V fmadd(const V& a, const V& b, const V& c) { return Eigen::internal::pmadd(a, b, c); }
    static V max(const V& a, const V& b) { return Eigen::internal::pmax(a, b); }
    static V min(const V& a, const V& b) { return Eigen::internal::pmin(a, b); }
    static V div(const V& a, const V& b) { return Eigen::internal::pdiv(a, b); }
    static T reduce_add(const V& v) { return Eigen::internal::predux(v); }
    static T reduce_max(const V& v) { return Eigen::internal::predux_max(v); }
    static V exp2_flushed(const V& x) { return detail::exp2_flushed<T>(x); }
    static V erf(const V& x) { return Eigen::internal::generic_fast_erf_float(x); }

    static constexpr bool has_transpose = width > 1;
    static void transpose(V (&rows)[width]) {
        Eigen::internal::PacketBlock<V, width> block;
        for (int r = 0; r < width; ++r) block.packet[r] = rows[r];
        Eigen::internal::ptranspose(block);
        for (int r = 0; r < width; ++r) rows[r] = block.packet[r];
    }
};

#include "vit3d/detail/isa/kernels.inc"

}  // namespace vit3d::detail::VIT3D_GENERIC_ISA_NAMESPACE

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
