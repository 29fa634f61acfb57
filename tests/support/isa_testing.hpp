#pragma once
// Running a test body once per instruction-set level of the kernels that this CPU can run (forced through
// vit3d::set_isa_cap, as VIT3D_ISA would), with the level in every failure message. The first use prints
// which levels run here and which the CPU (or this build) lacks.

#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>
#include <vit3d/core/cpu.hpp>

namespace vit3d::test {

inline std::vector<Isa> runnable_isas() {
    const CpuInfo info = cpu_info();
    std::vector<Isa> levels;
    const int best = std::min(static_cast<int>(info.supported), static_cast<int>(info.compiled));
    for (int level = static_cast<int>(info.baseline); level <= best; ++level)
        levels.push_back(static_cast<Isa>(level));
    if (levels.empty()) levels.push_back(info.baseline);
    return levels;
}

inline std::string isa_report() {
    const CpuInfo info = cpu_info();
    std::string ran, lacking;
    for (Isa isa : runnable_isas()) ran += std::string(ran.empty() ? "" : " ") + isa_name(isa);
    for (int level = 0; level <= static_cast<int>(Isa::avx512); ++level) {
        const auto isa = static_cast<Isa>(level);
        if (level < static_cast<int>(info.baseline)) continue;  // below the build's flags: the generic one
        if (level > static_cast<int>(info.supported))
            lacking += std::string(lacking.empty() ? "" : ", ") + isa_name(isa) + " (CPU lacks it)";
        else if (level > static_cast<int>(info.compiled))
            lacking += std::string(lacking.empty() ? "" : ", ") + isa_name(isa) + " (not compiled)";
    }
    return "kernel ISA levels run: " + ran + "; not run: " + (lacking.empty() ? "none" : lacking) +
           " (baseline of this build: " + isa_name(info.baseline) + ")";
}

inline void report_isas_once() {
    static const bool reported = [] {
        std::cout << "[ ISA      ] " << isa_report() << std::endl;
        return true;
    }();
    (void)reported;
}

template <class Body>
void for_each_isa(const Body& body) {
    report_isas_once();
    const Isa saved = cpu_info().cap;
    for (Isa isa : runnable_isas()) {
        set_isa_cap(isa);
        SCOPED_TRACE(std::string("kernel ISA ") + isa_name(isa));
        body(isa);
    }
    set_isa_cap(saved);
}

}  // namespace vit3d::test
