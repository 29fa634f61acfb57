#pragma once
// GoogleTest helpers shared by all vit3d tests: tolerance and exact comparison of tensors with readable
// failure messages, and tensors filled with 0, 1, 2, ... for expectations that can be checked by eye.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vit3d.hpp>

namespace vit3d::test {

namespace detail {

template <class T>
::testing::AssertionResult TensorComparisonResult(const Tensor<T>& actual, const Tensor<T>& expected,
                                                  const Comparison& c, const std::string& criterion) {
    if (c.close) return ::testing::AssertionSuccess();
    std::ostringstream out;
    out << "tensors differ (" << criterion << ")\n  actual shape:   " << shape_to_string(actual.shape())
        << "\n  expected shape: " << shape_to_string(expected.shape()) << "\n  " << c.summary()
        << "\n  actual:   " << actual << "\n  expected: " << expected;
    return ::testing::AssertionFailure() << out.str();
}

}  // namespace detail

// Success when the shapes agree and every element satisfies |actual - expected| <= atol + rtol * |expected|
// (vit3d::compare, NaN never equal); otherwise a message with both shapes and Comparison::summary().
template <class T>
::testing::AssertionResult TensorsClose(const Tensor<T>& actual, const Tensor<T>& expected, double rtol,
                                        double atol) {
    std::ostringstream criterion;
    criterion << "rtol " << rtol << ", atol " << atol;
    return detail::TensorComparisonResult(actual, expected, compare(actual, expected, rtol, atol),
                                          criterion.str());
}

// Success when the shapes agree and every element is exactly equal (NaN never equal, 0 == -0).
template <class T>
::testing::AssertionResult TensorsEqual(const Tensor<T>& actual, const Tensor<T>& expected) {
    return detail::TensorComparisonResult(actual, expected, compare(actual, expected, 0.0, 0.0), "exact");
}

// A tensor of the given shape holding start, start + 1, start + 2, ... in row-major order.
template <class T>
Tensor<T> Iota(const Shape& shape, T start = T(0)) {
    Tensor<T> t = Tensor<T>::empty(shape);
    T value = start;
    for (T& v : t) {
        v = value;
        value = static_cast<T>(value + T(1));
    }
    return t;
}

}  // namespace vit3d::test

#define EXPECT_TENSOR_CLOSE(actual, expected, rtol, atol) \
    EXPECT_TRUE(::vit3d::test::TensorsClose((actual), (expected), (rtol), (atol)))
#define ASSERT_TENSOR_CLOSE(actual, expected, rtol, atol) \
    ASSERT_TRUE(::vit3d::test::TensorsClose((actual), (expected), (rtol), (atol)))
#define EXPECT_TENSOR_EQ(actual, expected) EXPECT_TRUE(::vit3d::test::TensorsEqual((actual), (expected)))
#define ASSERT_TENSOR_EQ(actual, expected) ASSERT_TRUE(::vit3d::test::TensorsEqual((actual), (expected)))
