// Replays every call recorded from the real einops package (tests/fixtures/einops_cases.txt, made by
// tests/fixtures/make_einops_cases.py) through vit3d: same result shape and values, or an error where
// einops raised one. Rearrange and repeat must match exactly; reductions to 1e-12 relative (einops
// reduces in float64 with NumPy's pairwise summation, vit3d accumulates in a different order).

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <vit3d.hpp>

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;

struct Case {
    std::string op, pattern, error;
    Shape shape, out_shape;
    vit3d::AxisLengths lengths;
    std::vector<double> values;
    int line = 0;
};

std::string rest_after(const std::string& line, const std::string& key) {
    return line.size() > key.size() ? line.substr(key.size() + 1) : std::string();
}

Shape parse_shape(const std::string& text) {
    Shape s;
    std::istringstream in(text);
    for (Index v; in >> v;) s.push_back(v);
    return s;
}

std::vector<Case> load_cases() {
    std::ifstream file(std::string(VIT3D_TEST_FIXTURE_DIR) + "/einops_cases.txt");
    std::vector<Case> cases;
    std::string line;
    int number = 0;
    while (std::getline(file, line)) {
        ++number;
        if (line.rfind("op ", 0) == 0) {
            cases.emplace_back();
            cases.back().op = rest_after(line, "op");
            cases.back().line = number;
        } else if (cases.empty() || line.empty() || line[0] == '#') {
            continue;
        } else if (line.rfind("pattern", 0) == 0) {
            cases.back().pattern = rest_after(line, "pattern");
        } else if (line.rfind("shape", 0) == 0) {
            cases.back().shape = parse_shape(rest_after(line, "shape"));
        } else if (line.rfind("lengths", 0) == 0) {
            std::istringstream in(rest_after(line, "lengths"));
            for (std::string item; in >> item;) {
                const auto eq = item.find('=');
                cases.back().lengths.emplace_back(item.substr(0, eq), std::stoll(item.substr(eq + 1)));
            }
        } else if (line.rfind("out", 0) == 0) {
            cases.back().out_shape = parse_shape(rest_after(line, "out"));
        } else if (line.rfind("values", 0) == 0) {
            std::istringstream in(rest_after(line, "values"));
            for (std::string v; in >> v;) cases.back().values.push_back(std::strtod(v.c_str(), nullptr));
        } else if (line.rfind("error", 0) == 0) {
            cases.back().error = rest_after(line, "error");
        }
    }
    return cases;
}

// The input formula of make_einops_cases.py: exact in binary, so copies compare bit for bit.
template <class T>
Tensor<T> make_input(const Shape& shape) {
    Tensor<T> x(shape);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(double((i * 7919) % 1009) / 64.0 - 7.0);
    return x;
}

template <class T>
Tensor<T> run(const Case& c, const Tensor<T>& x) {
    if (c.op == "rearrange") return vit3d::rearrange(x, c.pattern, c.lengths);
    if (c.op == "repeat") return vit3d::repeat(x, c.pattern, c.lengths);
    const vit3d::Reduction r = c.op == "sum"    ? vit3d::Reduction::sum
                               : c.op == "mean" ? vit3d::Reduction::mean
                               : c.op == "min"  ? vit3d::Reduction::min
                               : c.op == "max"  ? vit3d::Reduction::max
                                                : vit3d::Reduction::prod;
    return vit3d::reduce(x, c.pattern, r, c.lengths);
}

template <class T>
void check_case(const Case& c, double rtol) {
    SCOPED_TRACE("einops_cases.txt line " + std::to_string(c.line) + ": " + c.op + " \"" + c.pattern +
                 "\" on " + vit3d::shape_to_string(c.shape));
    const Tensor<T> x = make_input<T>(c.shape);
    if (!c.error.empty()) {
        EXPECT_THROW(run(c, x), std::invalid_argument) << "einops raised: " << c.error;
        return;
    }
    Tensor<T> y;
    ASSERT_NO_THROW(y = run(c, x));
    ASSERT_EQ(y.shape(), c.out_shape);
    ASSERT_EQ(static_cast<std::size_t>(y.size()), c.values.size());
    const bool exact = c.op == "rearrange" || c.op == "repeat" || c.op == "min" || c.op == "max";
    for (Index i = 0; i < y.size(); ++i) {
        const double expected = static_cast<double>(static_cast<T>(c.values[static_cast<std::size_t>(i)]));
        const double actual = y.data()[i];
        if (std::isnan(expected)) {
            EXPECT_TRUE(std::isnan(actual)) << "at flat index " << i;
        } else if (exact) {
            ASSERT_EQ(actual, expected) << "at flat index " << i;
        } else {
            ASSERT_NEAR(actual, expected, rtol * std::max(1.0, std::abs(expected))) << "at flat index " << i;
        }
    }
}

TEST(EinopsParity, FixtureHasAllOperationsAndErrors) {
    const auto cases = load_cases();
    ASSERT_GE(cases.size(), 250u) << "tests/fixtures/einops_cases.txt missing or truncated";
    int errors = 0, reductions = 0, repeats = 0;
    for (const auto& c : cases) {
        errors += !c.error.empty();
        reductions += c.op != "rearrange" && c.op != "repeat";
        repeats += c.op == "repeat";
    }
    EXPECT_GE(errors, 40);
    EXPECT_GE(reductions, 80);
    EXPECT_GE(repeats, 20);
}

TEST(EinopsParity, EveryCaseMatchesEinopsInDouble) {
    for (const auto& c : load_cases()) check_case<double>(c, 1e-12);
}

TEST(EinopsParity, EveryCaseMatchesEinopsInFloat) {
    // Inputs are exact in float too; float sums and products are rounded once from the double accumulator.
    for (const auto& c : load_cases()) check_case<float>(c, 1e-6);
}

}  // namespace
