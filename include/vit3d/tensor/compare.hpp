#pragma once
// Tolerance comparison of tensors, as numpy.allclose / torch.allclose: |a - b| <= atol + rtol * |b|.

#include <cmath>
#include <sstream>
#include <string>

#include "vit3d/tensor/tensor.hpp"

namespace vit3d {

// The outcome of comparing `actual` against `expected` element by element.
struct Comparison {
    bool shapes_match = false;
    bool close = false;           // shapes match and every element is within tolerance
    Index mismatches = 0;         // elements outside tolerance
    Index worst_index = -1;       // flat index of the element with the largest excess over its tolerance
    double worst_actual = 0.0;    // that element in `actual`
    double worst_expected = 0.0;  // that element in `expected`
    double max_abs_error = 0.0;   // over all elements (NaN/inf differences count as infinite)
    double max_rel_error = 0.0;   // max |a - b| / |b| over elements with b != 0

    // One line for a test failure: shapes, counts and the worst element.
    std::string summary() const {
        std::ostringstream out;
        if (!shapes_match) return "shapes differ";
        out << mismatches << " element(s) outside tolerance; max abs error " << max_abs_error
            << ", max rel error " << max_rel_error;
        if (worst_index >= 0)
            out << "; worst at flat index " << worst_index << ": actual " << worst_actual << ", expected "
                << worst_expected;
        return out.str();
    }
};

// Compares with |actual - expected| <= atol + rtol * |expected| (asymmetric, as NumPy). NaNs compare
// equal only where both are NaN and equal_nan is set; infinities must match exactly.
template <class T>
Comparison compare(const Tensor<T>& actual, const Tensor<T>& expected, double rtol = 1e-5, double atol = 1e-8,
                   bool equal_nan = false) {
    Comparison c;
    c.shapes_match = actual.shape() == expected.shape();
    if (!c.shapes_match) return c;
    double worst_excess = -INFINITY;
    for (Index i = 0; i < actual.size(); ++i) {
        const double a = static_cast<double>(actual.data()[i]);
        const double e = static_cast<double>(expected.data()[i]);
        double err, excess;
        if (std::isnan(a) || std::isnan(e)) {
            const bool ok = equal_nan && std::isnan(a) && std::isnan(e);
            err = ok ? 0.0 : INFINITY;
            excess = ok ? -INFINITY : INFINITY;
        } else if (std::isinf(a) || std::isinf(e)) {
            err = a == e ? 0.0 : INFINITY;
            excess = a == e ? -INFINITY : INFINITY;
        } else {
            err = std::abs(a - e);
            excess = err - (atol + rtol * std::abs(e));
            if (e != 0.0) c.max_rel_error = std::max(c.max_rel_error, err / std::abs(e));
        }
        c.max_abs_error = std::max(c.max_abs_error, err);
        if (excess > 0.0) ++c.mismatches;
        if (excess > worst_excess) {
            worst_excess = excess;
            c.worst_index = i;
            c.worst_actual = a;
            c.worst_expected = e;
        }
    }
    c.close = c.mismatches == 0;
    return c;
}

template <class T>
bool allclose(const Tensor<T>& actual, const Tensor<T>& expected, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false) {
    return compare(actual, expected, rtol, atol, equal_nan).close;
}

}  // namespace vit3d
