#pragma once
// The fused attention kernel (FlashAttention's algorithm on a CPU). For each (batch, head, query tile) and
// each key tile in turn:
//     S = (Q * scale) K^T + bias, masked keys -inf      [query tile x key tile], in a small buffer
//     m' = max(m, rowmax S);  P = exp(S - m');  l = l e^(m - m') + rowsum P;  O = O e^(m - m') + P V
// (computed in base 2: S and m carry a factor log2(e), and exp(S - m) = 2^(S - m)),
// and finally out = O / l. The Nq x Nk scores never exist; per thread the memory is one (batch, head)'s keys
// and values, repacked (O(Nk * head_dim)), plus tile-sized buffers. A DistanceBias is computed inside the
// tile loop from the tokens' coordinates (DistanceBiasRuns), so it needs no Nq x Nk buffer either.
//
// Both products run in the GEMM's register-blocked micro-kernel (detail::micro_kernel): `rows` query rows
// times `vectors` packets of columns accumulate in registers, with one operand broadcast from memory. Keys
// are repacked transposed (head_dim x key tile, detail::pack_transposed) so that S is computed a row of
// packets at a time, values padded to whole packets so that any head_dim works. Work is split over (batch,
// head, query tile) with a static schedule; a query row is always computed by one thread in the same order,
// so the result does not depend on the thread count at all.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/packet_math.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

inline constexpr Index round_up(Index n, Index multiple) { return (n + multiple - 1) / multiple * multiple; }
inline constexpr Index ceil_div(Index n, Index d) { return (n + d - 1) / d; }

template <class T>
struct FusedAttentionTiles {
    static constexpr int width = packet_width<T>;
    // Register block: rows x vectors accumulators plus `vectors` operands and one broadcast.
    static constexpr int rows = vector_registers >= 32 ? 6 : 3;
    static constexpr int vectors = 4;
    static constexpr Index block_columns = Index(vectors) * width;
    static constexpr Index key_tile = round_up(256, block_columns);
    static constexpr Index max_query_tile = Index(rows) * 16;

    Index query_tile = 0, query_tiles = 0, key_tiles = 0, head_dim = 0, padded_dim = 0;

    FusedAttentionTiles(Index queries, Index keys, Index dim) : head_dim(dim) {
        // Equal query tiles, so that the last one is not a sliver that costs a full pass over the keys.
        query_tiles = std::max<Index>(1, ceil_div(queries, max_query_tile));
        query_tile = round_up(std::max<Index>(1, ceil_div(queries, query_tiles)), rows);
        key_tiles = ceil_div(keys, key_tile);
        padded_dim = round_up(dim, width);
    }

    // Per-thread workspace, each part a whole number of cache lines.
    static Index part(Index n) { return round_up(n, Index(64 / sizeof(T)) > 0 ? Index(64 / sizeof(T)) : 1); }
    Index packed_keys_size() const { return part(key_tiles * key_tile * head_dim); }
    Index packed_values_size() const { return part(key_tiles * key_tile * padded_dim); }
    Index queries_size() const { return part(query_tile * head_dim); }
    Index scores_size() const { return part(query_tile * key_tile); }
    Index accumulator_size() const { return part(query_tile * padded_dim); }
    Index thread_workspace() const {
        return packed_keys_size() + packed_values_size() + queries_size() + scores_size() +
               accumulator_size() + 2 * part(query_tile);
    }
};

// log2(e) in T: the fused softmax works in base 2, so every score and bias carries this factor.
template <class T>
inline constexpr T log2e_v = static_cast<T>(1.44269504088896340735992468100189214);

// A problem's DistanceBias prepared once per call for the tile loop. The keys are cut into runs of equal
// coordinate (the prefix keys form a run of their own), so that one row of a key tile takes one constant per
// run, added a packet at a time, instead of a table lookup per score: on a patch grid the slice index of the
// keys changes once per slice (every H*W tokens), so a 256-key tile holds one or two runs. Every value is
// pre-multiplied by log2(e), as the scores are in base 2.
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

// s[0, n) += value, a packet at a time.
template <class T>
void add_constant(T* s, Index n, T value) {
    using namespace Eigen::internal;
    using P = Packet<T>;
    constexpr int W = packet_width<T>;
    const P v = pset1<P>(value);
    Index j = 0;
    for (; j + W <= n; j += W) pstoreu(s + j, padd(ploadu<P>(s + j), v));
    for (; j < n; ++j) s[j] += value;
}

// One thread's state: its workspace and the (batch, head) whose keys and values are packed in it.
template <class T>
class FusedAttentionWorker {
    using Tiles = FusedAttentionTiles<T>;
    using P = Packet<T>;
    static constexpr int W = packet_width<T>;
    static constexpr int R = Tiles::rows;
    static constexpr T neg_inf = -std::numeric_limits<T>::infinity();
    static constexpr double log2e = 1.44269504088896340735992468100189214;
    static constexpr T log2e_t = log2e_v<T>;

  public:
    FusedAttentionWorker(const AttentionProblem<T>& problem, const Tiles& tiles, T* workspace,
                         const DistanceBiasRuns<T>* distance_runs)
        : p_(problem), t_(tiles), runs_(distance_runs) {
        keys_ = workspace;
        values_ = keys_ + t_.packed_keys_size();
        queries_ = values_ + t_.packed_values_size();
        scores_ = queries_ + t_.queries_size();
        acc_ = scores_ + t_.scores_size();
        row_max_ = acc_ + t_.accumulator_size();
        row_sum_ = row_max_ + Tiles::part(t_.query_tile);
    }

    // Work item = (batch * heads + head) * query_tiles + query tile.
    void run(Index item) {
        const Index tile = item % t_.query_tiles, bh = item / t_.query_tiles;
        const Index b = bh / p_.heads, h = bh % p_.heads;
        if (bh != packed_) pack_keys_and_values(b, h), packed_ = bh;
        const Index q0 = tile * t_.query_tile;
        const Index rows = std::min(t_.query_tile, p_.queries - q0);
        if (rows <= 0) return;
        const Index padded_rows = round_up(rows, R);
        pack_queries(b, h, q0, rows, padded_rows);
        std::fill(acc_, acc_ + padded_rows * t_.padded_dim, T(0));
        std::fill(row_max_, row_max_ + padded_rows, neg_inf);
        std::fill(row_sum_, row_sum_ + padded_rows, T(0));
        for (Index kt = 0; kt < t_.key_tiles; ++kt) {
            const Index j0 = kt * Tiles::key_tile;
            const Index count = std::min(Tiles::key_tile, p_.keys - j0);
            compute_scores(kt, count, padded_rows);
            for (Index i = 0; i < padded_rows; ++i) {
                if (i < rows)
                    update_softmax(b, h, q0 + i, i, j0, count);
                else
                    std::fill(scores_ + i * Tiles::key_tile, scores_ + i * Tiles::key_tile + count, T(0));
            }
            accumulate_values(j0, count, padded_rows);
        }
        write_output(b, h, q0, rows);
    }

  private:
    // Keys transposed per key tile (head_dim x key_tile, columns past the last key 0); values as rows of
    // padded_dim (padding 0).
    void pack_keys_and_values(Index b, Index h) {
        const Index d = p_.head_dim, dp = t_.padded_dim, kt_len = Tiles::key_tile;
        for (Index kt = 0; kt < t_.key_tiles; ++kt) {
            const Index j0 = kt * kt_len, count = std::min(kt_len, p_.keys - j0);
            pack_transposed(p_.k.at(b, h, 0), p_.k.token_stride, j0, count, 0, d, keys_ + kt * kt_len * d,
                            kt_len);
        }
        for (Index j = 0; j < p_.keys; ++j) {
            const T* value = p_.v.at(b, h, j);
            T* row = values_ + j * dp;
            std::copy(value, value + d, row);
            std::fill(row + d, row + dp, T(0));
        }
    }

    // Queries times scale * log2(e) (folded in here, once per element, rather than into every score): the
    // scores come out in base-2 units, so the softmax takes 2^x, cheaper than e^x; rows past the last query
    // are 0.
    void pack_queries(Index b, Index h, Index q0, Index rows, Index padded_rows) {
        const Index d = p_.head_dim;
        const T scale = static_cast<T>(p_.scale * log2e);
        for (Index i = 0; i < rows; ++i) {
            const T* query = p_.q.at(b, h, q0 + i);
            for (Index k = 0; k < d; ++k) queries_[i * d + k] = query[k] * scale;
        }
        std::fill(queries_ + rows * d, queries_ + padded_rows * d, T(0));
    }

    void compute_scores(Index kt, Index count, Index padded_rows) {
        const T* tile = keys_ + kt * Tiles::key_tile * p_.head_dim;
        const Index blocks = ceil_div(count, Tiles::block_columns);
        for (Index r0 = 0; r0 < padded_rows; r0 += R)
            for (Index cb = 0; cb < blocks; ++cb)
                micro_kernel<T, R, Tiles::vectors>(
                    queries_ + r0 * p_.head_dim, p_.head_dim, tile + cb * Tiles::block_columns,
                    Tiles::key_tile, p_.head_dim, scores_ + r0 * Tiles::key_tile + cb * Tiles::block_columns,
                    Tiles::key_tile, Tiles::block_columns, false);
    }

    // Bias, mask and the online softmax for query row i (global index qi) over keys [j0, j0 + count): the
    // scores become this tile's unnormalised weights P, the running max and sum move on, and the row's
    // accumulator is rescaled to the new max.
    void update_softmax(Index b, Index h, Index qi, Index i, Index j0, Index count) {
        using namespace Eigen::internal;
        T* s = scores_ + i * Tiles::key_tile;
        if (p_.bias) add_bias(s, b, h, qi, j0, count);
        if (runs_) add_distance_bias(s, h, qi, j0, count);
        if (p_.allowed)
            for (Index j = 0; j < count; ++j)
                if (!p_.is_allowed(b, h, qi, j0 + j)) s[j] = neg_inf;
        const Index padded = round_up(count, W);
        std::fill(s + count, s + padded, neg_inf);

        P max_packet = pset1<P>(neg_inf);
        for (Index j = 0; j < padded; j += W) max_packet = pmax(max_packet, ploadu<P>(s + j));
        const T old_max = row_max_[i];
        const T new_max = std::max(old_max, predux_max(max_packet));
        if (new_max == neg_inf) {  // every key so far masked: nothing to add, nothing to rescale
            std::fill(s, s + padded, T(0));
            return;
        }
        const P shift = pset1<P>(new_max);
        P sum = pset1<P>(T(0));
        for (Index j = 0; j < padded; j += W) {
            const P e = exp2_flushed<T>(psub(ploadu<P>(s + j), shift));
            pstoreu(s + j, e);
            sum = padd(sum, e);
        }
        const T rescale = old_max == neg_inf ? T(0) : std::exp2(old_max - new_max);
        row_max_[i] = new_max;
        row_sum_[i] = row_sum_[i] * rescale + predux(sum);
        if (rescale != T(1)) {
            T* o = acc_ + i * t_.padded_dim;
            const P factor = pset1<P>(rescale);
            for (Index k = 0; k < t_.padded_dim; k += W) pstoreu(o + k, pmul(ploadu<P>(o + k), factor));
        }
    }

    void add_bias(T* s, Index b, Index h, Index qi, Index j0, Index count) const {
        const T* row = p_.bias + b * p_.bias_strides[0] + h * p_.bias_strides[1] + qi * p_.bias_strides[2];
        const Index step = p_.bias_strides[3];
        if (step == 1) {
            for (Index j = 0; j < count; ++j) s[j] += row[j0 + j] * log2e_t;
        } else {
            for (Index j = 0; j < count; ++j) s[j] += row[(j0 + j) * step] * log2e_t;
        }
    }

    void add_distance_bias(T* s, Index h, Index qi, Index j0, Index count) const {
        const DistanceBiasRuns<T>& d = *runs_;
        if (qi < d.query_prefix)
            return add_constant(s, count, d.query_prefix_row[static_cast<std::size_t>(h)]);
        const Index coord = d.query_coords[qi - d.query_prefix];
        const T* by_distance = d.by_distance.data() + h * d.distances;
        const Index end = j0 + count;
        for (std::size_t r =
                 static_cast<std::size_t>(d.first_run[static_cast<std::size_t>(j0 / Tiles::key_tile)]);
             r < d.runs.size() && d.runs[r].begin < end; ++r) {
            const auto& run = d.runs[r];
            const Index first = std::max(run.begin, j0), last = std::min(run.end, end);
            const Index distance = coord > run.coord ? coord - run.coord : run.coord - coord;
            add_constant(
                s + (first - j0), last - first,
                run.prefix ? d.key_prefix_column[static_cast<std::size_t>(h)] : by_distance[distance]);
        }
    }

    void accumulate_values(Index j0, Index count, Index padded_rows) {
        const Index dp = t_.padded_dim, packets = dp / W;
        const T* v = values_ + j0 * dp;
        for (Index r0 = 0; r0 < padded_rows; r0 += R) {
            const T* weights = scores_ + r0 * Tiles::key_tile;
            T* o = acc_ + r0 * dp;
            Index c = 0;
            for (; c + Tiles::vectors <= packets; c += Tiles::vectors)
                accumulate_block<Tiles::vectors>(weights, count, v + c * W, o + c * W);
            switch (packets - c) {
                case 3:
                    accumulate_block<3>(weights, count, v + c * W, o + c * W);
                    break;
                case 2:
                    accumulate_block<2>(weights, count, v + c * W, o + c * W);
                    break;
                case 1:
                    accumulate_block<1>(weights, count, v + c * W, o + c * W);
                    break;
                default:
                    break;
            }
        }
    }

    // O[rows x Vectors packets] += P[rows x count] * V[count x Vectors packets].
    template <int Vectors>
    void accumulate_block(const T* weights, Index count, const T* v, T* o) const {
        const Index dp = t_.padded_dim;
        micro_kernel<T, R, Vectors>(weights, Tiles::key_tile, v, dp, count, o, dp, Index(Vectors) * W, true);
    }

    // out = O / l; a row that attended nothing (l == 0: every key masked) is 0.
    void write_output(Index b, Index h, Index q0, Index rows) const {
        for (Index i = 0; i < rows; ++i) {
            const T l = row_sum_[i];
            const T inv = l > T(0) ? T(1) / l : T(0);
            const T* o = acc_ + i * t_.padded_dim;
            T* out = p_.out_at(b, h, q0 + i);
            for (Index k = 0; k < p_.head_dim; ++k) out[k] = o[k] * inv;
        }
    }

    const AttentionProblem<T>& p_;
    const Tiles& t_;
    const DistanceBiasRuns<T>* runs_;  // null without a distance bias
    T *keys_, *values_, *queries_, *scores_, *acc_, *row_max_, *row_sum_;
    Index packed_ = -1;
};

// Bytes of workspace the fused kernel allocates for a problem of this size on `threads` threads.
template <class T>
Index fused_attention_workspace_bytes(Index queries, Index keys, Index head_dim, int threads) {
    return FusedAttentionTiles<T>(queries, keys, head_dim).thread_workspace() * Index(threads) *
           Index(sizeof(T));
}

template <class T>
int fused_attention_threads(const AttentionProblem<T>& p, int requested) {
    const FusedAttentionTiles<T> tiles(p.queries, p.keys, p.head_dim);
    const Index items = p.batch * p.heads * tiles.query_tiles;
    return static_cast<int>(std::max<Index>(1, std::min<Index>(requested, items)));
}

template <class T>
void fused_attention(const AttentionProblem<T>& p, int threads) {
    const FusedAttentionTiles<T> tiles(p.queries, p.keys, p.head_dim);
    if (p.batch * p.heads * p.queries == 0) return;
    if (p.keys == 0) {  // nothing to attend: every row is fully masked
        for (Index b = 0; b < p.batch; ++b)
            for (Index h = 0; h < p.heads; ++h)
                for (Index i = 0; i < p.queries; ++i) std::fill_n(p.out_at(b, h, i), p.head_dim, T(0));
        return;
    }
    const Index items = p.batch * p.heads * tiles.query_tiles;
    threads = fused_attention_threads(p, threads);
    const Index per_thread = tiles.thread_workspace();
    // Allocated here: nothing may throw in the region.
    AlignedBuffer<T> workspace(per_thread * threads);
    std::optional<DistanceBiasRuns<T>> distance_runs;
    if (p.distance_bias)
        distance_runs.emplace(*p.distance_bias, p.keys, FusedAttentionTiles<T>::key_tile, tiles.key_tiles);
    const DistanceBiasRuns<T>* runs = distance_runs ? &*distance_runs : nullptr;
    parallel_region(threads, [&](int thread, int thread_count) {
        FusedAttentionWorker<T> worker(p, tiles, workspace.data() + per_thread * thread, runs);
        const ItemRange share = static_share(items, thread, thread_count);
        for (Index item = share.begin; item < share.end; ++item) worker.run(item);
    });
}

}  // namespace vit3d::detail
