// Unit tests for vit3d::Tensor: construction, factories, shape queries, element access, value semantics,
// reshaping, permutation, slicing and the zero-copy Eigen views.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace vit3d {
namespace {

using test::Iota;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

using FloatTypes = ::testing::Types<float, double>;

struct TypeNames {
    template <class T>
    static std::string GetName(int) {
        return std::is_same_v<T, float> ? "float" : "double";
    }
};

// ---- helpers -------------------------------------------------------------------------------------------

// Row-major multi-index of flat position `pos` in a tensor of `shape` (computed without vit3d).
std::vector<Index> Unravel(Index pos, const Shape& shape) {
    std::vector<Index> index(shape.size());
    for (std::size_t i = shape.size(); i-- > 0;) {
        index[i] = pos % shape[i];
        pos /= shape[i];
    }
    return index;
}

Index Ravel(const std::vector<Index>& index, const Shape& shape) {
    Index pos = 0;
    for (std::size_t i = 0; i < shape.size(); ++i) pos = pos * shape[i] + index[i];
    return pos;
}

bool IsAligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

// Checks `out` against an independent computation of in.permute(order): out[i0, ..., in-1] equals in at
// the index whose axis order[k] is ik.
template <class T>
::testing::AssertionResult IsPermutationOf(const Tensor<T>& out, const Tensor<T>& in,
                                           std::vector<Index> order) {
    const Index rank = in.rank();
    for (Index& axis : order) axis = axis < 0 ? axis + rank : axis;
    Shape expected_shape;
    for (Index axis : order) expected_shape.push_back(in.shape()[static_cast<std::size_t>(axis)]);
    if (out.shape() != expected_shape)
        return ::testing::AssertionFailure() << "shape " << shape_to_string(out.shape()) << ", expected "
                                             << shape_to_string(expected_shape);
    for (Index pos = 0; pos < out.size(); ++pos) {
        const std::vector<Index> out_index = Unravel(pos, out.shape());
        std::vector<Index> in_index(static_cast<std::size_t>(rank));
        for (std::size_t k = 0; k < order.size(); ++k)
            in_index[static_cast<std::size_t>(order[k])] = out_index[k];
        const T expected = in.data()[Ravel(in_index, in.shape())];
        if (out.data()[pos] != expected)
            return ::testing::AssertionFailure() << "at output index " << shape_to_string(out_index) << ": "
                                                 << out.data()[pos] << ", expected " << expected;
    }
    return ::testing::AssertionSuccess();
}

template <class T>
class TensorConstruction : public ::testing::Test {};
TYPED_TEST_SUITE(TensorConstruction, FloatTypes, TypeNames);

template <class T>
class TensorRandom : public ::testing::Test {};
TYPED_TEST_SUITE(TensorRandom, FloatTypes, TypeNames);

template <class T>
class TensorShapeQueries : public ::testing::Test {};
TYPED_TEST_SUITE(TensorShapeQueries, FloatTypes, TypeNames);

template <class T>
class TensorElementAccess : public ::testing::Test {};
TYPED_TEST_SUITE(TensorElementAccess, FloatTypes, TypeNames);

template <class T>
class TensorValueSemantics : public ::testing::Test {};
TYPED_TEST_SUITE(TensorValueSemantics, FloatTypes, TypeNames);

template <class T>
class TensorReshape : public ::testing::Test {};
TYPED_TEST_SUITE(TensorReshape, FloatTypes, TypeNames);

template <class T>
class TensorPermute : public ::testing::Test {};
TYPED_TEST_SUITE(TensorPermute, FloatTypes, TypeNames);

template <class T>
class TensorSlicing : public ::testing::Test {};
TYPED_TEST_SUITE(TensorSlicing, FloatTypes, TypeNames);

template <class T>
class TensorEigenViews : public ::testing::Test {};
TYPED_TEST_SUITE(TensorEigenViews, FloatTypes, TypeNames);

// ---- construction and factories ------------------------------------------------------------------------

TYPED_TEST(TensorConstruction, DefaultConstructedTensorHasShapeZeroAndNoElements) {
    const Tensor<TypeParam> t;
    EXPECT_EQ(t.shape(), Shape{0});
    EXPECT_EQ(t.rank(), 1);
    EXPECT_EQ(t.size(), 0);
    EXPECT_TRUE(t.is_empty());
    EXPECT_EQ(t.begin(), t.end());
}

TYPED_TEST(TensorConstruction, ShapeConstructorFillsEveryElementWithZero) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
    EXPECT_EQ(t.rank(), 3);
    EXPECT_EQ(t.size(), 24);
    EXPECT_FALSE(t.is_empty());
    for (TypeParam v : t) EXPECT_EQ(v, TypeParam(0));
}

// The zeros come from calloc rather than a fill pass: they must be zeros also where the allocator hands
// back memory that held other values, at every size (small blocks from the heap, large ones mapped) and
// with the 64-byte alignment kept by hand.
TYPED_TEST(TensorConstruction, ZeroedTensorsAreAllZerosAtEverySizeEvenInReusedMemory) {
    using T = TypeParam;
    for (Index n : {Index(1), Index(3), Index(17), Index(1000), Index(1) << 16, Index(1) << 21}) {
        {
            // Dirty blocks of this size, freed just before the zeroed one is allocated.
            std::vector<Tensor<T>> dirty;
            for (int i = 0; i < 4; ++i) dirty.push_back(Tensor<T>::full({n}, T(-3.5)));
        }
        const Tensor<T> zeros(Shape{n});
        const Tensor<T> also = Tensor<T>::zeros({n, 1});
        ASSERT_TRUE(IsAligned64(zeros.data()) && IsAligned64(also.data())) << n;
        for (Index i = 0; i < n; ++i) {
            ASSERT_EQ(zeros.data()[i], T(0)) << "element " << i << " of " << n;
            ASSERT_EQ(also.data()[i], T(0)) << "element " << i << " of " << n;
        }
        // Copies of a zeroed tensor are independent, written buffers.
        Tensor<T> copy = zeros;
        copy.data()[n - 1] = T(2);
        EXPECT_EQ(zeros.data()[n - 1], T(0));
        EXPECT_TRUE(IsAligned64(copy.data()));
    }
}

TYPED_TEST(TensorConstruction, EmptyIsAlignedAndWritableAtEverySize) {
    using T = TypeParam;
    for (Index n : {Index(1), Index(63), Index(64), Index(65), Index(1) << 20}) {
        Tensor<T> t = Tensor<T>::empty({n});
        ASSERT_TRUE(IsAligned64(t.data())) << n;
        t.fill(T(1.5));
        EXPECT_EQ(t.data()[0], T(1.5));
        EXPECT_EQ(t.data()[n - 1], T(1.5));
    }
}

TYPED_TEST(TensorConstruction, RankZeroShapeHoldsExactlyOneElement) {
    Tensor<TypeParam> t(Shape{});
    EXPECT_EQ(t.rank(), 0);
    EXPECT_EQ(t.size(), 1);
    EXPECT_FALSE(t.is_empty());
    EXPECT_TRUE(t.strides().empty());
    EXPECT_EQ(t(), TypeParam(0));
    t() = TypeParam(5);
    EXPECT_EQ(t.at(), TypeParam(5));
    EXPECT_EQ(t.data()[0], TypeParam(5));
}

TYPED_TEST(TensorConstruction, RankNineTensorAddressesElementsInRowMajorOrder) {
    const Shape shape{2, 1, 3, 1, 2, 1, 2, 1, 2};
    Tensor<TypeParam> t = Iota<TypeParam>(shape);
    EXPECT_EQ(t.rank(), 9);
    EXPECT_EQ(t.size(), 48);
    EXPECT_EQ(t.strides(), (Shape{24, 24, 8, 8, 4, 4, 2, 2, 1}));
    EXPECT_EQ(t(1, 0, 2, 0, 1, 0, 1, 0, 1), TypeParam(47));
    EXPECT_EQ(t(1, 0, 1, 0, 0, 0, 1, 0, 0), TypeParam(24 + 8 + 2));
    EXPECT_EQ(t.at(0, 0, 2, 0, 1, 0, 0, 0, 1), TypeParam(16 + 4 + 1));
    EXPECT_EQ(t.dim(-9), 2);
    EXPECT_EQ(t.dim(2), 3);
    EXPECT_THROW(t.at(0, 0, 0, 0, 0, 0, 0, 1, 0), index_error);
}

TYPED_TEST(TensorConstruction, ZeroLengthAxisGivesAnEmptyTensorOfThatShape) {
    const Tensor<TypeParam> t(Shape{3, 0, 2});
    EXPECT_EQ(t.shape(), (Shape{3, 0, 2}));
    EXPECT_EQ(t.rank(), 3);
    EXPECT_EQ(t.size(), 0);
    EXPECT_TRUE(t.is_empty());
}

TYPED_TEST(TensorConstruction, NegativeLengthThrowsShapeError) {
    using Tn = Tensor<TypeParam>;
    EXPECT_THROW(Tn(Shape{2, -1}), shape_error);
    EXPECT_THROW(Tn::empty({-3}), shape_error);
    EXPECT_THAT([] { return Tn::zeros({4, -2}); }, ThrowsMessage<shape_error>(HasSubstr("[4, -2]")));
}

TYPED_TEST(TensorConstruction, ShapeWithTooManyElementsThrowsShapeError) {
    using Tn = Tensor<TypeParam>;
    const Index big = Index(1) << 40;
    EXPECT_THAT(
        [&] {
            return Tn::empty({big, big});
        },
        ThrowsMessage<shape_error>(HasSubstr("too many elements")));
}

TYPED_TEST(TensorConstruction, ConstructsFromShapeAndVectorInRowMajorOrder) {
    const Tensor<TypeParam> t(Shape{2, 3}, std::vector<TypeParam>{1, 2, 3, 4, 5, 6});
    EXPECT_EQ(t.shape(), (Shape{2, 3}));
    EXPECT_EQ(t(0, 0), TypeParam(1));
    EXPECT_EQ(t(0, 2), TypeParam(3));
    EXPECT_EQ(t(1, 0), TypeParam(4));
    EXPECT_EQ(t(1, 2), TypeParam(6));
}

TYPED_TEST(TensorConstruction, ConstructionFromVectorOfWrongSizeThrowsShapeError) {
    using Tn = Tensor<TypeParam>;
    const std::vector<TypeParam> five{1, 2, 3, 4, 5};
    EXPECT_THAT(
        [&] {
            return Tn(Shape{2, 3}, five);
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("[2, 3]"), HasSubstr("needs 6 values, got 5"))));
    EXPECT_THROW(Tn(Shape{}, std::vector<TypeParam>{}), shape_error);
    EXPECT_THROW(Tn(Shape{2}, std::vector<TypeParam>{1, 2, 3}), shape_error);
}

TYPED_TEST(TensorConstruction, ConstructionFromPointerCopiesTheValues) {
    TypeParam values[6] = {1, 2, 3, 4, 5, 6};
    const Tensor<TypeParam> t(Shape{3, 2}, values);
    values[0] = TypeParam(100);  // the tensor owns a copy
    EXPECT_NE(t.data(), values);
    EXPECT_EQ(t.shape(), (Shape{3, 2}));
    EXPECT_EQ(t(0, 0), TypeParam(1));
    EXPECT_EQ(t(1, 1), TypeParam(4));
    EXPECT_EQ(t(2, 1), TypeParam(6));
}

TYPED_TEST(TensorConstruction, ConstructionFromNullPointerThrowsShapeError) {
    using Tn = Tensor<TypeParam>;
    const TypeParam* null = nullptr;
    EXPECT_THAT(
        [&] {
            return Tn(Shape{2, 2}, null);
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("null"), HasSubstr("[2, 2]"))));
    EXPECT_THROW(Tn(Shape{}, null), shape_error);
}

TYPED_TEST(TensorConstruction, NullPointerIsAcceptedForAShapeWithoutElements) {
    const TypeParam* null = nullptr;
    const Tensor<TypeParam> t(Shape{4, 0}, null);
    EXPECT_EQ(t.shape(), (Shape{4, 0}));
    EXPECT_EQ(t.size(), 0);
}

TYPED_TEST(TensorConstruction, EmptyHasTheRequestedShape) {
    const auto t = Tensor<TypeParam>::empty({4, 5});
    EXPECT_EQ(t.shape(), (Shape{4, 5}));
    EXPECT_EQ(t.size(), 20);
    const auto scalar = Tensor<TypeParam>::empty({});
    EXPECT_EQ(scalar.rank(), 0);
    EXPECT_EQ(scalar.size(), 1);
}

TYPED_TEST(TensorConstruction, ZerosOnesAndFullFillEveryElement) {
    using Tn = Tensor<TypeParam>;
    const Tn zeros = Tn::zeros({3, 2});
    const Tn ones = Tn::ones({2, 5});
    const Tn full = Tn::full({7}, TypeParam(-2.5));
    EXPECT_EQ(zeros.shape(), (Shape{3, 2}));
    EXPECT_EQ(ones.shape(), (Shape{2, 5}));
    EXPECT_EQ(full.shape(), (Shape{7}));
    for (TypeParam v : zeros) EXPECT_EQ(v, TypeParam(0));
    for (TypeParam v : ones) EXPECT_EQ(v, TypeParam(1));
    for (TypeParam v : full) EXPECT_EQ(v, TypeParam(-2.5));
    EXPECT_EQ(Tn::full({}, TypeParam(3))(), TypeParam(3));
}

TYPED_TEST(TensorConstruction, ArangeCountsFromZero) {
    using Tn = Tensor<TypeParam>;
    const Tn t = Tn::arange(5);
    EXPECT_EQ(t.shape(), (Shape{5}));
    EXPECT_TENSOR_EQ(t, Tn(Shape{5}, std::vector<TypeParam>{0, 1, 2, 3, 4}));
    EXPECT_EQ(Tn::arange(0).shape(), (Shape{0}));
    EXPECT_THROW(Tn::arange(-1), shape_error);
}

TYPED_TEST(TensorConstruction, FillOverwritesEveryElement) {
    Tensor<TypeParam> t = Iota<TypeParam>({3, 4});
    t.fill(TypeParam(9));
    for (TypeParam v : t) EXPECT_EQ(v, TypeParam(9));
}

TYPED_TEST(TensorConstruction, IterationVisitsElementsInRowMajorOrder) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3});
    std::vector<TypeParam> seen(t.begin(), t.end());
    EXPECT_EQ(seen, (std::vector<TypeParam>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(t.end() - t.begin(), 6);
}

// ---- random factories ----------------------------------------------------------------------------------

// An independent transcription of the published reference generators (Vigna): SplitMix64 seeding
// xoshiro256**, uniform doubles from the top 53 bits.
class ReferenceGenerator {
  public:
    static std::uint64_t SplitMix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    explicit ReferenceGenerator(std::uint64_t seed) {
        for (std::uint64_t& word : s_) word = SplitMix64(seed);
    }
    std::uint64_t Next() {
        const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = Rotl(s_[3], 45);
        return result;
    }
    double Uniform() { return static_cast<double>(Next() >> 11) / 9007199254740992.0; }

  private:
    static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

TEST(ReferenceGeneratorSelfCheck, SplitMix64MatchesItsPublishedFirstOutputForSeedZero) {
    std::uint64_t state = 0;
    EXPECT_EQ(ReferenceGenerator::SplitMix64(state), 0xe220a8397b1dcdafULL);
}

TYPED_TEST(TensorRandom, RandWithTheSameSeedGivesTheSameTensor) {
    using Tn = Tensor<TypeParam>;
    EXPECT_TENSOR_EQ(Tn::rand({3, 50}, 42), Tn::rand({3, 50}, 42));
    EXPECT_TENSOR_EQ(Tn::rand({8}, 7, TypeParam(-1), TypeParam(4)),
                     Tn::rand({8}, 7, TypeParam(-1), TypeParam(4)));
}

TYPED_TEST(TensorRandom, RandnWithTheSameSeedGivesTheSameTensor) {
    using Tn = Tensor<TypeParam>;
    EXPECT_TENSOR_EQ(Tn::randn({4, 33}, 1234), Tn::randn({4, 33}, 1234));
    EXPECT_TENSOR_EQ(Tn::randn({5}, 0, TypeParam(1), TypeParam(2)),
                     Tn::randn({5}, 0, TypeParam(1), TypeParam(2)));
}

TYPED_TEST(TensorRandom, DifferentSeedsGiveDifferentSamples) {
    using Tn = Tensor<TypeParam>;
    const Tn a = Tn::randn({1000}, 1), b = Tn::randn({1000}, 2);
    const Tn c = Tn::rand({1000}, 1), d = Tn::rand({1000}, 2);
    Index equal_normal = 0, equal_uniform = 0;
    for (Index i = 0; i < 1000; ++i) {
        equal_normal += a.data()[i] == b.data()[i];
        equal_uniform += c.data()[i] == d.data()[i];
    }
    EXPECT_LE(equal_normal, 1);
    EXPECT_LE(equal_uniform, 1);
}

TYPED_TEST(TensorRandom, RandMatchesTheReferenceXoshiro256StarStarSequence) {
    const auto t = Tensor<TypeParam>::rand({6}, 123);
    ReferenceGenerator reference(123);
    for (Index i = 0; i < t.size(); ++i)
        EXPECT_EQ(t.data()[i], static_cast<TypeParam>(reference.Uniform())) << "element " << i;
}

TYPED_TEST(TensorRandom, RandnUsesBoxMullerPairsOfTheReferenceSequence) {
    const auto t = Tensor<TypeParam>::randn({4}, 99);
    ReferenceGenerator reference(99);
    for (Index pair = 0; pair < 2; ++pair) {
        const double u1 = 1.0 - reference.Uniform(), u2 = reference.Uniform();
        const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * 3.14159265358979323846 * u2;
        const double tol = std::is_same_v<TypeParam, float> ? 1e-5 : 1e-12;
        EXPECT_NEAR(t.data()[2 * pair], radius * std::cos(angle), tol);
        EXPECT_NEAR(t.data()[2 * pair + 1], radius * std::sin(angle), tol);
    }
}

TYPED_TEST(TensorRandom, RandnSampleMomentsMatchTheRequestedMeanAndStddev) {
    constexpr Index n = 100000;
    const auto t = Tensor<TypeParam>::randn({n}, 2024, TypeParam(2), TypeParam(3));
    double sum = 0.0;
    for (TypeParam v : t) sum += v;
    const double mean = sum / n;
    double squares = 0.0;
    Index within_one_sigma = 0;
    for (TypeParam v : t) {
        squares += (v - mean) * (v - mean);
        within_one_sigma += std::abs(v - 2.0) <= 3.0;
    }
    const double stddev = std::sqrt(squares / (n - 1));
    // Standard errors: mean 3 / sqrt(n) ~ 0.0095, stddev 3 / sqrt(2n) ~ 0.0067, fraction ~ 0.0015.
    EXPECT_NEAR(mean, 2.0, 0.05);
    EXPECT_NEAR(stddev, 3.0, 0.04);
    // A normal distribution has 68.3% of its mass within one sigma (a uniform one 57.7%).
    EXPECT_NEAR(static_cast<double>(within_one_sigma) / n, 0.6827, 0.01);
}

TYPED_TEST(TensorRandom, RandSamplesCoverTheHalfOpenInterval) {
    constexpr Index n = 100000;
    const TypeParam low(-2), high(3);
    const auto t = Tensor<TypeParam>::rand({n}, 77, low, high);
    double sum = 0.0;
    TypeParam lo = high, hi = low;
    for (TypeParam v : t) {
        ASSERT_GE(v, low);
        ASSERT_LT(v, high);
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    EXPECT_NEAR(sum / n, 0.5, 0.05);  // standard error 5 / sqrt(12 n) ~ 0.0046
    EXPECT_LT(lo, TypeParam(-1.99));
    EXPECT_GT(hi, TypeParam(2.99));
}

TYPED_TEST(TensorRandom, RandomFactoriesSupportRankZeroAndEmptyShapes) {
    using Tn = Tensor<TypeParam>;
    EXPECT_EQ(Tn::randn({}, 3).size(), 1);
    EXPECT_EQ(Tn::rand({2, 0}, 3).shape(), (Shape{2, 0}));
}

// Tensor<float>::rand computes low + (high - low) * u in double and rounds the result to float: every
// u in [1 - 2^-25, 1) rounds up to exactly `high` (probability 2^-25 per sample). Seed 39061301 draws
// such a u first.
TEST(TensorRandomFloat, RandNeverReturnsTheUpperBound) {
    const auto t = Tensor<float>::rand({1}, 39061301);
    EXPECT_LT(t.data()[0], 1.0f);
    const auto shifted = Tensor<float>::rand({1}, 39061301, -1.0f, 1.0f);
    EXPECT_LT(shifted.data()[0], 1.0f);
}

// ---- shape queries -------------------------------------------------------------------------------------

TYPED_TEST(TensorShapeQueries, DimAcceptsNegativeAxesCountingFromTheBack) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_EQ(t.dim(0), 2);
    EXPECT_EQ(t.dim(1), 3);
    EXPECT_EQ(t.dim(2), 4);
    EXPECT_EQ(t.dim(-1), 4);
    EXPECT_EQ(t.dim(-2), 3);
    EXPECT_EQ(t.dim(-3), 2);
}

TYPED_TEST(TensorShapeQueries, DimOutsideTheRankThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THAT([&] { return t.dim(3); },
                ThrowsMessage<shape_error>(HasSubstr("axis 3 is out of range for rank 3")));
    EXPECT_THROW(t.dim(-4), shape_error);
    const Tensor<TypeParam> scalar(Shape{});
    EXPECT_THROW(scalar.dim(0), shape_error);
    EXPECT_THROW(scalar.dim(-1), shape_error);
}

TYPED_TEST(TensorShapeQueries, StridesAreRowMajorElementStrides) {
    EXPECT_EQ(Tensor<TypeParam>(Shape{2, 3, 4}).strides(), (Shape{12, 4, 1}));
    EXPECT_EQ(Tensor<TypeParam>(Shape{5}).strides(), (Shape{1}));
    EXPECT_EQ(Tensor<TypeParam>(Shape{3, 1, 2}).strides(), (Shape{2, 2, 1}));
}

TYPED_TEST(TensorShapeQueries, DataIsAlignedTo64Bytes) {
    using Tn = Tensor<TypeParam>;
    for (Index n : {1, 3, 17, 1000}) {
        const Tn t(Shape{n});
        EXPECT_TRUE(IsAligned64(t.data())) << "size " << n;
        const Tn copy = t;
        EXPECT_TRUE(IsAligned64(copy.data())) << "copy of size " << n;
    }
    const Tn t = Iota<TypeParam>({3, 5, 7});
    EXPECT_TRUE(IsAligned64(t.permute({2, 0, 1}).data()));
    EXPECT_TRUE(IsAligned64(t.slice(1, 1, 4).data()));
    EXPECT_TRUE(IsAligned64(t.reshape({-1}).data()));
    EXPECT_TRUE(IsAligned64(Tn::randn({13}, 1).data()));
}

// ---- element access ------------------------------------------------------------------------------------

TYPED_TEST(TensorElementAccess, CallOperatorAddressesRowMajorOffsets) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 3; ++j)
            for (Index k = 0; k < 4; ++k) EXPECT_EQ(t(i, j, k), TypeParam(i * 12 + j * 4 + k));
}

TYPED_TEST(TensorElementAccess, CallOperatorAndAtWriteThrough) {
    Tensor<TypeParam> t(Shape{2, 3});
    t(1, 2) = TypeParam(7);
    t.at(0, 1) = TypeParam(-3);
    EXPECT_EQ(t.data()[5], TypeParam(7));
    EXPECT_EQ(t.data()[1], TypeParam(-3));
}

TYPED_TEST(TensorElementAccess, AtReturnsTheSameElementAsTheCallOperator) {
    const Tensor<TypeParam> t = Iota<TypeParam>({3, 4, 5});
    EXPECT_EQ(&t.at(2, 3, 4), &t(2, 3, 4));
    EXPECT_EQ(&t.at(1, 0, 2), &t(1, 0, 2));
    EXPECT_EQ(t.at(1, 2, 3), TypeParam(20 + 10 + 3));
    EXPECT_EQ(t.at(std::size_t{2}, 0, short{1}), TypeParam(41));  // any integer index type
}

TYPED_TEST(TensorElementAccess, AtOutsideTheShapeThrowsIndexError) {
    Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THROW(t.at(2, 0, 0), index_error);
    EXPECT_THROW(t.at(0, 3, 0), index_error);
    EXPECT_THROW(t.at(0, 0, 4), index_error);
    EXPECT_THROW(t.at(0, -1, 0), index_error);
    EXPECT_THAT([&] { return t.at(1, 5, 2); },
                ThrowsMessage<index_error>(AllOf(HasSubstr("[1, 5, 2]"), HasSubstr("[2, 3, 4]"))));
    const Tensor<TypeParam>& c = t;
    EXPECT_THROW(c.at(-1, 0, 0), index_error);
}

TYPED_TEST(TensorElementAccess, AtWithTheWrongNumberOfIndicesThrowsIndexError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THROW(t.at(0, 0), index_error);
    EXPECT_THROW(t.at(0, 0, 0, 0), index_error);
    EXPECT_THROW(t.at(), index_error);
    const Tensor<TypeParam> scalar(Shape{});
    EXPECT_THROW(scalar.at(0), index_error);
    EXPECT_NO_THROW(scalar.at());
}

TYPED_TEST(TensorElementAccess, IndexErrorIsCaughtAsShapeError) {
    static_assert(std::is_base_of_v<shape_error, index_error>);
    const Tensor<TypeParam> t(Shape{2});
    EXPECT_THROW(t.at(2), shape_error);
}

// ---- value semantics -----------------------------------------------------------------------------------

TYPED_TEST(TensorValueSemantics, CopyConstructionCopiesTheElements) {
    const Tensor<TypeParam> original = Iota<TypeParam>({2, 3});
    Tensor<TypeParam> copy = original;
    EXPECT_NE(copy.data(), original.data());
    EXPECT_TENSOR_EQ(copy, original);
    copy(0, 0) = TypeParam(100);
    EXPECT_EQ(original(0, 0), TypeParam(0));
}

TYPED_TEST(TensorValueSemantics, CopyAssignmentCopiesTheElementsAndShape) {
    const Tensor<TypeParam> original = Iota<TypeParam>({4, 2});
    Tensor<TypeParam> target(Shape{7});
    target = original;
    EXPECT_EQ(target.shape(), (Shape{4, 2}));
    EXPECT_NE(target.data(), original.data());
    EXPECT_TENSOR_EQ(target, original);
    target(3, 1) = TypeParam(-1);
    EXPECT_EQ(original(3, 1), TypeParam(7));
}

TYPED_TEST(TensorValueSemantics, MoveConstructionTakesTheBufferWithoutCopying) {
    Tensor<TypeParam> source = Iota<TypeParam>({3, 4});
    const TypeParam* buffer = source.data();
    const Tensor<TypeParam> moved = std::move(source);
    EXPECT_EQ(moved.data(), buffer);
    EXPECT_EQ(moved.shape(), (Shape{3, 4}));
    EXPECT_TENSOR_EQ(moved, Iota<TypeParam>({3, 4}));
}

TYPED_TEST(TensorValueSemantics, MoveAssignmentTakesTheBufferWithoutCopying) {
    Tensor<TypeParam> source = Iota<TypeParam>({5});
    const TypeParam* buffer = source.data();
    Tensor<TypeParam> target(Shape{2, 2});
    target = std::move(source);
    EXPECT_EQ(target.data(), buffer);
    EXPECT_EQ(target.shape(), (Shape{5}));
}

TYPED_TEST(TensorValueSemantics, MovedFromTensorCanBeReassignedAndUsed) {
    Tensor<TypeParam> source = Iota<TypeParam>({3});
    Tensor<TypeParam> target = std::move(source);
    source = Tensor<TypeParam>::ones({2, 2});  // NOLINT(bugprone-use-after-move): reassigning is allowed
    EXPECT_EQ(source.shape(), (Shape{2, 2}));
    EXPECT_EQ(source(1, 1), TypeParam(1));
    EXPECT_EQ(target(2), TypeParam(2));
}

// A moved-from object must still satisfy the class invariant: its size is the product of its shape.
TYPED_TEST(TensorValueSemantics, MovedFromTensorStillHasAsManyElementsAsItsShapeSays) {
    Tensor<TypeParam> source = Iota<TypeParam>({3, 4});
    const Tensor<TypeParam> constructed = std::move(source);
    // NOLINTNEXTLINE(bugprone-use-after-move)
    EXPECT_EQ(shape_numel(source.shape()), source.size())
        << "moved-from shape " << shape_to_string(source.shape());

    Tensor<TypeParam> assigned_from = Iota<TypeParam>({2});
    Tensor<TypeParam> target(Shape{1});
    target = std::move(assigned_from);
    // NOLINTNEXTLINE(bugprone-use-after-move)
    EXPECT_EQ(shape_numel(assigned_from.shape()), assigned_from.size())
        << "moved-from shape " << shape_to_string(assigned_from.shape());
}

// ---- reshape, unsqueeze, squeeze -----------------------------------------------------------------------

TYPED_TEST(TensorReshape, ReshapeKeepsTheRowMajorElementOrder) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    const Tensor<TypeParam> r = t.reshape({4, 6});
    EXPECT_EQ(r.shape(), (Shape{4, 6}));
    EXPECT_EQ(r(1, 0), TypeParam(6));
    EXPECT_EQ(r(3, 5), TypeParam(23));
    EXPECT_TENSOR_EQ(r.reshape({2, 3, 4}), t);
}

TYPED_TEST(TensorReshape, ReshapeInfersTheLengthGivenAsMinusOne) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    EXPECT_EQ(t.reshape({-1, 4}).shape(), (Shape{6, 4}));
    EXPECT_EQ(t.reshape({2, -1, 2}).shape(), (Shape{2, 6, 2}));
    EXPECT_EQ(t.reshape({-1}).shape(), (Shape{24}));
    EXPECT_EQ(Tensor<TypeParam>(Shape{0, 3}).reshape({-1}).shape(), (Shape{0}));
}

TYPED_TEST(TensorReshape, ReshapeWithTwoInferredLengthsThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THAT(
        [&] {
            return t.reshape({-1, -1});
        },
        ThrowsMessage<shape_error>(HasSubstr("only one length")));
}

TYPED_TEST(TensorReshape, ReshapeToADifferentElementCountThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THAT(
        [&] {
            return t.reshape({5, 5});
        },
        ThrowsMessage<shape_error>(HasSubstr("cannot reshape [2, 3, 4] (24 elements) into [5, 5]")));
    EXPECT_THROW(t.reshape({-1, 5}), shape_error);
    EXPECT_THROW(t.reshape({0, -1}), shape_error);
    EXPECT_THROW(t.reshape({}), shape_error);
}

TYPED_TEST(TensorReshape, ReshapeRejectsNegativeLengthsOtherThanMinusOne) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THROW(t.reshape({-2, -12}), shape_error);
    EXPECT_THROW(t.reshape({-24}), shape_error);
}

// The product of the known lengths overflows Index; infer_reshape must not compute it with signed
// overflow (undefined behaviour, reported by UBSan) before rejecting the shape.
TYPED_TEST(TensorReshape, ReshapeWithOverflowingLengthsThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3});
    const Index big = Index(1) << 32;
    EXPECT_THROW(t.reshape({-1, big, big}), shape_error);
    EXPECT_THROW(t.reshape({big, big, 6}), shape_error);
}

TYPED_TEST(TensorReshape, ReshapeOfAnLvalueCopiesAndLeavesTheSourceUnchanged) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3});
    const Tensor<TypeParam> r = t.reshape({3, 2});
    EXPECT_EQ(t.shape(), (Shape{2, 3}));
    EXPECT_NE(r.data(), t.data());
}

TYPED_TEST(TensorReshape, ReshapeOfAnRvalueKeepsTheDataPointer) {
    Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    const TypeParam* buffer = t.data();
    const Tensor<TypeParam> r = std::move(t).reshape({4, -1});
    EXPECT_EQ(r.data(), buffer);
    EXPECT_EQ(r.shape(), (Shape{4, 6}));
    EXPECT_EQ(r(3, 5), TypeParam(23));
}

TYPED_TEST(TensorReshape, ReshapeConvertsBetweenRankZeroAndSingleElementShapes) {
    Tensor<TypeParam> scalar(Shape{});
    scalar() = TypeParam(4);
    EXPECT_EQ(scalar.reshape({1, 1}).shape(), (Shape{1, 1}));
    EXPECT_EQ(scalar.reshape({-1}).shape(), (Shape{1}));
    const Tensor<TypeParam> back = scalar.reshape({1, 1}).reshape({});
    EXPECT_EQ(back.rank(), 0);
    EXPECT_EQ(back(), TypeParam(4));
}

TYPED_TEST(TensorReshape, UnsqueezeInsertsAUnitAxisBeforeThePosition) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3});
    EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 3}));
    EXPECT_EQ(t.unsqueeze(1).shape(), (Shape{2, 1, 3}));
    EXPECT_EQ(t.unsqueeze(2).shape(), (Shape{2, 3, 1}));
    EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
    EXPECT_EQ(t.unsqueeze(-3).shape(), (Shape{1, 2, 3}));
    EXPECT_EQ(t.unsqueeze(1)(1, 0, 2), TypeParam(5));
    EXPECT_EQ(Tensor<TypeParam>(Shape{}).unsqueeze(0).shape(), (Shape{1}));
}

TYPED_TEST(TensorReshape, UnsqueezeOutsideRankPlusOneThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3});
    EXPECT_THROW(t.unsqueeze(3), shape_error);
    EXPECT_THROW(t.unsqueeze(-4), shape_error);
}

TYPED_TEST(TensorReshape, SqueezeRemovesAUnitAxis) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 1, 3});
    EXPECT_EQ(t.squeeze(1).shape(), (Shape{2, 3}));
    EXPECT_EQ(t.squeeze(-2).shape(), (Shape{2, 3}));
    EXPECT_EQ(t.squeeze(1)(1, 2), TypeParam(5));
    EXPECT_EQ(Tensor<TypeParam>(Shape{1}).squeeze(0).rank(), 0);
}

TYPED_TEST(TensorReshape, SqueezeOfANonUnitAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 1, 3});
    EXPECT_THAT([&] { return t.squeeze(2); },
                ThrowsMessage<shape_error>(AllOf(HasSubstr("axis 2 of length 1"), HasSubstr("[2, 1, 3]"))));
    EXPECT_THROW(t.squeeze(0), shape_error);
    EXPECT_THROW(t.squeeze(3), shape_error);
    EXPECT_THROW(t.squeeze(-4), shape_error);
    EXPECT_THROW(Tensor<TypeParam>(Shape{}).squeeze(0), shape_error);
}

// ---- permute and transpose -----------------------------------------------------------------------------

TYPED_TEST(TensorPermute, PermuteOfRankFourMatchesAnIndependentIndexComputation) {
    const Tensor<TypeParam> t = Tensor<TypeParam>::randn({2, 3, 4, 5}, 11);
    const std::vector<Index> order{2, 0, 3, 1};
    const Tensor<TypeParam> p = t.permute(order);
    EXPECT_EQ(p.shape(), (Shape{4, 2, 5, 3}));
    EXPECT_TRUE(IsPermutationOf(p, t, order));
    EXPECT_EQ(p(3, 1, 4, 2), t(1, 2, 3, 4));
}

TYPED_TEST(TensorPermute, PermuteOfRankFiveWithNegativeAxesMatchesAnIndependentIndexComputation) {
    const Tensor<TypeParam> t = Tensor<TypeParam>::rand({2, 3, 1, 4, 5}, 12);
    const std::vector<Index> order{-1, 2, 0, -2, 1};
    const Tensor<TypeParam> p = t.permute(order);
    EXPECT_EQ(p.shape(), (Shape{5, 1, 2, 4, 3}));
    EXPECT_TRUE(IsPermutationOf(p, t, order));
}

TYPED_TEST(TensorPermute, PermuteWithLongContiguousRunsMatchesAnIndependentIndexComputation) {
    // [B, C, D, H, W] -> [B, D, H, W, C] with runs long enough for the tiled and memcpy paths.
    const Tensor<TypeParam> t = Tensor<TypeParam>::randn({2, 5, 3, 8, 70}, 13);
    const std::vector<Index> order{0, 2, 3, 4, 1};
    EXPECT_TRUE(IsPermutationOf(t.permute(order), t, order));
    const std::vector<Index> keep_last{1, 0, 2, 3, 4};
    EXPECT_TRUE(IsPermutationOf(t.permute(keep_last), t, keep_last));
}

TYPED_TEST(TensorPermute, IdentityPermutationIsAnEqualCopy) {
    const Tensor<TypeParam> t = Iota<TypeParam>({3, 4, 5});
    const Tensor<TypeParam> p = t.permute({0, 1, 2});
    EXPECT_NE(p.data(), t.data());
    EXPECT_TENSOR_EQ(p, t);
}

TYPED_TEST(TensorPermute, PermuteHandlesRankZeroAndEmptyTensors) {
    Tensor<TypeParam> scalar(Shape{});
    scalar() = TypeParam(3);
    EXPECT_EQ(scalar.permute({})(), TypeParam(3));
    EXPECT_EQ(Tensor<TypeParam>(Shape{0, 3}).permute({1, 0}).shape(), (Shape{3, 0}));
}

TYPED_TEST(TensorPermute, PermuteWithAnOrderOfTheWrongLengthThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THAT(
        [&] {
            return t.permute({1, 0});
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("expected 3 axes"), HasSubstr("[1, 0]"))));
    EXPECT_THROW(t.permute({0, 1, 2, 3}), shape_error);
    EXPECT_THROW(t.permute({}), shape_error);
}

TYPED_TEST(TensorPermute, PermuteWithARepeatedAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THAT(
        [&] {
            return t.permute({0, 1, 1});
        },
        ThrowsMessage<shape_error>(HasSubstr("repeats axis 1")));
    EXPECT_THROW(t.permute({0, 1, -3}), shape_error);  // -3 is axis 0 again
}

TYPED_TEST(TensorPermute, PermuteWithAnOutOfRangeAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3, 4});
    EXPECT_THROW(t.permute({0, 1, 3}), shape_error);
    EXPECT_THROW(t.permute({-4, 1, 2}), shape_error);
}

TYPED_TEST(TensorPermute, TransposeSwapsTwoAxes) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    const Tensor<TypeParam> p = t.transpose(0, 2);
    EXPECT_EQ(p.shape(), (Shape{4, 3, 2}));
    for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 3; ++j)
            for (Index k = 0; k < 4; ++k) EXPECT_EQ(p(k, j, i), t(i, j, k));
    EXPECT_TENSOR_EQ(t.transpose(-1, 0), p);
    EXPECT_TENSOR_EQ(t.transpose(1, 1), t);
    EXPECT_EQ(t.transpose(-2, -1).shape(), (Shape{2, 4, 3}));
}

TYPED_TEST(TensorPermute, TransposeOfAnOutOfRangeAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{2, 3});
    EXPECT_THROW(t.transpose(0, 2), shape_error);
    EXPECT_THROW(t.transpose(-3, 0), shape_error);
}

// ---- slice, narrow, select -----------------------------------------------------------------------------

TYPED_TEST(TensorSlicing, SliceTakesTheHalfOpenRange) {
    const Tensor<TypeParam> t = Iota<TypeParam>({4, 5});
    const Tensor<TypeParam> s = t.slice(1, 1, 4);
    EXPECT_EQ(s.shape(), (Shape{4, 3}));
    for (Index r = 0; r < 4; ++r)
        for (Index c = 0; c < 3; ++c) EXPECT_EQ(s(r, c), t(r, c + 1));
    EXPECT_TENSOR_EQ(t.slice(0, 2, 3), Iota<TypeParam>({1, 5}, TypeParam(10)));
}

TYPED_TEST(TensorSlicing, SliceCountsNegativeBoundsFromTheEnd) {
    const Tensor<TypeParam> t = Iota<TypeParam>({4, 5});
    const Tensor<TypeParam> s = t.slice(-1, -3, -1);
    EXPECT_EQ(s.shape(), (Shape{4, 2}));
    EXPECT_EQ(s(0, 0), TypeParam(2));
    EXPECT_EQ(s(3, 1), TypeParam(18));
    EXPECT_TENSOR_EQ(t.slice(0, -1, 4), Iota<TypeParam>({1, 5}, TypeParam(15)));
}

TYPED_TEST(TensorSlicing, SliceClampsOutOfRangeBounds) {
    const Tensor<TypeParam> t = Iota<TypeParam>({4, 5});
    EXPECT_TENSOR_EQ(t.slice(0, -100, 100), t);
    const Tensor<TypeParam> tail = t.slice(1, 3, 100);
    EXPECT_EQ(tail.shape(), (Shape{4, 2}));
    EXPECT_EQ(tail(2, 1), TypeParam(14));
}

TYPED_TEST(TensorSlicing, SliceWithAStepTakesEveryStepthElement) {
    using Tn = Tensor<TypeParam>;
    const Tn r = Tn::arange(10);
    EXPECT_TENSOR_EQ(r.slice(0, 1, 10, 3), Tn(Shape{3}, std::vector<TypeParam>{1, 4, 7}));
    EXPECT_TENSOR_EQ(r.slice(0, 0, 10, 4), Tn(Shape{3}, std::vector<TypeParam>{0, 4, 8}));
    EXPECT_TENSOR_EQ(r.slice(0, 0, 9, 4), Tn(Shape{3}, std::vector<TypeParam>{0, 4, 8}));
    EXPECT_TENSOR_EQ(r.slice(0, 0, 8, 4), Tn(Shape{2}, std::vector<TypeParam>{0, 4}));
    EXPECT_TENSOR_EQ(r.slice(0, 5, 6, 100), Tn(Shape{1}, std::vector<TypeParam>{5}));
    const Tn t = Iota<TypeParam>({5, 3, 2});
    const Tn s = t.slice(0, 0, 5, 2);
    EXPECT_EQ(s.shape(), (Shape{3, 3, 2}));
    EXPECT_EQ(s(2, 1, 1), t(4, 1, 1));
    EXPECT_EQ(s(1, 2, 0), t(2, 2, 0));
}

TYPED_TEST(TensorSlicing, SliceOfAMiddleAxisWithANegativeAxisIndex) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    const Tensor<TypeParam> s = t.slice(-2, 1, 3);
    EXPECT_EQ(s.shape(), (Shape{2, 2, 4}));
    for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 2; ++j)
            for (Index k = 0; k < 4; ++k) EXPECT_EQ(s(i, j, k), t(i, j + 1, k));
}

TYPED_TEST(TensorSlicing, SliceWithAnEmptyRangeGivesAZeroLengthAxis) {
    const Tensor<TypeParam> t = Iota<TypeParam>({4, 5});
    EXPECT_EQ(t.slice(1, 3, 2).shape(), (Shape{4, 0}));
    EXPECT_EQ(t.slice(1, 5, 10).shape(), (Shape{4, 0}));
    EXPECT_EQ(t.slice(0, -1, -2).shape(), (Shape{0, 5}));
}

TYPED_TEST(TensorSlicing, SliceWithAStepBelowOneThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{4, 5});
    EXPECT_THAT([&] { return t.slice(0, 0, 4, 0); },
                ThrowsMessage<shape_error>(HasSubstr("step must be >= 1")));
    EXPECT_THROW(t.slice(0, 4, 0, -1), shape_error);
}

TYPED_TEST(TensorSlicing, SliceOfAnOutOfRangeAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{4, 5});
    EXPECT_THROW(t.slice(2, 0, 1), shape_error);
    EXPECT_THROW(t.slice(-3, 0, 1), shape_error);
    EXPECT_THROW(Tensor<TypeParam>(Shape{}).slice(0, 0, 1), shape_error);
}

TYPED_TEST(TensorSlicing, NarrowTakesLengthElementsFromStart) {
    const Tensor<TypeParam> t = Iota<TypeParam>({4, 5});
    const Tensor<TypeParam> n = t.narrow(1, 2, 3);
    EXPECT_EQ(n.shape(), (Shape{4, 3}));
    EXPECT_EQ(n(0, 0), TypeParam(2));
    EXPECT_EQ(n(3, 2), TypeParam(19));
    EXPECT_TENSOR_EQ(t.narrow(-2, 1, 2), t.slice(0, 1, 3));
    EXPECT_EQ(t.narrow(0, 4, 0).shape(), (Shape{0, 5}));
}

TYPED_TEST(TensorSlicing, NarrowOutsideTheAxisThrowsShapeError) {
    const Tensor<TypeParam> t(Shape{4, 5});
    EXPECT_THAT([&] { return t.narrow(1, 3, 3); },
                ThrowsMessage<shape_error>(AllOf(HasSubstr("range [3, 6)"), HasSubstr("[4, 5]"))));
    EXPECT_THROW(t.narrow(1, -1, 2), shape_error);
    EXPECT_THROW(t.narrow(1, 0, -1), shape_error);
    EXPECT_THROW(t.narrow(0, 5, 0), shape_error);
    EXPECT_THROW(t.narrow(2, 0, 1), shape_error);
}

TYPED_TEST(TensorSlicing, SelectRemovesTheSelectedAxis) {
    const Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    const Tensor<TypeParam> s = t.select(1, 2);
    EXPECT_EQ(s.shape(), (Shape{2, 4}));
    for (Index i = 0; i < 2; ++i)
        for (Index k = 0; k < 4; ++k) EXPECT_EQ(s(i, k), t(i, 2, k));
    EXPECT_TENSOR_EQ(t.select(0, 1), Iota<TypeParam>({3, 4}, TypeParam(12)));
    const Tensor<TypeParam> last = t.select(-1, 3);
    EXPECT_EQ(last.shape(), (Shape{2, 3}));
    EXPECT_EQ(last(1, 2), TypeParam(23));
}

TYPED_TEST(TensorSlicing, SelectCountsANegativeIndexFromTheEnd) {
    const Tensor<TypeParam> t = Iota<TypeParam>({3, 4});
    EXPECT_TENSOR_EQ(t.select(0, -1), t.select(0, 2));
    EXPECT_TENSOR_EQ(t.select(1, -4), t.select(1, 0));
}

TYPED_TEST(TensorSlicing, SelectOnARankOneTensorGivesARankZeroTensor) {
    const Tensor<TypeParam> s = Tensor<TypeParam>::arange(5).select(0, 3);
    EXPECT_EQ(s.rank(), 0);
    EXPECT_EQ(s(), TypeParam(3));
}

TYPED_TEST(TensorSlicing, SelectOutsideTheAxisThrowsIndexError) {
    const Tensor<TypeParam> t(Shape{3, 4});
    EXPECT_THAT([&] { return t.select(1, 4); },
                ThrowsMessage<index_error>(AllOf(HasSubstr("index 4"), HasSubstr("[3, 4]"))));
    EXPECT_THROW(t.select(1, -5), index_error);
    EXPECT_THROW(t.select(2, 0), shape_error);
}

// ---- Eigen views ---------------------------------------------------------------------------------------

TYPED_TEST(TensorEigenViews, FlatIsAZeroCopyViewOfAllElements) {
    Tensor<TypeParam> t = Iota<TypeParam>({2, 3});
    auto flat = t.flat();
    EXPECT_EQ(flat.data(), t.data());
    EXPECT_EQ(flat.size(), 6);
    EXPECT_EQ(flat(4), TypeParam(4));
    flat(5) = TypeParam(42);
    EXPECT_EQ(t(1, 2), TypeParam(42));
    flat.setConstant(TypeParam(1));
    EXPECT_EQ(t(0, 0), TypeParam(1));
    const Tensor<TypeParam>& c = t;
    EXPECT_EQ(c.flat().data(), t.data());
    EXPECT_EQ(c.flat().sum(), TypeParam(6));
}

TYPED_TEST(TensorEigenViews, AsMatrixFoldsLeadingAxesIntoRows) {
    Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4});
    auto m = t.as_matrix();
    EXPECT_EQ(m.rows(), 6);
    EXPECT_EQ(m.cols(), 4);
    EXPECT_EQ(m.data(), t.data());
    for (Index r = 0; r < 6; ++r)
        for (Index c = 0; c < 4; ++c) EXPECT_EQ(m(r, c), t(r / 3, r % 3, c));
    m(4, 1) = TypeParam(-7);
    EXPECT_EQ(t(1, 1, 1), TypeParam(-7));
    const Tensor<TypeParam>& ct = t;
    EXPECT_EQ(ct.as_matrix().data(), t.data());
    EXPECT_EQ(ct.as_matrix()(4, 1), TypeParam(-7));
}

TYPED_TEST(TensorEigenViews, AsMatrixOfARankOneTensorIsASingleRow) {
    Tensor<TypeParam> t = Tensor<TypeParam>::arange(5);
    auto m = t.as_matrix();
    EXPECT_EQ(m.rows(), 1);
    EXPECT_EQ(m.cols(), 5);
    EXPECT_EQ(m(0, 3), TypeParam(3));
}

TYPED_TEST(TensorEigenViews, AsMatrixOfARankZeroTensorThrowsShapeError) {
    Tensor<TypeParam> t(Shape{});
    EXPECT_THAT([&] { return t.as_matrix(); }, ThrowsMessage<shape_error>(HasSubstr("expected rank >= 1")));
    const Tensor<TypeParam>& c = t;
    EXPECT_THROW(c.as_matrix(), shape_error);
}

TYPED_TEST(TensorEigenViews, NumMatricesCountsThePositionsOfTheLeadingAxes) {
    EXPECT_EQ(Tensor<TypeParam>(Shape{2, 3, 4, 5}).num_matrices(), 6);
    EXPECT_EQ(Tensor<TypeParam>(Shape{4, 5}).num_matrices(), 1);
    EXPECT_EQ(Tensor<TypeParam>(Shape{2, 0, 4, 5}).num_matrices(), 0);
    EXPECT_THROW(Tensor<TypeParam>(Shape{5}).num_matrices(), shape_error);
    EXPECT_THROW(Tensor<TypeParam>(Shape{}).num_matrices(), shape_error);
}

TYPED_TEST(TensorEigenViews, MatrixIsARowMajorZeroCopyViewOfTheTrailingAxes) {
    Tensor<TypeParam> t = Iota<TypeParam>({2, 3, 4, 5});
    for (Index i = 0; i < t.num_matrices(); ++i) {
        auto m = t.matrix(i);
        ASSERT_EQ(m.rows(), 4);
        ASSERT_EQ(m.cols(), 5);
        EXPECT_EQ(m.data(), t.data() + i * 20);
        for (Index r = 0; r < 4; ++r)
            for (Index c = 0; c < 5; ++c) EXPECT_EQ(m(r, c), t(i / 3, i % 3, r, c));
    }
    t.matrix(4)(2, 3) = TypeParam(-1);
    EXPECT_EQ(t(1, 1, 2, 3), TypeParam(-1));
    const Tensor<TypeParam>& c = t;
    EXPECT_EQ(c.matrix(4)(2, 3), TypeParam(-1));
    EXPECT_EQ(c.matrix(5).data(), t.data() + 100);
}

TYPED_TEST(TensorEigenViews, MatrixOfARankTwoTensorIsTheWholeTensor) {
    Tensor<TypeParam> t = Iota<TypeParam>({3, 2});
    auto m = t.matrix(0);
    EXPECT_EQ(m.data(), t.data());
    EXPECT_EQ(m(2, 1), TypeParam(5));
}

TYPED_TEST(TensorEigenViews, MatrixIndexOutsideTheBatchThrowsIndexError) {
    Tensor<TypeParam> t(Shape{2, 3, 4, 5});
    EXPECT_THAT([&] { return t.matrix(6); },
                ThrowsMessage<index_error>(AllOf(HasSubstr("index 6"), HasSubstr("6 matrices"))));
    EXPECT_THROW(t.matrix(-1), index_error);
    const Tensor<TypeParam>& c = t;
    EXPECT_THROW(c.matrix(6), index_error);
}

TYPED_TEST(TensorEigenViews, MatrixOfATensorOfRankBelowTwoThrowsShapeError) {
    Tensor<TypeParam> vector(Shape{5});
    EXPECT_THROW(vector.matrix(0), shape_error);
    Tensor<TypeParam> scalar(Shape{});
    EXPECT_THROW(scalar.matrix(0), shape_error);
    const Tensor<TypeParam>& c = vector;
    EXPECT_THROW(c.matrix(0), shape_error);
}

}  // namespace
}  // namespace vit3d
