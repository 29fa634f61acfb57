#pragma once
// Loading the reference fixtures of tests/fixtures/modules/ (made by tests/fixtures/make_fixtures.py) and
// comparing against them with the project's stated tolerances: max |actual - expected| <= tol * scale,
// scale = max(1, max |expected|), tol = 1e-5 in float32 and 1e-10 in float64.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vit3d.hpp>
#include <vit3d/io/safetensors.hpp>

namespace vit3d::test {

template <class T>
constexpr double parity_tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

template <class T>
struct Fixture {
    io::Safetensors file;

    explicit Fixture(const std::string& name)
        : file(io::Safetensors::read(std::string(VIT3D_TEST_FIXTURE_DIR) + "/modules/" + name +
                                     (std::is_same_v<T, float> ? "_f32" : "_f64") + ".safetensors")) {}

    Tensor<T> in(const std::string& key) const { return file.get<T>("in." + key); }
    Tensor<T> out(const std::string& key) const { return file.get<T>("out." + key); }
    Tensor<T> param(const std::string& key) const { return file.get<T>("param." + key); }
};

// tolerance: the project's (parity_tolerance<T>()) unless a test states why its reference allows less.
template <class T>
::testing::AssertionResult MatchesReference(const Tensor<T>& actual, const Tensor<T>& expected,
                                            double tolerance = parity_tolerance<T>()) {
    if (actual.shape() != expected.shape())
        return ::testing::AssertionFailure() << "shape " << shape_to_string(actual.shape()) << ", reference "
                                             << shape_to_string(expected.shape());
    double scale = 1.0, worst = 0.0;
    Index at = -1;
    for (Index i = 0; i < actual.size(); ++i) {
        scale = std::max(scale, std::abs(static_cast<double>(expected.data()[i])));
        const double err = std::abs(static_cast<double>(actual.data()[i]) - expected.data()[i]);
        if (!(err <= worst)) {
            worst = err;
            at = i;
        }
    }
    const double bound = tolerance * scale;
    if (worst <= bound) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "max abs error " << worst << " > " << bound << " (tolerance " << tolerance << " x scale "
           << scale << ") at flat index " << at << ": actual " << actual.data()[at] << ", reference "
           << expected.data()[at];
}

#define EXPECT_MATCHES_REFERENCE(actual, expected) \
    EXPECT_TRUE(::vit3d::test::MatchesReference((actual), (expected)))

}  // namespace vit3d::test
