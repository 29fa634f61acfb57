#pragma once
// Index type and the library-wide thread count.

#include <atomic>
#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vit3d {

// Signed, like Eigen::Index, so that differences and reverse loops need no casts.
using Index = std::ptrdiff_t;

}  // namespace vit3d

namespace vit3d::detail {
inline std::atomic<int>& thread_count_setting() {
    static std::atomic<int> setting{0};  // 0: use OpenMP's default (OMP_NUM_THREADS or all cores)
    return setting;
}
}  // namespace vit3d::detail

namespace vit3d {

// Number of threads vit3d's parallel loops use. Without OpenMP every loop is serial and this is 1.
inline int num_threads() {
#ifdef _OPENMP
    const int set = detail::thread_count_setting().load(std::memory_order_relaxed);
    return set > 0 ? set : omp_get_max_threads();
#else
    return 1;
#endif
}

// Sets the thread count for vit3d's parallel loops; n <= 0 restores the default (OMP_NUM_THREADS or all
// cores). Results are deterministic for a given thread count.
inline void set_num_threads(int n) { detail::thread_count_setting().store(n > 0 ? n : 0); }

}  // namespace vit3d
