#pragma once
// AffinesNear(actual, expected, tolerance): two 4 x 4 affines equal within `tolerance` element by element,
// both printed when they are not.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "vit3d/transforms/affine.hpp"

namespace vit3d::test {

inline ::testing::AssertionResult AffinesNear(const transforms::Affine& actual,
                                              const transforms::Affine& expected, double tolerance) {
    double worst = 0.0;
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c) worst = std::max(worst, std::abs(actual[r][c] - expected[r][c]));
    if (worst <= tolerance) return ::testing::AssertionSuccess();
    std::ostringstream out;
    out << "max |difference| " << worst << " > " << tolerance;
    for (const auto* a : {&actual, &expected}) {
        out << (a == &actual ? "; actual rows:" : "; expected rows:");
        for (const auto& row : *a)
            out << " [" << row[0] << ", " << row[1] << ", " << row[2] << ", " << row[3] << "]";
    }
    return ::testing::AssertionFailure() << out.str();
}

}  // namespace vit3d::test
