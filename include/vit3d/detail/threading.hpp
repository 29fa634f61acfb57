#pragma once
// OpenMP plumbing shared by the kernels: a parallel region of a given size that degrades to a plain call
// without OpenMP, and a scope that caps the threads of OpenMP-parallel code we call but do not own
// (Eigen's GEMM), so that vit3d::set_num_threads governs every loop the library runs.

#include <algorithm>

#include "vit3d/core/config.hpp"

namespace vit3d::detail {

// Calls body(thread_index, thread_count) once on each of `threads` threads (at least 1). The body must not
// throw: an exception cannot leave an OpenMP region. With one thread, or without OpenMP, it runs inline.
template <class Body>
void parallel_region(int threads, const Body& body) {
    if (threads < 1) threads = 1;
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        body(omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#endif
    body(0, 1);
}

// [begin, end) of `count` items for one of `parts` equal contiguous shares: a static schedule, so that
// which thread computes which item depends only on the thread count.
struct ItemRange {
    Index begin, end;
};
inline ItemRange static_share(Index count, int part, int parts) {
    return {count * part / parts, count * (part + 1) / parts};
}

// body(begin, end) over [0, count) split into equal contiguous ranges, one per thread, using at most
// vit3d::num_threads() threads and at least `grain` items per thread (small loops stay serial).
template <class Body>
void parallel_for(Index count, Index grain, const Body& body) {
    const Index by_size = grain > 0 ? count / grain : count;
    const int threads = static_cast<int>(std::max<Index>(1, std::min<Index>(num_threads(), by_size)));
    parallel_region(threads, [&](int thread, int thread_count) {
        const ItemRange share = static_share(count, thread, thread_count);
        if (share.begin < share.end) body(share.begin, share.end);
    });
}

// For its lifetime, OpenMP regions opened from this thread (Eigen's GEMM is one) use at most n threads;
// the previous setting is restored afterwards. OpenMP keeps this setting per thread, so concurrent callers
// do not disturb each other. Inside one of our own parallel regions Eigen already runs single-threaded.
class ScopedOpenMPThreads {
  public:
    explicit ScopedOpenMPThreads(int n) {
#ifdef _OPENMP
        saved_ = omp_get_max_threads();
        omp_set_num_threads(n > 0 ? n : 1);
#else
        (void)n;
#endif
    }
    ~ScopedOpenMPThreads() {
#ifdef _OPENMP
        omp_set_num_threads(saved_);
#endif
    }
    ScopedOpenMPThreads(const ScopedOpenMPThreads&) = delete;
    ScopedOpenMPThreads& operator=(const ScopedOpenMPThreads&) = delete;

  private:
    int saved_ = 1;
};

}  // namespace vit3d::detail
