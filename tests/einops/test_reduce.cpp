// vit3d::reduce / vit3d::Reduce: every reduction against explicit loops on random shapes, precision of
// long float sums, NaN propagation, empty reductions, and errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vit3d.hpp>

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Reduction;
using vit3d::Shape;
using vit3d::Tensor;

TEST(Reduce, MeanPoolsTokensLikeAManualLoop) {
    const auto x = Tensor<float>::randn({2, 197, 24}, 1);
    const auto pooled = vit3d::reduce(x, "b n d -> b d", Reduction::mean);
    ASSERT_EQ(pooled.shape(), (Shape{2, 24}));
    for (Index b = 0; b < 2; ++b)
        for (Index d = 0; d < 24; ++d) {
            double sum = 0;
            for (Index n = 0; n < 197; ++n) sum += x(b, n, d);
            EXPECT_FLOAT_EQ(pooled(b, d), static_cast<float>(sum / 197));
        }
}

// Property: for random shapes and random kept subsets, each reduction equals a loop over the input
// that folds every element into its output position.
TEST(Reduce, EveryReductionEqualsAManualLoopOnRandomShapes) {
    std::mt19937 rng(7);
    const std::string names = "abcdef";
    const Reduction all[] = {Reduction::sum, Reduction::mean, Reduction::min, Reduction::max,
                             Reduction::prod};
    for (int trial = 0; trial < 100; ++trial) {
        const int rank = 1 + static_cast<int>(rng() % 5);
        Shape shape;
        for (int i = 0; i < rank; ++i) shape.push_back(1 + static_cast<Index>(rng() % 4));
        std::vector<int> kept;
        for (int i = 0; i < rank; ++i)
            if (rng() % 2) kept.push_back(i);
        std::shuffle(kept.begin(), kept.end(), rng);
        std::string left, right;
        for (int i = 0; i < rank; ++i) left += std::string(i ? " " : "") + names[i];
        for (std::size_t k = 0; k < kept.size(); ++k) right += std::string(k ? " " : "") + names[kept[k]];
        const Reduction r = all[trial % 5];
        const auto x = Tensor<double>::rand(shape, trial, 0.5, 1.5);
        const auto y = vit3d::reduce(x, left + " -> " + right, r);

        Shape out_shape;
        for (int k : kept) out_shape.push_back(shape[k]);
        ASSERT_EQ(y.shape(), out_shape);
        std::vector<double> expect(static_cast<std::size_t>(y.size()), r == Reduction::prod  ? 1.0
                                                                       : r == Reduction::min ? INFINITY
                                                                       : r == Reduction::max ? -INFINITY
                                                                                             : 0.0);
        const Shape in_strides = vit3d::row_major_strides(shape);
        const Shape out_strides = vit3d::row_major_strides(out_shape);
        for (Index i = 0; i < x.size(); ++i) {
            Index o = 0;
            for (std::size_t k = 0; k < kept.size(); ++k)
                o += (i / in_strides[kept[k]] % shape[kept[k]]) * out_strides[k];
            double& e = expect[static_cast<std::size_t>(o)];
            const double v = x.data()[i];
            if (r == Reduction::prod)
                e *= v;
            else if (r == Reduction::min)
                e = std::min(e, v);
            else if (r == Reduction::max)
                e = std::max(e, v);
            else
                e += v;
        }
        const double count = static_cast<double>(x.size() / std::max<Index>(1, y.size()));
        for (Index o = 0; o < y.size(); ++o) {
            const double e = expect[static_cast<std::size_t>(o)] / (r == Reduction::mean ? count : 1.0);
            ASSERT_NEAR(y.data()[o], e, 1e-12 * std::abs(e))
                << left << " -> " << right << " " << vit3d::reduction_name(r);
        }
    }
}

TEST(Reduce, PoolsWithAnonymousAndNamedWindows) {
    const auto x = Tensor<float>::arange(16).reshape({1, 1, 4, 4});
    const auto maxpool = vit3d::reduce(x, "b c (h 2) (w 2) -> b c h w", Reduction::max);
    EXPECT_EQ(maxpool, Tensor<float>({1, 1, 2, 2}, {5, 7, 13, 15}));
    const auto adaptive =
        vit3d::reduce(x, "b c (h1 h2) (w1 w2) -> b c h1 w1", Reduction::sum, {{"h1", 1}, {"w1", 2}});
    EXPECT_EQ(adaptive, Tensor<float>({1, 1, 1, 2},
                                      {0 + 1 + 4 + 5 + 8 + 9 + 12 + 13, 2 + 3 + 6 + 7 + 10 + 11 + 14 + 15}));
    const auto keepdims = vit3d::reduce(x, "b c h w -> b c () 1", Reduction::mean);
    EXPECT_EQ(keepdims, Tensor<float>({1, 1, 1, 1}, {7.5f}));
}

TEST(Reduce, LongFloatSumsAccumulateInDouble) {
    // 2^24 + 1 ones: a float accumulator would stop at 2^24.
    const Index n = (Index(1) << 24) + 2;
    const auto x = Tensor<float>::ones({n});
    EXPECT_EQ(vit3d::reduce(x, "n ->", Reduction::sum).data()[0], static_cast<float>(n));
    EXPECT_EQ(vit3d::reduce(x, "n ->", Reduction::mean).data()[0], 1.0f);
}

TEST(Reduce, MinAndMaxPropagateNan) {
    Tensor<float> x({2, 3}, {1, NAN, 3, 4, 5, 6});
    const auto mx = vit3d::reduce(x, "a b -> a", Reduction::max);
    EXPECT_TRUE(std::isnan(mx(0)));
    EXPECT_EQ(mx(1), 6);
    const auto mn = vit3d::reduce(x, "a b -> b", Reduction::min);
    EXPECT_EQ(mn(0), 1);
    EXPECT_TRUE(std::isnan(mn(1)));
    EXPECT_EQ(mn(2), 3);
}

TEST(Reduce, EmptyReductionsFollowTorch) {
    const Tensor<float> x({3, 0});
    EXPECT_EQ(vit3d::reduce(x, "a b -> a", Reduction::sum), Tensor<float>({3}));
    EXPECT_EQ(vit3d::reduce(x, "a b -> a", Reduction::prod), Tensor<float>::ones({3}));
    EXPECT_TRUE(std::isnan(vit3d::reduce(x, "a b -> a", Reduction::mean)(0)));
    EXPECT_THAT(
        [&] { vit3d::reduce(x, "a b -> a", Reduction::max); },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("cannot take the max over zero elements")));
    EXPECT_EQ(vit3d::reduce(x, "a b -> b", Reduction::min).shape(), (Shape{0}));
}

TEST(Reduce, IntegerTensorsSupportAllButMean) {
    const auto x = Tensor<int>::arange(6).reshape({2, 3});
    EXPECT_EQ(vit3d::reduce(x, "a b -> b", Reduction::sum), Tensor<int>({3}, {3, 5, 7}));
    EXPECT_EQ(vit3d::reduce(x, "a b -> a", Reduction::max), Tensor<int>({2}, {2, 5}));
    EXPECT_THAT(
        [&] { vit3d::reduce(x, "a b -> a", Reduction::mean); },
        ::testing::ThrowsMessage<vit3d::pattern_error>(HasSubstr("mean needs a floating-point tensor")));
}

TEST(Reduce, CompiledReduceMatchesTheFreeFunction) {
    const vit3d::Reduce gap("b c ... -> b c", Reduction::mean);
    EXPECT_EQ(gap.reduction(), Reduction::mean);
    EXPECT_EQ(gap.pattern(), "b c ... -> b c");
    const auto v = Tensor<float>::randn({2, 3, 4, 5, 6}, 3);
    EXPECT_EQ(gap(v), vit3d::reduce(v, "b c ... -> b c", Reduction::mean));
    EXPECT_EQ(gap(v).shape(), (Shape{2, 3}));
    std::vector<Tensor<float>> list{v, v};
    EXPECT_EQ(vit3d::reduce(list, "n b c ... -> b c", Reduction::mean), gap(v));
}

TEST(Reduce, ErrorsNameTheReductionAndAxis) {
    const Tensor<float> x({2, 3});
    EXPECT_THAT([&] { vit3d::reduce(x, "a b -> a c", Reduction::sum); },
                ::testing::ThrowsMessage<vit3d::pattern_error>(HasSubstr(
                    "the output of reduce may only keep input axes, but 'c' are not on the left side")));
    EXPECT_THAT(
        [&] {
            vit3d::reduce(x, "a b -> (a b)", Reduction::max, {{"b", 4}});
        },
        ::testing::ThrowsMessage<vit3d::pattern_error>(
            HasSubstr("vit3d::reduce(\"a b -> (a b)\", max): input axis 1 'b' has length 3, expected 4")));
    EXPECT_THROW(vit3d::Reduce("a -> a ...", Reduction::sum), vit3d::pattern_error);
}

}  // namespace
