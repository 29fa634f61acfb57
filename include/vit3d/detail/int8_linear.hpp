#pragma once
// A linear layer's product in int8 (nn::Linear in Precision::int8): y = x W^T + b through the int8 GEMM
// (detail/int8_gemm.hpp), with two corrections that the GEMM's per-row quantisation needs in a transformer.
// Both take statistics over the rows of one sample (a ViT's tokens of one image), never across samples, so
// that a sample's result does not depend on the others computed with it (the batch size).
//
// Outlier channels. The GEMM quantises each row of x to 256 levels between the row's extremes. Trained ViTs
// have a few LayerNorm output channels some 30x larger than the others, in every token; a row's levels are
// then some 30x too coarse for all its other channels. So, for each sample at every call:
//   - m_k, the largest |x| of input channel k over the sample's rows, is found; channel k is an outlier when
//     m_k exceeds 6 x the median of the m_k (and is > 0). At most in / 8 channels are, the largest ones.
//   - The outliers' part of the product, x[:, O] W[:, O]^T, is computed in float (a GEMM of depth |O| over
//     the gathered columns), and the int8 GEMM adds the rest to it, the outlier columns taken as 0 so that
//     they widen no row's range: LLM.int8()'s decomposition (Dettmers et al., 2022), with the channels found
//     from the sample itself rather than from a fixed magnitude.
// (tests/nn/test_linear_int8.cpp: 3 channels x30 make the error of a 768-wide product 4-7x larger, and
// larger than 2%, without this.)
//
// The weights' rounding error on the mean row. The tokens of a ViT share much of their features: the mean of
// a sample's rows, x_mean, holds 16-33% of the input's energy in the random-weight ViT-B of the tests. The
// weight's rounding error R = W - dequantised(W) makes an error R x_mean that is the same in every token,
// and so adds up in the residual stream instead of averaging out. It is removed: R is kept quantised (to
// int8, a second pack of the same size), and R x_mean, one more row through the int8 GEMM, is added to the
// sample's bias; what remains, R (x - x_mean), differs from token to token. This is bias correction (Nagel
// et al., 2019, "Data-Free Quantization"), made from each sample's own rows. It matters most for the avx2
// kernel, whose weights have 7 bits: on the ViT-B/16 of tests/models/test_precision_models.cpp it takes the
// cosine of the pooled features to f32's from 0.99897 to 0.99927 there (vnni512: 0.99967 to 0.99976).
//
// The extra passes read x once (its column maxima and sums, vectorised) and the second pack once: a few
// percent of a ViT-B/16 forward at one image.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/int8_gemm.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

// A channel is an outlier when its largest |x| exceeds this many times the median channel's...
inline constexpr float int8_outlier_ratio = 6.0f;
// ...and at most in / this many channels are (the largest): past that, the float part stops being small.
inline constexpr Index int8_max_outlier_fraction = 8;

// Rows of the rounding error per pack: the product with the mean row reads each once, and blocks of rows
// let it run on several threads (the int8 GEMM would give one row of A a single thread).
inline constexpr Index int8_rounding_block_rows = 128;

// A weight W [N, K] for int8_affine: W quantised per row, and its rounding error W - dequantised(W),
// quantised the same way in blocks of int8_rounding_block_rows rows.
struct Int8AffineWeights {
    Int8Weights weights;
    std::vector<Int8Weights> rounding;

    static Int8AffineWeights quantize(const float* W, Index ldw, Index N, Index K, Int8Kernel kernel,
                                      int threads = num_threads()) {
        Int8AffineWeights w;
        w.weights = Int8Weights::quantize(W, ldw, N, K, kernel, threads);
        const int weight_max = int8_weight_max(kernel);
        const Index blocks = ceil_div(N, int8_rounding_block_rows);
        w.rounding.resize(static_cast<std::size_t>(blocks));
        parallel_for(blocks, 1, [&](Index first, Index last) {
            std::vector<std::int8_t> q(static_cast<std::size_t>(K));
            std::vector<float> rounding;
            for (Index b = first; b < last; ++b) {
                const Index row0 = b * int8_rounding_block_rows,
                            rows = std::min(int8_rounding_block_rows, N - row0);
                rounding.resize(static_cast<std::size_t>(rows * K));
                for (Index n = 0; n < rows; ++n) {
                    const float* row = W + (row0 + n) * ldw;
                    float scale = 0.0f;
                    std::int32_t sum = 0;
                    Int8Weights::quantize_row(row, K, weight_max, q.data(), scale, sum);
                    for (Index k = 0; k < K; ++k)
                        rounding[std::size_t(n * K + k)] =
                            row[k] - scale * static_cast<float>(q[std::size_t(k)]);
                }
                w.rounding[std::size_t(b)] = Int8Weights::quantize(rounding.data(), K, rows, K, kernel, 1);
            }
        });
        return w;
    }

    Int8Kernel kernel() const { return weights.kernel; }
    Index bytes() const {
        Index total = weights.bytes();
        for (const Int8Weights& block : rounding) total += block.bytes();
        return total;
    }

    // out [M, N] = x R^T + bias (bias may be null), R the rounding error, x [M, K].
    void rounding_product(Index M, const float* x, const float* bias, float* out, int threads) const {
        const Index blocks = static_cast<Index>(rounding.size()), N = weights.N;
        parallel_region(static_cast<int>(std::min<Index>(threads, blocks)),
                        [&](int thread, int thread_count) {
                            const ItemRange share = static_share(blocks, thread, thread_count);
                            for (Index b = share.begin; b < share.end; ++b) {
                                const Index row0 = b * int8_rounding_block_rows;
                                int8_gemm_abt(M, x, weights.K, rounding[std::size_t(b)],
                                              bias ? bias + row0 : nullptr, out + row0, N, 1);
                            }
                        });
    }
};

// The largest |x| and the sum of each column of x [rows, in], row by row so that every pass is over
// contiguous memory in whole vectors.
struct Int8ColumnStatistics {
    Eigen::ArrayXf maxima, sums;
};

inline Int8ColumnStatistics int8_column_statistics(const float* x, Index rows, Index in) {
    Int8ColumnStatistics s{Eigen::ArrayXf::Zero(in), Eigen::ArrayXf::Zero(in)};
    for (Index i = 0; i < rows; ++i) {
        const Eigen::Map<const Eigen::ArrayXf> row(x + i * in, in);
        s.maxima = s.maxima.max(row.abs());
        s.sums += row;
    }
    return s;
}

// The outlier channels among `maxima` [in] (each channel's largest |x|; the rule above), in increasing order.
inline std::vector<Index> int8_outlier_channels(const Eigen::ArrayXf& maxima) {
    const Index in = maxima.size(), most = in / int8_max_outlier_fraction;
    if (most == 0) return {};
    std::vector<float> sorted(maxima.data(), maxima.data() + in);
    std::nth_element(sorted.begin(), sorted.begin() + in / 2, sorted.end());
    const float threshold = int8_outlier_ratio * sorted[static_cast<std::size_t>(in / 2)];
    std::vector<Index> outliers;
    for (Index k = 0; k < in; ++k)
        if (maxima[k] > threshold && maxima[k] > 0.0f) outliers.push_back(k);
    if (static_cast<Index>(outliers.size()) > most) {
        std::nth_element(outliers.begin(), outliers.begin() + most, outliers.end(),
                         [&](Index a, Index b) { return maxima[a] > maxima[b]; });
        outliers.resize(static_cast<std::size_t>(most));
        std::sort(outliers.begin(), outliers.end());
    }
    return outliers;
}

// The outlier channels of one sample x [rows, in].
inline std::vector<Index> int8_outlier_channels(const float* x, Index rows, Index in) {
    if (rows <= 0) return {};
    return int8_outlier_channels(int8_column_statistics(x, rows, in).maxima);
}

// An epilogue seen from a part of the output that starts `offset` rows in: it is told the rows' indices in
// the whole output (a rotary embedding finds each row's token from it).
struct OffsetEpilogue {
    const GemmEpilogue<float>* inner;
    Index offset;

    GemmEpilogue<float> epilogue() const {
        if (!*inner) return {};
        return {&apply, this, false};
    }
    static void apply(const void* self, float* c, Index ldc, Index row, Index rows, Index col, Index cols) {
        const auto& e = *static_cast<const OffsetEpilogue*>(self);
        e.inner->apply(e.inner->context, c, ldc, row + e.offset, rows, col, cols);
    }
};

// y [samples * rows, N] = x W^T + bias (bias may be null) in int8, for x [samples * rows, K]: `samples`
// samples of `rows` rows each, each with its own outlier channels and mean row (the rules above). `weights`
// is W [N, K] (row-major, as given) quantised by Int8AffineWeights::quantize; `epilogue` works on each
// finished block of y. On up to `threads` threads. Consecutive samples with the same outlier channels (most
// often none) share their GEMMs.
inline void int8_affine(Index samples, Index rows, const float* x, const float* W,
                        const Int8AffineWeights& weights, const float* bias, float* y, int threads,
                        const GemmEpilogue<float>& epilogue = {}) {
    const Index N = weights.weights.N, K = weights.weights.K;
    if (samples <= 0 || rows <= 0 || N <= 0) return;

    // Per sample: its outlier channels, and its mean row without them (those are computed in float).
    std::vector<std::vector<Index>> outliers(static_cast<std::size_t>(samples));
    std::vector<float> means(static_cast<std::size_t>(samples * K));
    parallel_for(samples, std::max<Index>(1, 65536 / (rows * K)), [&](Index first, Index last) {
        for (Index s = first; s < last; ++s) {
            const Int8ColumnStatistics columns = int8_column_statistics(x + s * rows * K, rows, K);
            std::vector<Index>& o = outliers[static_cast<std::size_t>(s)];
            o = int8_outlier_channels(columns.maxima);
            Eigen::Map<Eigen::ArrayXf> mean(means.data() + s * K, K);
            mean = columns.sums / static_cast<float>(rows);
            for (Index k : o) mean[k] = 0.0f;
        }
    });
    // bias + R x_mean per sample.
    std::vector<float> corrected(static_cast<std::size_t>(samples * N));
    weights.rounding_product(samples, means.data(), bias, corrected.data(), threads);

    std::vector<std::uint8_t> excluded(static_cast<std::size_t>(K));
    for (Index s0 = 0; s0 < samples;) {
        const std::vector<Index>& o = outliers[static_cast<std::size_t>(s0)];
        Index s1 = s0 + 1;
        while (s1 < samples && outliers[static_cast<std::size_t>(s1)] == o) ++s1;
        const Index row0 = s0 * rows, count = (s1 - s0) * rows, columns = static_cast<Index>(o.size());
        float* out = y + row0 * N;
        if (columns > 0) {  // y = x[:, O] W[:, O]^T in float, over the gathered columns
            std::vector<float> x_part(static_cast<std::size_t>(count * columns)),
                w_part(static_cast<std::size_t>(N * columns));
            for (Index i = 0; i < count; ++i)
                for (Index c = 0; c < columns; ++c) x_part[i * columns + c] = x[(row0 + i) * K + o[c]];
            for (Index j = 0; j < N; ++j)
                for (Index c = 0; c < columns; ++c) w_part[j * columns + c] = W[j * K + o[c]];
            packed_gemm_abt<float>(count, N, columns, x_part.data(), columns, w_part.data(), columns, out, N,
                                   nullptr, threads, active_isa());
        }
        for (Index s = s0; s < s1; ++s)  // y += the sample's bias + R x_mean
            for (Index i = 0; i < rows; ++i) {
                float* row = out + ((s - s0) * rows + i) * N;
                const float* add = corrected.data() + s * N;
                if (columns > 0) {
                    for (Index j = 0; j < N; ++j) row[j] += add[j];
                } else {
                    std::copy(add, add + N, row);
                }
            }
        // y += the rest of the product in int8, then the epilogue.
        std::fill(excluded.begin(), excluded.end(), std::uint8_t(0));
        for (Index k : o) excluded[static_cast<std::size_t>(k)] = 1;
        const OffsetEpilogue offset{&epilogue, row0};
        Int8GemmOptions options;
        options.excluded = columns > 0 ? excluded.data() : nullptr;
        options.accumulate = true;
        options.epilogue = offset.epilogue();
        int8_gemm_abt(count, x + row0 * K, K, weights.weights, nullptr, out, N, threads, options);
        s0 = s1;
    }
}

}  // namespace vit3d::detail
