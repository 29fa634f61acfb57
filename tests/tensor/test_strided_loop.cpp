// Unit tests for the strided copy kernel (vit3d::detail::simplify / copy_strided) and the library-wide
// thread count (vit3d::set_num_threads / num_threads).

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>
#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vit3d {
namespace {

using detail::copy_strided;
using detail::LoopNest;
using detail::simplify;

// A buffer whose elements are all distinct: 0, 1, 2, ...
std::vector<float> Sequence(Index n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(i);
    return v;
}

// The reference: visits every position of the nest with an odometer and copies element by element.
void NaiveCopy(float* dst, const float* src, const LoopNest& nest) {
    Index count = 1;
    for (Index len : nest.dims) count *= len;
    std::vector<Index> index(nest.dims.size(), 0);
    for (Index pos = 0; pos < count; ++pos) {
        Index d = 0, s = 0;
        for (std::size_t i = 0; i < index.size(); ++i) {
            d += index[i] * nest.dst_strides[i];
            s += index[i] * nest.src_strides[i];
        }
        dst[d] = src[s];
        for (std::size_t i = index.size(); i-- > 0;) {
            if (++index[i] < nest.dims[i]) break;
            index[i] = 0;
        }
    }
}

// Restores the default thread count after each test that changes it.
class ThreadCount : public ::testing::Test {
  protected:
    void TearDown() override { set_num_threads(0); }
};

// ---- simplify ------------------------------------------------------------------------------------------

TEST(Simplify, FusesAxesThatAreContiguousInBothBuffers) {
    LoopNest nest{{2, 3, 4}, {12, 4, 1}, {12, 4, 1}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_EQ(nest.dims, (Shape{24}));
    EXPECT_EQ(nest.dst_strides, (Shape{1}));
    EXPECT_EQ(nest.src_strides, (Shape{1}));
}

TEST(Simplify, FusesOnlyWhereBothBuffersStepOverThePairAsOneAxis) {
    // dst is row-major [2, 3, 4]; src stores axis 0 innermost and the (3, 4) block contiguously after it.
    LoopNest nest{{2, 3, 4}, {12, 4, 1}, {1, 8, 2}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_EQ(nest.dims, (Shape{2, 12}));
    EXPECT_EQ(nest.dst_strides, (Shape{12, 1}));
    EXPECT_EQ(nest.src_strides, (Shape{1, 2}));
}

TEST(Simplify, KeepsTheAxesOfATransposeApart) {
    LoopNest nest{{53, 37}, {37, 1}, {1, 53}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_EQ(nest.dims, (Shape{53, 37}));
    EXPECT_EQ(nest.dst_strides, (Shape{37, 1}));
    EXPECT_EQ(nest.src_strides, (Shape{1, 53}));
}

TEST(Simplify, DropsUnitAxesWhateverTheirStrides) {
    LoopNest nest{{1, 3, 1, 4}, {99, 4, 77, 1}, {55, 1, 33, 3}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_EQ(nest.dims, (Shape{3, 4}));
    EXPECT_EQ(nest.dst_strides, (Shape{4, 1}));
    EXPECT_EQ(nest.src_strides, (Shape{1, 3}));
}

TEST(Simplify, FusesAcrossADroppedUnitAxis) {
    LoopNest nest{{2, 1, 3}, {3, 100, 1}, {3, 100, 1}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_EQ(nest.dims, (Shape{6}));
    EXPECT_EQ(nest.dst_strides, (Shape{1}));
    EXPECT_EQ(nest.src_strides, (Shape{1}));
}

TEST(Simplify, NestOfOnlyUnitAxesBecomesRankZero) {
    LoopNest nest{{1, 1}, {5, 7}, {3, 2}};
    ASSERT_TRUE(simplify(nest));
    EXPECT_TRUE(nest.dims.empty());
    EXPECT_TRUE(nest.dst_strides.empty());
    EXPECT_TRUE(nest.src_strides.empty());
}

TEST(Simplify, BroadcastAxesFuseWithEachOtherButNotWithReadAxes) {
    LoopNest read_and_broadcast{{3, 4}, {4, 1}, {0, 1}};
    ASSERT_TRUE(simplify(read_and_broadcast));
    EXPECT_EQ(read_and_broadcast.dims, (Shape{3, 4}));
    EXPECT_EQ(read_and_broadcast.src_strides, (Shape{0, 1}));

    LoopNest all_broadcast{{3, 4}, {4, 1}, {0, 0}};
    ASSERT_TRUE(simplify(all_broadcast));
    EXPECT_EQ(all_broadcast.dims, (Shape{12}));
    EXPECT_EQ(all_broadcast.dst_strides, (Shape{1}));
    EXPECT_EQ(all_broadcast.src_strides, (Shape{0}));
}

TEST(Simplify, ReturnsFalseWhenAnyLengthIsZero) {
    LoopNest inner{{3, 2, 0}, {0, 0, 1}, {0, 0, 1}};
    EXPECT_FALSE(simplify(inner));
    LoopNest outer{{0, 2, 3}, {6, 3, 1}, {6, 3, 1}};
    EXPECT_FALSE(simplify(outer));
}

// ---- copy_strided --------------------------------------------------------------------------------------

TEST(CopyStrided, TransposesA37By53MatrixThroughTheTiledPath) {
    constexpr Index rows = 37, cols = 53;
    const std::vector<float> src = Sequence(rows * cols);
    std::vector<float> dst(src.size(), -1.0f);
    // dst [cols, rows] row-major (inner stride 1); src read column-wise (its stride-1 axis is dst's outer).
    copy_strided(dst.data(), src.data(), LoopNest{{cols, rows}, {rows, 1}, {1, cols}});
    for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c)
            ASSERT_EQ(dst[static_cast<std::size_t>(c * rows + r)],
                      src[static_cast<std::size_t>(r * cols + c)])
                << "element [" << r << ", " << c << "]";
}

TEST(CopyStrided, TransposesABatchOfMatricesWhoseSizesAreNotMultiplesOfTheTile) {
    constexpr Index batch = 3, rows = 19, cols = 5;
    const LoopNest nest{{batch, cols, rows}, {cols * rows, rows, 1}, {rows * cols, 1, cols}};
    const std::vector<float> src = Sequence(batch * rows * cols);
    std::vector<float> dst(src.size(), -1.0f), expected(src.size(), -1.0f);
    copy_strided(dst.data(), src.data(), nest);
    NaiveCopy(expected.data(), src.data(), nest);
    EXPECT_EQ(dst, expected);
}

TEST(CopyStrided, BroadcastsARowWhereTheSourceStrideIsZero) {
    const std::vector<float> row{1, 2, 3, 4, 5};
    std::vector<float> dst(20, -1.0f);
    copy_strided(dst.data(), row.data(), LoopNest{{4, 5}, {5, 1}, {0, 1}});
    for (Index r = 0; r < 4; ++r)
        for (Index c = 0; c < 5; ++c)
            EXPECT_EQ(dst[static_cast<std::size_t>(r * 5 + c)], row[static_cast<std::size_t>(c)]);
}

TEST(CopyStrided, BroadcastsAColumnAlongTheInnerAxis) {
    const std::vector<float> column{7, 8, 9};
    std::vector<float> dst(12, -1.0f);
    copy_strided(dst.data(), column.data(), LoopNest{{3, 4}, {4, 1}, {1, 0}});
    EXPECT_EQ(dst, (std::vector<float>{7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9}));
}

TEST(CopyStrided, BroadcastsASingleValueToEveryPosition) {
    const float value = 3.5f;
    std::vector<float> dst(100, -1.0f);
    copy_strided(dst.data(), &value, LoopNest{{4, 25}, {25, 1}, {0, 0}});
    for (float v : dst) EXPECT_EQ(v, 3.5f);
}

TEST(CopyStrided, WritesOnlyThePositionsOfAStridedDestination) {
    const std::vector<float> src = Sequence(6);
    std::vector<float> dst(12, -1.0f);
    copy_strided(dst.data(), src.data(), LoopNest{{6}, {2}, {1}});
    EXPECT_EQ(dst, (std::vector<float>{0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1}));
}

TEST(CopyStrided, CopiesLongContiguousRunsExactly) {
    const std::vector<float> src = Sequence(3 * 100);
    // Rows of 100 (memcpy path) into a destination with a padded row stride.
    std::vector<float> padded(3 * 128, -1.0f);
    copy_strided(padded.data(), src.data(), LoopNest{{3, 100}, {128, 1}, {100, 1}});
    for (Index r = 0; r < 3; ++r) {
        for (Index c = 0; c < 100; ++c)
            EXPECT_EQ(padded[static_cast<std::size_t>(r * 128 + c)], float(r * 100 + c));
        for (Index c = 100; c < 128; ++c) EXPECT_EQ(padded[static_cast<std::size_t>(r * 128 + c)], -1.0f);
    }
}

TEST(CopyStrided, RankZeroNestCopiesOneElement) {
    const float src = 4.0f;
    float dst = 0.0f;
    copy_strided(&dst, &src, LoopNest{});
    EXPECT_EQ(dst, 4.0f);
    float dst2 = 0.0f;
    copy_strided(&dst2, &src, LoopNest{{1, 1}, {1, 1}, {1, 1}});
    EXPECT_EQ(dst2, 4.0f);
}

TEST(CopyStrided, NestWithAZeroLengthCopiesNothing) {
    const std::vector<float> src = Sequence(6);
    std::vector<float> dst(6, -1.0f);
    copy_strided(dst.data(), src.data(), LoopNest{{2, 0, 3}, {3, 3, 1}, {3, 3, 1}});
    EXPECT_EQ(dst, std::vector<float>(6, -1.0f));
}

// dst[a, b, c] = src[a, c, b] over 5 * 256 * 128 = 163840 elements, above the parallel threshold: the
// tiled transpose of the 5 matrices is split over threads (unevenly for 2 and 3 threads).
TEST_F(ThreadCount, LargePermuteAboveTheParallelThresholdMatchesANaiveLoop) {
    constexpr Index a = 5, b = 256, c = 128;
    const LoopNest nest{{a, b, c}, {b * c, c, 1}, {c * b, 1, b}};
    const std::vector<float> src = Sequence(a * b * c);
    std::vector<float> expected(src.size(), -1.0f);
    NaiveCopy(expected.data(), src.data(), nest);
    for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        std::vector<float> dst(src.size(), -1.0f);
        copy_strided(dst.data(), src.data(), nest);
        EXPECT_TRUE(dst == expected) << "with " << threads << " thread(s)";
    }
}

// Every other column of a [512, 1040] buffer (padded rows, so the axes cannot fuse): 2^18 elements through
// the untiled strided path, in parallel.
TEST_F(ThreadCount, LargeStridedCopyAboveTheParallelThresholdMatchesANaiveLoop) {
    constexpr Index rows = 512, cols = 512, src_row = 1040;
    const LoopNest nest{{rows, cols}, {cols, 1}, {src_row, 2}};
    const std::vector<float> src = Sequence(rows * src_row);
    std::vector<float> expected(static_cast<std::size_t>(rows * cols), -1.0f);
    NaiveCopy(expected.data(), src.data(), nest);
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        std::vector<float> dst(expected.size(), -1.0f);
        copy_strided(dst.data(), src.data(), nest);
        EXPECT_TRUE(dst == expected) << "with " << threads << " thread(s)";
    }
}

TEST_F(ThreadCount, LargeTensorPermuteIsTheSameWithOneAndTwoThreads) {
    const auto t = test::Iota<float>({4, 256, 257});
    set_num_threads(1);
    const Tensor<float> serial = t.transpose(-1, -2);
    set_num_threads(2);
    const Tensor<float> parallel = t.transpose(-1, -2);
    EXPECT_TENSOR_EQ(parallel, serial);
    EXPECT_EQ(serial(3, 200, 100), t(3, 100, 200));
}

// ---- thread count --------------------------------------------------------------------------------------

TEST_F(ThreadCount, SettingOneThreadGivesOne) {
    set_num_threads(1);
    EXPECT_EQ(num_threads(), 1);
}

TEST_F(ThreadCount, SettingAPositiveCountIsReportedBackWithOpenMp) {
    set_num_threads(3);
#ifdef _OPENMP
    EXPECT_EQ(num_threads(), 3);
#else
    EXPECT_EQ(num_threads(), 1);  // without OpenMP every loop is serial
#endif
}

TEST_F(ThreadCount, SettingZeroOrANegativeCountRestoresTheDefault) {
    set_num_threads(1);
    set_num_threads(0);
    EXPECT_GE(num_threads(), 1);
#ifdef _OPENMP
    EXPECT_EQ(num_threads(), omp_get_max_threads());
#endif
    const int by_default = num_threads();
    set_num_threads(5);
    set_num_threads(-2);
    EXPECT_EQ(num_threads(), by_default);
}

}  // namespace
}  // namespace vit3d
