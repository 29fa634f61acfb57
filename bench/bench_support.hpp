#pragma once
// Shared by the benches: per-benchmark peak resident memory (Linux), the thread count of a run, and the
// instruction set the kernels run with, in every bench's context.

#include <benchmark/benchmark.h>

#include <exception>
#include <fstream>
#include <string>
#include <vit3d/core/cpu.hpp>

namespace vit3d::bench {

// Starts a new peak-RSS measurement for this process (Linux: "5" to /proc/self/clear_refs resets VmHWM).
inline void reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    if (clear) clear << "5";
}

// Peak resident set since the last reset, in bytes (0 where /proc is not available).
inline double peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;  // reported in kB
    return 0.0;
}

inline benchmark::Counter rate(double per_iteration) {
    return benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// Google Benchmark prints its context in the console header and writes it to the JSON output's "context",
// so every result names the level it was measured at: vit3d_isa is what the kernels run (after VIT3D_ISA's
// cap), vit3d_isa_supported the best level of this CPU. bench/records.py reads them from there. Each bench
// includes this header from one translation unit, so the context is added once.
inline const bool isa_context_added = [] {
    try {
        const CpuInfo info = cpu_info();
        benchmark::AddCustomContext("vit3d_isa", isa_name(info.active));
        benchmark::AddCustomContext("vit3d_isa_supported", isa_name(info.supported));
    } catch (const std::exception& error) {  // an invalid VIT3D_ISA; the kernels throw it again when called
        benchmark::AddCustomContext("vit3d_isa", std::string("invalid (") + error.what() + ")");
    }
    return true;
}();

}  // namespace vit3d::bench
