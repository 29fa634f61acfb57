// Linear, LayerNorm, activations and Mlp against explicit loops and known values.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vit3d.hpp>
#include <vit3d/nn/layer_norm.hpp>
#include <vit3d/nn/mlp.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace nn = vit3d::nn;

template <class T>
class LayersTyped : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LayersTyped, Types);

template <class T>
double tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

TYPED_TEST(LayersTyped, LinearComputesXWTransposePlusBiasOverLeadingAxes) {
    using T = TypeParam;
    nn::Linear<T> lin(Tensor<T>::randn({5, 3}, 1), Tensor<T>::randn({5}, 2));
    const auto x = Tensor<T>::randn({2, 4, 3}, 3);
    const auto y = lin.forward(x);
    ASSERT_EQ(y.shape(), (Shape{2, 4, 5}));
    Tensor<T> expected({2, 4, 5});
    for (Index b = 0; b < 2; ++b)
        for (Index n = 0; n < 4; ++n)
            for (Index o = 0; o < 5; ++o) {
                double s = (*lin.bias)(o);
                for (Index i = 0; i < 3; ++i) s += double(lin.weight(o, i)) * x(b, n, i);
                expected(b, n, o) = static_cast<T>(s);
            }
    EXPECT_TENSOR_CLOSE(y, expected, tolerance<T>(), tolerance<T>());
    nn::Linear<T> no_bias(Tensor<T>(lin.weight), std::nullopt);
    EXPECT_TENSOR_CLOSE(no_bias.forward(x) + *lin.bias, y, tolerance<T>(), tolerance<T>());
}

TEST(Linear, RejectsMismatchedInputAndParameters) {
    nn::Linear<float> lin(3, 5);
    EXPECT_THAT(
        [&] {
            lin.forward(Tensor<float>({2, 4}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("expected input [..., 3], got [2, 4]")));
    EXPECT_THROW(nn::Linear<float>(Tensor<float>({5, 3}), Tensor<float>({4})), vit3d::shape_error);
    std::vector<std::string> names;
    lin.visit_parameters([&](const std::string& n, Tensor<float>&) { names.push_back(n); }, "head");
    EXPECT_EQ(names, (std::vector<std::string>{"head.weight", "head.bias"}));
}

TYPED_TEST(LayersTyped, LayerNormNormalizesEachRowWithBiasedVariance) {
    using T = TypeParam;
    nn::LayerNorm<T> ln(6, 1e-6);
    ln.weight = Tensor<T>::randn({6}, 4);
    ln.bias = Tensor<T>::randn({6}, 5);
    const auto x = Tensor<T>::randn({3, 2, 6}, 6, T(3), T(2));
    const auto y = ln.forward(x);
    for (Index r = 0; r < 6; ++r) {
        const T* row = x.data() + r * 6;
        double mean = 0, var = 0;
        for (Index i = 0; i < 6; ++i) mean += row[i] / 6.0;
        for (Index i = 0; i < 6; ++i) var += (row[i] - mean) * (row[i] - mean) / 6.0;
        for (Index i = 0; i < 6; ++i) {
            const double e = (row[i] - mean) / std::sqrt(var + 1e-6) * ln.weight(i) + ln.bias(i);
            EXPECT_NEAR(y.data()[r * 6 + i], e, tolerance<T>() * std::max(1.0, std::abs(e)));
        }
    }
    // eps matters for constant rows: the output is the bias exactly.
    const auto flat = ln.forward(Tensor<T>::full({1, 6}, T(2)));
    EXPECT_TENSOR_CLOSE(flat, ln.bias.reshape({1, 6}), tolerance<T>(), tolerance<T>());
    EXPECT_THROW(ln.forward(Tensor<T>({2, 5})), vit3d::shape_error);
}

TEST(Activation, GeluMatchesErfAndTanhFormsAtKnownPoints) {
    EXPECT_NEAR(nn::gelu(1.0), 0.8413447460685429, 1e-15);
    EXPECT_NEAR(nn::gelu(-2.0), -0.04550026389635842, 1e-15);
    EXPECT_NEAR(nn::gelu_tanh(1.0), 0.8411919906082768, 1e-15);
    EXPECT_NEAR(nn::gelu(1.0f), 0.8413447f, 1e-7);
    EXPECT_EQ(nn::relu(-3.0f), 0.0f);
    auto x = Tensor<float>({3}, {-1.0f, NAN, 2.0f});
    nn::apply_activation(x, nn::Activation::relu);
    EXPECT_EQ(x(0), 0.0f);
    EXPECT_TRUE(std::isnan(x(1)));
    EXPECT_EQ(x(2), 2.0f);
    EXPECT_STREQ(nn::activation_name(nn::Activation::gelu_tanh), "gelu_tanh");
}

// Float tensors take the vectorised GELU (Eigen's rational erf); over the range activations take, and far
// beyond, it stays within 3e-7 * max(1, |x|) of the exact double-precision GELU rounded to float.
TEST(Activation, VectorisedFloatGeluIsCloseToTheExactOne) {
    const Index n = 2000001;
    Tensor<float> x = Tensor<float>::empty({n});
    for (Index i = 0; i < n; ++i) x(i) = -20.0f + 40.0f * static_cast<float>(i) / static_cast<float>(n - 1);
    const Tensor<float> y = nn::activate(x, nn::Activation::gelu);
    double worst = 0;
    for (Index i = 0; i < n; ++i) {
        const double exact = nn::gelu(static_cast<double>(x(i)));
        worst = std::max(worst, std::abs(y(i) - exact) / std::max(1.0, std::abs(static_cast<double>(x(i)))));
    }
    EXPECT_LE(worst, 3e-7);
    EXPECT_EQ(nn::activate(Tensor<float>::zeros({3}), nn::Activation::gelu)(1), 0.0f);
}

TYPED_TEST(LayersTyped, MlpIsLinearGeluLinear) {
    using T = TypeParam;
    nn::Mlp<T> mlp(4, 8);
    mlp.fc1 = nn::Linear<T>(Tensor<T>::randn({8, 4}, 7), Tensor<T>::randn({8}, 8));
    mlp.fc2 = nn::Linear<T>(Tensor<T>::randn({4, 8}, 9), Tensor<T>::randn({4}, 10));
    const auto x = Tensor<T>::randn({2, 3, 4}, 11);
    const auto expected = mlp.fc2.forward(nn::activate(mlp.fc1.forward(x), nn::Activation::gelu));
    EXPECT_TENSOR_EQ(mlp.forward(x), expected);
    EXPECT_EQ(nn::count_parameters(mlp), 8 * 4 + 8 + 4 * 8 + 4);
}

}  // namespace
