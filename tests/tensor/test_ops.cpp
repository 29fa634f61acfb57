// Unit tests for the operations on whole tensors: concat / stack, broadcasting arithmetic, comparison
// operators, matmul, compare / allclose and printing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
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

template <class T>
Tensor<T> Make(Shape shape, std::vector<T> values) {
    return Tensor<T>(std::move(shape), values);
}

template <class T>
std::string ToString(const Tensor<T>& t) {
    std::ostringstream out;
    out << t;
    return out.str();
}

std::vector<Index> Unravel(Index pos, const Shape& shape) {
    std::vector<Index> index(shape.size());
    for (std::size_t i = shape.size(); i-- > 0;) {
        index[i] = pos % shape[i];
        pos /= shape[i];
    }
    return index;
}

// Offset in a row-major tensor of `shape` of the element that `index` (an index into a possibly larger
// broadcast shape, aligned at the last axis) reads: axes of length 1 always read position 0.
Index BroadcastOffset(const std::vector<Index>& index, const Shape& shape) {
    const std::size_t skip = index.size() - shape.size();
    Index offset = 0;
    for (std::size_t i = 0; i < shape.size(); ++i)
        offset = offset * shape[i] + (shape[i] == 1 ? 0 : index[skip + i]);
    return offset;
}

// Batched matrix product by the textbook triple loop (in double), batch axes broadcast by hand.
template <class T>
Tensor<T> NaiveMatmul(const Tensor<T>& a, const Tensor<T>& b, const Shape& out_shape) {
    const Index m = a.shape()[a.shape().size() - 2], k = a.shape().back(), n = b.shape().back();
    const Shape a_batch(a.shape().begin(), a.shape().end() - 2),
        b_batch(b.shape().begin(), b.shape().end() - 2);
    const Shape out_batch(out_shape.begin(), out_shape.end() - 2);
    Index batches = 1;
    for (Index len : out_batch) batches *= len;
    Tensor<T> out = Tensor<T>::empty(out_shape);
    for (Index batch = 0; batch < batches; ++batch) {
        const std::vector<Index> index = Unravel(batch, out_batch);
        const T* pa = a.data() + BroadcastOffset(index, a_batch) * m * k;
        const T* pb = b.data() + BroadcastOffset(index, b_batch) * k * n;
        T* po = out.data() + batch * m * n;
        for (Index i = 0; i < m; ++i)
            for (Index j = 0; j < n; ++j) {
                double sum = 0.0;
                for (Index p = 0; p < k; ++p) sum += double(pa[i * k + p]) * double(pb[p * n + j]);
                po[i * n + j] = static_cast<T>(sum);
            }
    }
    return out;
}

template <class T>
constexpr double Tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
class TensorConcat : public ::testing::Test {};
TYPED_TEST_SUITE(TensorConcat, FloatTypes, TypeNames);

template <class T>
class TensorArithmetic : public ::testing::Test {};
TYPED_TEST_SUITE(TensorArithmetic, FloatTypes, TypeNames);

template <class T>
class TensorMatmul : public ::testing::Test {};
TYPED_TEST_SUITE(TensorMatmul, FloatTypes, TypeNames);

template <class T>
class TensorCompare : public ::testing::Test {};
TYPED_TEST_SUITE(TensorCompare, FloatTypes, TypeNames);

template <class T>
class TensorPrint : public ::testing::Test {};
TYPED_TEST_SUITE(TensorPrint, FloatTypes, TypeNames);

// ---- concat --------------------------------------------------------------------------------------------

TYPED_TEST(TensorConcat, ConcatAlongTheFirstAxisAppendsRows) {
    const auto a = Iota<TypeParam>({2, 3});
    const auto b = Iota<TypeParam>({1, 3}, TypeParam(100));
    const Tensor<TypeParam> c = concat<TypeParam>({a, b}, 0);
    EXPECT_TENSOR_EQ(c, Make<TypeParam>({3, 3}, {0, 1, 2, 3, 4, 5, 100, 101, 102}));
}

TYPED_TEST(TensorConcat, ConcatAlongTheLastAxisGivenAsMinusOneAppendsColumns) {
    const auto a = Iota<TypeParam>({2, 2});
    const auto b = Iota<TypeParam>({2, 3}, TypeParam(10));
    EXPECT_TENSOR_EQ(concat<TypeParam>({a, b}, -1),
                     Make<TypeParam>({2, 5}, {0, 1, 10, 11, 12, 2, 3, 13, 14, 15}));
}

TYPED_TEST(TensorConcat, ConcatAlongAMiddleAxisInterleavesTheParts) {
    const auto a = Iota<TypeParam>({2, 1, 3});
    const auto b = Iota<TypeParam>({2, 2, 3}, TypeParam(10));
    const auto c = Iota<TypeParam>({2, 1, 3}, TypeParam(50));
    const Tensor<TypeParam> out = concat<TypeParam>({a, b, c}, 1);
    ASSERT_EQ(out.shape(), (Shape{2, 4, 3}));
    for (Index i = 0; i < 2; ++i)
        for (Index k = 0; k < 3; ++k) {
            EXPECT_EQ(out(i, 0, k), a(i, 0, k));
            EXPECT_EQ(out(i, 1, k), b(i, 0, k));
            EXPECT_EQ(out(i, 2, k), b(i, 1, k));
            EXPECT_EQ(out(i, 3, k), c(i, 0, k));
        }
    EXPECT_TENSOR_EQ(concat<TypeParam>({a, b, c}, -2), out);
}

TYPED_TEST(TensorConcat, ConcatOfASingleTensorIsACopy) {
    const auto a = Iota<TypeParam>({3, 2});
    const Tensor<TypeParam> c = concat<TypeParam>({a}, 1);
    EXPECT_NE(c.data(), a.data());
    EXPECT_TENSOR_EQ(c, a);
}

TYPED_TEST(TensorConcat, ConcatSkipsPartsWithZeroLengthAlongTheAxis) {
    const auto a = Iota<TypeParam>({2, 3});
    const Tensor<TypeParam> empty(Shape{2, 0});
    EXPECT_TENSOR_EQ(concat<TypeParam>({empty, a, empty}, 1), a);
}

// The output has no elements (data() is null), so advancing its data pointer to the second part's
// position is undefined behaviour; Clang's UBSan reports it ("applying non-zero offset to null pointer").
TYPED_TEST(TensorConcat, ConcatOfTensorsWithoutElementsGivesTheSummedShape) {
    const Tensor<TypeParam> a(Shape{0, 3}), b(Shape{0, 2});
    EXPECT_EQ(concat<TypeParam>({a, b}, 1).shape(), (Shape{0, 5}));
    EXPECT_EQ(concat<TypeParam>({a, a}, 0).shape(), (Shape{0, 3}));
}

TYPED_TEST(TensorConcat, ConcatOfMismatchedShapesThrowsNamingTheOffendingTensor) {
    const Tensor<TypeParam> a(Shape{2, 3}), b(Shape{3, 3});
    EXPECT_THAT(
        [&] {
            return concat<TypeParam>({a, a, b}, 1);
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("tensor 2"), HasSubstr("[3, 3]"), HasSubstr("[2, 3]"))));
    const Tensor<TypeParam> rank3(Shape{2, 3, 1});
    EXPECT_THAT(
        [&] {
            return concat<TypeParam>({a, rank3}, 0);
        },
        ThrowsMessage<shape_error>(HasSubstr("tensor 1")));
}

TYPED_TEST(TensorConcat, ConcatOfAnEmptyListThrowsShapeError) {
    EXPECT_THAT([] { return concat<TypeParam>({}, 0); },
                ThrowsMessage<shape_error>(HasSubstr("at least one")));
}

TYPED_TEST(TensorConcat, ConcatAlongAnOutOfRangeAxisThrowsShapeError) {
    const Tensor<TypeParam> a(Shape{2, 3});
    EXPECT_THROW(concat<TypeParam>({a, a}, 2), shape_error);
    EXPECT_THROW(concat<TypeParam>({a, a}, -3), shape_error);
    const Tensor<TypeParam> scalar(Shape{});
    EXPECT_THROW(concat<TypeParam>({scalar, scalar}, 0), shape_error);
}

// ---- stack ---------------------------------------------------------------------------------------------

TYPED_TEST(TensorConcat, StackAtAxisZeroAddsALeadingAxis) {
    const auto a = Iota<TypeParam>({2, 3});
    const auto b = Iota<TypeParam>({2, 3}, TypeParam(6));
    const Tensor<TypeParam> s = stack<TypeParam>({a, b});
    EXPECT_TENSOR_EQ(s, Iota<TypeParam>({2, 2, 3}));
    EXPECT_TENSOR_EQ(s.select(0, 1), b);
}

TYPED_TEST(TensorConcat, StackInTheMiddleInterleavesTheParts) {
    const auto a = Iota<TypeParam>({2, 3});
    const auto b = Iota<TypeParam>({2, 3}, TypeParam(10));
    const auto c = Iota<TypeParam>({2, 3}, TypeParam(20));
    const Tensor<TypeParam> s = stack<TypeParam>({a, b, c}, 1);
    ASSERT_EQ(s.shape(), (Shape{2, 3, 3}));
    for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 3; ++j) {
            EXPECT_EQ(s(i, 0, j), a(i, j));
            EXPECT_EQ(s(i, 1, j), b(i, j));
            EXPECT_EQ(s(i, 2, j), c(i, j));
        }
}

TYPED_TEST(TensorConcat, StackAtTheEndAddsATrailingAxis) {
    const auto a = Iota<TypeParam>({2, 3});
    const auto b = Iota<TypeParam>({2, 3}, TypeParam(10));
    const Tensor<TypeParam> s = stack<TypeParam>({a, b}, -1);
    ASSERT_EQ(s.shape(), (Shape{2, 3, 2}));
    EXPECT_EQ(s(1, 2, 0), TypeParam(5));
    EXPECT_EQ(s(1, 2, 1), TypeParam(15));
    EXPECT_EQ(s(0, 1, 1), TypeParam(11));
    EXPECT_TENSOR_EQ(stack<TypeParam>({a, b}, 2), s);
}

TYPED_TEST(TensorConcat, StackOfRankZeroTensorsGivesAVector) {
    const auto one = Tensor<TypeParam>::full({}, TypeParam(1));
    const auto two = Tensor<TypeParam>::full({}, TypeParam(2));
    EXPECT_TENSOR_EQ(stack<TypeParam>({one, two, one}), Make<TypeParam>({3}, {1, 2, 1}));
}

TYPED_TEST(TensorConcat, StackOfMismatchedShapesThrowsNamingTheOffendingTensor) {
    const Tensor<TypeParam> a(Shape{2, 3}), b(Shape{3, 2});
    EXPECT_THAT(
        [&] {
            return stack<TypeParam>({a, b}, 0);
        },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("tensor 1"), HasSubstr("[3, 2]"), HasSubstr("[2, 3]"))));
    EXPECT_THROW(stack<TypeParam>({a, a, b}, 2), shape_error);
}

TYPED_TEST(TensorConcat, StackOfAnEmptyListOrAnOutOfRangeAxisThrowsShapeError) {
    EXPECT_THROW(stack<TypeParam>({}, 0), shape_error);
    const Tensor<TypeParam> a(Shape{2, 3});
    EXPECT_THROW(stack<TypeParam>({a, a}, 3), shape_error);
    EXPECT_THROW(stack<TypeParam>({a, a}, -4), shape_error);
}

// ---- elementwise arithmetic ----------------------------------------------------------------------------

TYPED_TEST(TensorArithmetic, BinaryOperatorsOnEqualShapesWorkElementwise) {
    const auto a = Make<TypeParam>({2, 2}, {1, 2, 3, 4});
    const auto b = Make<TypeParam>({2, 2}, {8, 4, 2, 1});
    EXPECT_TENSOR_EQ(a + b, Make<TypeParam>({2, 2}, {9, 6, 5, 5}));
    EXPECT_TENSOR_EQ(a - b, Make<TypeParam>({2, 2}, {-7, -2, 1, 3}));
    EXPECT_TENSOR_EQ(a * b, Make<TypeParam>({2, 2}, {8, 8, 6, 4}));
    EXPECT_TENSOR_EQ(b / a, Make<TypeParam>({2, 2}, {8, 2, TypeParam(2) / TypeParam(3), 0.25}));
}

TYPED_TEST(TensorArithmetic, AddingAVectorBroadcastsItOverTokens) {
    const auto x = Iota<TypeParam>({2, 3, 4});                     // [B, N, D]
    const auto bias = Make<TypeParam>({4}, {100, 200, 300, 400});  // [D]
    const Tensor<TypeParam> y = x + bias;
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    for (Index b = 0; b < 2; ++b)
        for (Index n = 0; n < 3; ++n)
            for (Index d = 0; d < 4; ++d) EXPECT_EQ(y(b, n, d), x(b, n, d) + bias(d));
    EXPECT_TENSOR_EQ(bias + x, y);
}

TYPED_TEST(TensorArithmetic, MultiplyingUnitAxesBroadcastsBothOperands) {
    const auto a = Iota<TypeParam>({2, 1, 4}, TypeParam(1));     // [B, 1, D]
    const auto b = Make<TypeParam>({1, 3, 1}, {10, 100, 1000});  // [1, N, 1]
    const Tensor<TypeParam> y = a * b;
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    for (Index i = 0; i < 2; ++i)
        for (Index n = 0; n < 3; ++n)
            for (Index d = 0; d < 4; ++d) EXPECT_EQ(y(i, n, d), a(i, 0, d) * b(0, n, 0));
}

TYPED_TEST(TensorArithmetic, NonCommutativeOperatorsKeepTheOperandOrderWhenBroadcasting) {
    const auto row = Make<TypeParam>({3}, {1, 2, 4});
    const auto m = Make<TypeParam>({2, 3}, {8, 8, 8, 16, 16, 16});
    EXPECT_TENSOR_EQ(row - m, Make<TypeParam>({2, 3}, {-7, -6, -4, -15, -14, -12}));
    EXPECT_TENSOR_EQ(m - row, Make<TypeParam>({2, 3}, {7, 6, 4, 15, 14, 12}));
    EXPECT_TENSOR_EQ(m / row, Make<TypeParam>({2, 3}, {8, 4, 2, 16, 8, 4}));
    EXPECT_TENSOR_EQ(row / m, Make<TypeParam>({2, 3}, {0.125, 0.25, 0.5, 0.0625, 0.125, 0.25}));
}

// Each combination of inner strides (1 or 0 for either operand) runs its own loop.
TYPED_TEST(TensorArithmetic, BroadcastingWorksForEveryCombinationOfInnerStrides) {
    const auto col = Make<TypeParam>({3, 1}, {10, 20, 30});
    const auto row = Make<TypeParam>({1, 4}, {1, 2, 3, 4});
    const auto full = Iota<TypeParam>({3, 4});
    EXPECT_TENSOR_EQ(col + row, Make<TypeParam>({3, 4}, {11, 12, 13, 14, 21, 22, 23, 24, 31, 32, 33, 34}));
    EXPECT_TENSOR_EQ(full - col,
                     Make<TypeParam>({3, 4}, {-10, -9, -8, -7, -16, -15, -14, -13, -22, -21, -20, -19}));
    EXPECT_TENSOR_EQ(col - full, -(full - col));
    const auto tall = Iota<TypeParam>({2, 3, 1});
    EXPECT_TENSOR_EQ(tall * Make<TypeParam>({1, 1}, {3}), Make<TypeParam>({2, 3, 1}, {0, 3, 6, 9, 12, 15}));
}

TYPED_TEST(TensorArithmetic, RankZeroOperandsBroadcastAsScalars) {
    const auto two = Tensor<TypeParam>::full({}, TypeParam(2));
    const auto x = Iota<TypeParam>({2, 3});
    EXPECT_TENSOR_EQ(two * x, Make<TypeParam>({2, 3}, {0, 2, 4, 6, 8, 10}));
    EXPECT_TENSOR_EQ(x / two, Make<TypeParam>({2, 3}, {0, 0.5, 1, 1.5, 2, 2.5}));
    const Tensor<TypeParam> sum = two + two;
    EXPECT_EQ(sum.rank(), 0);
    EXPECT_EQ(sum(), TypeParam(4));
    EXPECT_EQ((two + Make<TypeParam>({1}, {5})).shape(), (Shape{1}));
}

TYPED_TEST(TensorArithmetic, BroadcastingAgainstAZeroLengthAxisGivesAnEmptyResult) {
    EXPECT_EQ((Tensor<TypeParam>(Shape{0, 3}) + Tensor<TypeParam>(Shape{3})).shape(), (Shape{0, 3}));
    EXPECT_EQ((Tensor<TypeParam>(Shape{2, 0}) * Tensor<TypeParam>(Shape{2, 1})).shape(), (Shape{2, 0}));
}

TYPED_TEST(TensorArithmetic, IncompatibleShapesThrowShapeErrorNamingBothShapes) {
    const Tensor<TypeParam> a(Shape{2, 3}), b(Shape{4});
    EXPECT_THAT([&] { return a + b; },
                ThrowsMessage<shape_error>(
                    AllOf(HasSubstr("vit3d::operator+"), HasSubstr("[2, 3]"), HasSubstr("[4]"))));
    EXPECT_THAT([&] { return b - a; },
                ThrowsMessage<shape_error>(AllOf(HasSubstr("[4]"), HasSubstr("[2, 3]"))));
    EXPECT_THROW(a * b, shape_error);
    EXPECT_THROW(a / b, shape_error);
    EXPECT_THROW(a + Tensor<TypeParam>(Shape{3, 3}), shape_error);
}

TYPED_TEST(TensorArithmetic, CompoundAssignmentAcceptsABroadcastableRightOperand) {
    auto x = Iota<TypeParam>({2, 3});
    x += Make<TypeParam>({3}, {10, 20, 30});
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 3}, {10, 21, 32, 13, 24, 35}));
    x -= Make<TypeParam>({2, 1}, {10, 20});
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 3}, {0, 11, 22, -7, 4, 15}));
    x *= Tensor<TypeParam>::full({}, TypeParam(2));
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 3}, {0, 22, 44, -14, 8, 30}));
    x /= Make<TypeParam>({1, 3}, {1, 2, 4});
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 3}, {0, 11, 11, -14, 4, 7.5}));
    x += x;
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 3}, {0, 22, 22, -28, 8, 15}));
}

// In place means in the left operand's own buffer (the residual adds of every encoder block rely on it).
TYPED_TEST(TensorArithmetic, CompoundAssignmentWritesIntoTheLeftOperandsBuffer) {
    auto x = Iota<TypeParam>({2, 2, 3});
    const TypeParam* before = x.data();
    x += Iota<TypeParam>({2, 2, 3});
    x -= Make<TypeParam>({2, 1, 3}, {1, 1, 1, 2, 2, 2});
    EXPECT_EQ(x.data(), before);
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 2, 3}, {-1, 1, 3, 5, 7, 9, 10, 12, 14, 16, 18, 20}));
    Tensor<TypeParam> empty(Shape{0, 3});
    empty += Make<TypeParam>({3}, {1, 2, 3});
    EXPECT_EQ(empty.shape(), (Shape{0, 3}));
}

TYPED_TEST(TensorArithmetic, CompoundAssignmentThatWouldChangeTheLeftShapeThrowsShapeError) {
    auto x = Iota<TypeParam>({3});
    const Tensor<TypeParam> wider(Shape{2, 3});
    EXPECT_THAT([&] { x += wider; },
                ThrowsMessage<shape_error>(AllOf(HasSubstr("result shape [2, 3]"), HasSubstr("[3]"))));
    EXPECT_THROW(x -= wider, shape_error);
    EXPECT_THROW(x *= Tensor<TypeParam>(Shape{4, 1}), shape_error);
    EXPECT_THROW(x /= Tensor<TypeParam>(Shape{2}), shape_error);
    EXPECT_TENSOR_EQ(x, Iota<TypeParam>({3}));  // unchanged by the failed operations
}

TYPED_TEST(TensorArithmetic, ScalarOperatorsApplyToEveryElementOnEitherSide) {
    const auto x = Make<TypeParam>({2, 2}, {1, 2, 4, 8});
    const TypeParam s(2);
    EXPECT_TENSOR_EQ(x + s, Make<TypeParam>({2, 2}, {3, 4, 6, 10}));
    EXPECT_TENSOR_EQ(s + x, Make<TypeParam>({2, 2}, {3, 4, 6, 10}));
    EXPECT_TENSOR_EQ(x - s, Make<TypeParam>({2, 2}, {-1, 0, 2, 6}));
    EXPECT_TENSOR_EQ(s - x, Make<TypeParam>({2, 2}, {1, 0, -2, -6}));
    EXPECT_TENSOR_EQ(x * s, Make<TypeParam>({2, 2}, {2, 4, 8, 16}));
    EXPECT_TENSOR_EQ(s * x, Make<TypeParam>({2, 2}, {2, 4, 8, 16}));
    EXPECT_TENSOR_EQ(x / s, Make<TypeParam>({2, 2}, {0.5, 1, 2, 4}));
    EXPECT_TENSOR_EQ(s / x, Make<TypeParam>({2, 2}, {2, 1, 0.5, 0.25}));
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({2, 2}, {1, 2, 4, 8}));  // operands are not modified
}

TYPED_TEST(TensorArithmetic, CompoundScalarOperatorsModifyInPlace) {
    auto x = Make<TypeParam>({3}, {1, 2, 4});
    const TypeParam* buffer = x.data();
    x += TypeParam(1);
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({3}, {2, 3, 5}));
    x -= TypeParam(3);
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({3}, {-1, 0, 2}));
    x *= TypeParam(4);
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({3}, {-4, 0, 8}));
    x /= TypeParam(8);
    EXPECT_TENSOR_EQ(x, Make<TypeParam>({3}, {-0.5, 0, 1}));
    EXPECT_EQ(x.data(), buffer);
}

TYPED_TEST(TensorArithmetic, UnaryMinusNegatesEveryElement) {
    const auto x = Make<TypeParam>({2, 2}, {1, -2, 0, 3.5});
    EXPECT_TENSOR_EQ(-x, Make<TypeParam>({2, 2}, {-1, 2, 0, -3.5}));
    EXPECT_EQ((-x).shape(), (Shape{2, 2}));
}

TYPED_TEST(TensorArithmetic, EqualityComparesShapesAndEveryElementExactly) {
    const auto a = Iota<TypeParam>({2, 3});
    EXPECT_TRUE(a == Iota<TypeParam>({2, 3}));
    EXPECT_FALSE(a != Iota<TypeParam>({2, 3}));
    auto b = a;
    b(1, 2) = TypeParam(5.0001);
    EXPECT_FALSE(a == b);
    EXPECT_TRUE(a != b);
    EXPECT_FALSE(a == Iota<TypeParam>({3, 2}));  // same elements, different shape
    EXPECT_TRUE(a != a.reshape({6}));
    EXPECT_TRUE(Tensor<TypeParam>(Shape{0, 2}) == Tensor<TypeParam>(Shape{0, 2}));
    EXPECT_FALSE(Tensor<TypeParam>(Shape{0, 2}) == Tensor<TypeParam>(Shape{2, 0}));
}

TYPED_TEST(TensorArithmetic, EqualityTreatsNanAsUnequalAndSignedZerosAsEqual) {
    const TypeParam nan = std::numeric_limits<TypeParam>::quiet_NaN();
    const auto with_nan = Make<TypeParam>({2}, {1, nan});
    EXPECT_FALSE(with_nan == with_nan);
    EXPECT_TRUE(Make<TypeParam>({1}, {0.0}) == Make<TypeParam>({1}, {-0.0}));
}

TEST(TensorArithmeticInteger, IntegerTensorsUseIntegerArithmetic) {
    const Tensor<int> a(Shape{3}, std::vector<int>{7, -7, 9});
    const Tensor<int> b(Shape{3}, std::vector<int>{2, 2, 3});
    EXPECT_TENSOR_EQ(a / b, Tensor<int>(Shape{3}, std::vector<int>{3, -3, 3}));
    EXPECT_TENSOR_EQ(a * 2, Tensor<int>(Shape{3}, std::vector<int>{14, -14, 18}));
}

// ---- matmul --------------------------------------------------------------------------------------------

TYPED_TEST(TensorMatmul, MatmulOfTwoMatricesMatchesAWorkedExample) {
    const auto a = Make<TypeParam>({2, 2}, {1, 2, 3, 4});
    const auto b = Make<TypeParam>({2, 2}, {5, 6, 7, 8});
    EXPECT_TENSOR_EQ(matmul(a, b), Make<TypeParam>({2, 2}, {19, 22, 43, 50}));
    const auto row = Make<TypeParam>({1, 3}, {1, 2, 3});
    const auto col = Make<TypeParam>({3, 1}, {4, 5, 6});
    EXPECT_TENSOR_EQ(matmul(row, col), Make<TypeParam>({1, 1}, {32}));
    EXPECT_TENSOR_EQ(matmul(col, row), Make<TypeParam>({3, 3}, {4, 8, 12, 5, 10, 15, 6, 12, 18}));
}

TYPED_TEST(TensorMatmul, MatmulOfTwoMatricesMatchesATripleLoop) {
    const auto a = Tensor<TypeParam>::randn({33, 65}, 1);
    const auto b = Tensor<TypeParam>::randn({65, 17}, 2);
    const Tensor<TypeParam> c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{33, 17}));
    EXPECT_TENSOR_CLOSE(c, NaiveMatmul(a, b, {33, 17}), Tolerance<TypeParam>(), Tolerance<TypeParam>() * 10);
}

TYPED_TEST(TensorMatmul, BatchedMatmulMultipliesMatchingMatrices) {
    const auto a = Tensor<TypeParam>::randn({3, 2, 4}, 3);
    const auto b = Tensor<TypeParam>::randn({3, 4, 5}, 4);
    const Tensor<TypeParam> c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{3, 2, 5}));
    EXPECT_TENSOR_CLOSE(c, NaiveMatmul(a, b, {3, 2, 5}), Tolerance<TypeParam>(), Tolerance<TypeParam>());
}

TYPED_TEST(TensorMatmul, MatmulBroadcastsTheBatchAxes) {
    const auto a = Tensor<TypeParam>::randn({2, 1, 4, 3}, 5);  // [2, 1, M, K]
    const auto b = Tensor<TypeParam>::randn({3, 3, 6}, 6);     // [3, K, N]
    const Tensor<TypeParam> c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
    EXPECT_TENSOR_CLOSE(c, NaiveMatmul(a, b, {2, 3, 4, 6}), Tolerance<TypeParam>(), Tolerance<TypeParam>());
    // Batch [1, 2] of the result is a[1, 0] x b[2].
    const Tensor<TypeParam> one = matmul(a.select(0, 1).select(0, 0), b.select(0, 2));
    EXPECT_TENSOR_CLOSE(c.select(0, 1).select(0, 2), one, Tolerance<TypeParam>(), Tolerance<TypeParam>());
}

TYPED_TEST(TensorMatmul, MatmulOfAMatrixWithABatchSharesTheMatrix) {
    const auto a = Tensor<TypeParam>::randn({4, 3}, 7);
    const auto b = Tensor<TypeParam>::randn({5, 3, 2}, 8);
    const Tensor<TypeParam> c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{5, 4, 2}));
    EXPECT_TENSOR_CLOSE(c, NaiveMatmul(a, b, {5, 4, 2}), Tolerance<TypeParam>(), Tolerance<TypeParam>());
    const Tensor<TypeParam> d = matmul(b.transpose(-1, -2), a.transpose(0, 1));  // [5, 2, 3] x [3, 4]
    ASSERT_EQ(d.shape(), (Shape{5, 2, 4}));
    EXPECT_TENSOR_CLOSE(d, c.transpose(-1, -2), Tolerance<TypeParam>(), Tolerance<TypeParam>());
}

TYPED_TEST(TensorMatmul, MatmulWithAnEmptyInnerAxisGivesZeros) {
    const Tensor<TypeParam> a(Shape{2, 3, 0}), b(Shape{2, 0, 4});
    EXPECT_TENSOR_EQ(matmul(a, b), Tensor<TypeParam>::zeros({2, 3, 4}));
    EXPECT_TENSOR_EQ(matmul(Tensor<TypeParam>(Shape{1, 0}), Tensor<TypeParam>(Shape{0, 1})),
                     Tensor<TypeParam>::zeros({1, 1}));
}

TYPED_TEST(TensorMatmul, MatmulWithAnEmptyOuterAxisGivesAnEmptyResult) {
    EXPECT_EQ(matmul(Tensor<TypeParam>(Shape{0, 3}), Tensor<TypeParam>(Shape{3, 4})).shape(), (Shape{0, 4}));
    EXPECT_EQ(matmul(Tensor<TypeParam>(Shape{2, 3}), Tensor<TypeParam>(Shape{3, 0})).shape(), (Shape{2, 0}));
    EXPECT_EQ(matmul(Tensor<TypeParam>(Shape{0, 2, 3}), Tensor<TypeParam>(Shape{3, 4})).shape(),
              (Shape{0, 2, 4}));
}

TYPED_TEST(TensorMatmul, MatmulOfMismatchedInnerLengthsThrowsShapeErrorNamingBothShapes) {
    const Tensor<TypeParam> a(Shape{2, 3}), b(Shape{4, 5});
    EXPECT_THAT([&] { return matmul(a, b); }, ThrowsMessage<shape_error>(HasSubstr("got [2, 3] x [4, 5]")));
}

TYPED_TEST(TensorMatmul, MatmulOfARankOneOperandThrowsShapeError) {
    const Tensor<TypeParam> v(Shape{3}), m(Shape{3, 3});
    EXPECT_THROW(matmul(v, m), shape_error);
    EXPECT_THROW(matmul(m, v), shape_error);
    EXPECT_THROW(matmul(Tensor<TypeParam>(Shape{}), m), shape_error);
}

TYPED_TEST(TensorMatmul, MatmulOfIncompatibleBatchesThrowsShapeError) {
    const Tensor<TypeParam> a(Shape{2, 3, 4}), b(Shape{3, 4, 5});
    EXPECT_THAT(
        [&] { return matmul(a, b); },
        ThrowsMessage<shape_error>(AllOf(HasSubstr("vit3d::matmul"), HasSubstr("[2]"), HasSubstr("[3]"))));
}

// ---- compare / allclose --------------------------------------------------------------------------------

TYPED_TEST(TensorCompare, IdenticalTensorsCompareClose) {
    const auto a = Iota<TypeParam>({2, 3});
    const Comparison c = compare(a, a);
    EXPECT_TRUE(c.shapes_match);
    EXPECT_TRUE(c.close);
    EXPECT_EQ(c.mismatches, 0);
    EXPECT_EQ(c.max_abs_error, 0.0);
    EXPECT_EQ(c.max_rel_error, 0.0);
    EXPECT_TRUE(allclose(a, a));
}

TYPED_TEST(TensorCompare, ToleranceIsAtolPlusRtolTimesTheExpectedMagnitudeInclusive) {
    using Tn = Tensor<TypeParam>;
    const Tn expected = Make<TypeParam>({1}, {8});
    // tolerance = 1 + 0.25 * 8 = 3
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {11}), expected, 0.25, 1.0));
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {5}), expected, 0.25, 1.0));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {11.5}), expected, 0.25, 1.0));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {4.5}), expected, 0.25, 1.0));
    // atol alone, rtol alone
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {8.5}), expected, 0.0, 0.5));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {8.75}), expected, 0.0, 0.5));
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {10}), expected, 0.25, 0.0));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {10.5}), expected, 0.25, 0.0));
}

TYPED_TEST(TensorCompare, RelativeToleranceScalesWithTheExpectedValueOnly) {
    const auto four = Make<TypeParam>({1}, {4}), eight = Make<TypeParam>({1}, {8});
    EXPECT_TRUE(allclose(four, eight, 0.5, 0.0));   // |4 - 8| <= 0.5 * 8
    EXPECT_FALSE(allclose(eight, four, 0.5, 0.0));  // |8 - 4| >  0.5 * 4
}

TYPED_TEST(TensorCompare, DefaultTolerancesAreRtolOneEMinusFiveAndAtolOneEMinusEight) {
    const auto one = Make<TypeParam>({1}, {1});
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {1 + 5e-6}), one));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {1 + 5e-5}), one));
    const auto zero = Make<TypeParam>({1}, {0});
    EXPECT_TRUE(allclose(Make<TypeParam>({1}, {5e-9}), zero));
    EXPECT_FALSE(allclose(Make<TypeParam>({1}, {1e-7}), zero));
}

TYPED_TEST(TensorCompare, NanIsNeverCloseUnlessBothAreNanAndEqualNanIsSet) {
    const TypeParam nan = std::numeric_limits<TypeParam>::quiet_NaN();
    const auto with_nan = Make<TypeParam>({3}, {1, nan, 3});
    EXPECT_FALSE(allclose(with_nan, with_nan));
    EXPECT_TRUE(allclose(with_nan, with_nan, 1e-5, 1e-8, true));
    const auto finite = Make<TypeParam>({3}, {1, 2, 3});
    EXPECT_FALSE(allclose(with_nan, finite, 1e-5, 1e-8, true));
    EXPECT_FALSE(allclose(finite, with_nan, 1e-5, 1e-8, true));
    EXPECT_FALSE(allclose(finite, with_nan, 1e30, 1e30, true));

    const Comparison c = compare(with_nan, finite);
    EXPECT_FALSE(c.close);
    EXPECT_EQ(c.mismatches, 1);
    EXPECT_EQ(c.worst_index, 1);
    EXPECT_TRUE(std::isnan(c.worst_actual));
    EXPECT_EQ(c.worst_expected, 2.0);
    EXPECT_TRUE(std::isinf(c.max_abs_error));
}

TYPED_TEST(TensorCompare, InfinitiesMustMatchExactly) {
    const TypeParam inf = std::numeric_limits<TypeParam>::infinity();
    const auto pos = Make<TypeParam>({2}, {1, inf});
    EXPECT_TRUE(allclose(pos, pos));
    EXPECT_FALSE(allclose(Make<TypeParam>({2}, {1, -inf}), pos));
    EXPECT_FALSE(allclose(Make<TypeParam>({2}, {1, 1e30}), pos, 1e10, 1e30));
    EXPECT_FALSE(allclose(pos, Make<TypeParam>({2}, {1, 1e30}), 1e10, 1e30));
    const Comparison c = compare(Make<TypeParam>({2}, {1, -inf}), pos);
    EXPECT_EQ(c.mismatches, 1);
    EXPECT_EQ(c.worst_index, 1);
    EXPECT_TRUE(std::isinf(c.max_abs_error));
}

TYPED_TEST(TensorCompare, DifferentShapesAreNeverClose) {
    const auto a = Iota<TypeParam>({2, 3}), b = Iota<TypeParam>({3, 2});
    const Comparison c = compare(a, b);
    EXPECT_FALSE(c.shapes_match);
    EXPECT_FALSE(c.close);
    EXPECT_EQ(c.summary(), "shapes differ");
    EXPECT_FALSE(allclose(a, b, 1e10, 1e10));
    EXPECT_FALSE(allclose(Tensor<TypeParam>(Shape{0}), Tensor<TypeParam>(Shape{0, 0})));
}

TYPED_TEST(TensorCompare, WorstIndexIsTheElementWithTheLargestExcessOverItsTolerance) {
    // Tolerances 10 and 0: element 0 has the larger error but is within tolerance; element 1 is not.
    const auto expected = Make<TypeParam>({2}, {100, 0});
    const auto actual = Make<TypeParam>({2}, {105, 2});
    const Comparison c = compare(actual, expected, 0.1, 0.0);
    EXPECT_FALSE(c.close);
    EXPECT_EQ(c.mismatches, 1);
    EXPECT_EQ(c.worst_index, 1);
    EXPECT_EQ(c.worst_actual, 2.0);
    EXPECT_EQ(c.worst_expected, 0.0);
    EXPECT_EQ(c.max_abs_error, 5.0);
    EXPECT_EQ(c.max_rel_error, 0.05);
}

TYPED_TEST(TensorCompare, SummaryReportsCountsErrorsAndTheWorstElement) {
    const auto expected = Tensor<TypeParam>::zeros({4});
    const auto actual = Make<TypeParam>({4}, {0, 0.5, 3, 2});
    const Comparison c = compare(actual, expected, 0.0, 1.0);
    EXPECT_EQ(c.mismatches, 2);
    EXPECT_EQ(
        c.summary(),
        "2 element(s) outside tolerance; max abs error 3, max rel error 0; worst at flat index 2: actual 3, "
        "expected 0");
}

// Every element is within tolerance, so the "largest excess" is negative everywhere; element 0 is
// nevertheless the one closest to failing (excess -9.5 against -20) and should be reported as the worst.
TYPED_TEST(TensorCompare, WorstIndexIsReportedEvenWhenEveryElementIsFarWithinTolerance) {
    const auto expected = Make<TypeParam>({2}, {1000, 2000});
    const auto actual = Make<TypeParam>({2}, {1000.5, 2000});
    const Comparison c = compare(actual, expected, 1e-2, 0.0);
    EXPECT_TRUE(c.close);
    EXPECT_EQ(c.worst_index, 0);
    EXPECT_EQ(c.max_abs_error, 0.5);
}

TYPED_TEST(TensorCompare, EmptyTensorsOfEqualShapeAreClose) {
    const Comparison c = compare(Tensor<TypeParam>(Shape{2, 0}), Tensor<TypeParam>(Shape{2, 0}));
    EXPECT_TRUE(c.close);
    EXPECT_EQ(c.worst_index, -1);
}

TYPED_TEST(TensorCompare, TensorsCloseHelperReportsBothShapesAndTheSummary) {
    const auto a = Iota<TypeParam>({2, 3}), b = Iota<TypeParam>({3, 2});
    const ::testing::AssertionResult shapes = test::TensorsClose(a, b, 0.0, 0.0);
    EXPECT_FALSE(shapes);
    EXPECT_THAT(shapes.message(),
                AllOf(HasSubstr("[2, 3]"), HasSubstr("[3, 2]"), HasSubstr("shapes differ")));
    auto c = a;
    c(1, 1) = TypeParam(10);
    const ::testing::AssertionResult values = test::TensorsClose(c, a, 0.0, 0.5);
    EXPECT_FALSE(values);
    EXPECT_THAT(values.message(), HasSubstr("worst at flat index 4: actual 10, expected 4"));
    EXPECT_TRUE(test::TensorsClose(a, a + TypeParam(0.25), 0.0, 0.5));
    EXPECT_FALSE(test::TensorsEqual(a, a + TypeParam(0.25)));
    EXPECT_TRUE(test::TensorsEqual(a, Iota<TypeParam>({2, 3})));
}

// ---- printing ------------------------------------------------------------------------------------------

TYPED_TEST(TensorPrint, SmallTensorPrintsShapeAndEveryElement) {
    EXPECT_EQ(ToString(Iota<TypeParam>({2, 3})), "Tensor[2, 3]{0, 1, 2, 3, 4, 5}");
    EXPECT_EQ(ToString(Make<TypeParam>({2}, {0.5, -1.25})), "Tensor[2]{0.5, -1.25}");
    EXPECT_EQ(ToString(Tensor<TypeParam>::full({}, TypeParam(7))), "Tensor[]{7}");
    EXPECT_EQ(ToString(Tensor<TypeParam>()), "Tensor[0]{}");
    EXPECT_EQ(ToString(Tensor<TypeParam>(Shape{2, 0})), "Tensor[2, 0]{}");
}

TYPED_TEST(TensorPrint, SixteenElementsArePrintedWithoutElision) {
    EXPECT_EQ(ToString(Tensor<TypeParam>::arange(16)),
              "Tensor[16]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}");
}

TYPED_TEST(TensorPrint, LargeTensorElidesTheMiddleElements) {
    EXPECT_EQ(ToString(Tensor<TypeParam>::arange(17)),
              "Tensor[17]{0, 1, 2, 3, 4, 5, 6, 7, ..., 9, 10, 11, 12, 13, 14, 15, 16}");
    EXPECT_EQ(ToString(Iota<TypeParam>({10, 10})),
              "Tensor[10, 10]{0, 1, 2, 3, 4, 5, 6, 7, ..., 92, 93, 94, 95, 96, 97, 98, 99}");
}

TEST(TensorPrintInteger, SmallIntegerTypesPrintAsNumbers) {
    const Tensor<std::int8_t> t(Shape{2}, std::vector<std::int8_t>{65, -1});
    EXPECT_EQ(ToString(t), "Tensor[2]{65, -1}");
    const Tensor<std::uint8_t> u(Shape{1}, std::vector<std::uint8_t>{200});
    EXPECT_EQ(ToString(u), "Tensor[1]{200}");
}

}  // namespace
}  // namespace vit3d
