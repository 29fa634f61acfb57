#pragma once
// Shared by the benches: per-benchmark peak resident memory (Linux), and the thread count of a run.

#include <benchmark/benchmark.h>

#include <fstream>
#include <string>

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

}  // namespace vit3d::bench
