#pragma once
// A DistanceBias (detail/attention_problem.hpp) prepared once per fused attention call for its tile loop.

#include <cstddef>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/attention_problem.hpp"

namespace vit3d::detail {

// log2(e) in T: the fused softmax works in base 2, so every score and bias carries this factor.
template <class T>
inline constexpr T log2e_v = static_cast<T>(1.44269504088896340735992468100189214);

// A problem's DistanceBias prepared once per call for the tile loop. The keys are cut into runs of equal
// coordinate (the prefix keys form a run of their own), so that one row of a key tile takes one constant per
// run, added a packet at a time, instead of a table lookup per score: on a patch grid the slice index of the
// keys changes once per slice (every H*W tokens), so a key tile of 384 holds two or three runs of 16 x 16
// patch slices. Every value is pre-multiplied by log2(e), as the scores are in base 2.
template <class T>
struct DistanceBiasRuns {
    struct Run {
        Index begin, end;  // keys [begin, end)
        Index coord;       // their coordinate (prefix runs: unused)
        bool prefix;
    };
    std::vector<Run> runs;
    std::vector<Index> first_run;     // per key tile: the first run that reaches into it
    std::vector<T> by_distance;       // [heads, distances], times log2(e)
    std::vector<T> query_prefix_row;  // [heads], times log2(e)
    std::vector<T> key_prefix_column;
    Index distances = 0, query_prefix = 0;
    const Index* query_coords = nullptr;

    DistanceBiasRuns(const DistanceBias<T>& d, Index keys, Index key_tile, Index key_tiles)
        : distances(d.distances), query_prefix(d.query_prefix), query_coords(d.query_coords) {
        if (d.key_prefix > 0) runs.push_back({0, d.key_prefix, 0, true});
        for (Index j = d.key_prefix; j < keys; ++j) {
            const Index c = d.key_coords[j - d.key_prefix];
            if (runs.empty() || runs.back().prefix || runs.back().coord != c)
                runs.push_back({j, j + 1, c, false});
            else
                runs.back().end = j + 1;
        }
        first_run.resize(static_cast<std::size_t>(key_tiles));
        std::size_t r = 0;
        for (Index kt = 0; kt < key_tiles; ++kt) {
            while (r < runs.size() && runs[r].end <= kt * key_tile) ++r;
            first_run[static_cast<std::size_t>(kt)] = static_cast<Index>(r);
        }
        by_distance.resize(static_cast<std::size_t>(d.heads * d.distances));
        constexpr T log2e = log2e_v<T>;
        for (std::size_t i = 0; i < by_distance.size(); ++i) by_distance[i] = d.by_distance[i] * log2e;
        query_prefix_row.assign(static_cast<std::size_t>(d.heads), T(0));
        key_prefix_column.assign(static_cast<std::size_t>(d.heads), T(0));
        for (Index h = 0; h < d.heads; ++h) {
            if (d.query_prefix_bias)
                query_prefix_row[static_cast<std::size_t>(h)] = d.query_prefix_bias[h] * log2e;
            if (d.key_prefix_bias)
                key_prefix_column[static_cast<std::size_t>(h)] = d.key_prefix_bias[h] * log2e;
        }
    }

    // Bytes it holds for a problem with these sizes (at most one run per key).
    static Index bytes(Index heads, Index distances, Index keys, Index key_tiles) {
        return (keys + 1) * Index(sizeof(Run)) + key_tiles * Index(sizeof(Index)) +
               (heads * distances + 2 * heads) * Index(sizeof(T));
    }
};

}  // namespace vit3d::detail
