// Runtime choice of the kernels' instruction-set level (core/cpu.hpp, detail/isa/): this build (no -march)
// picks the best level the CPU has, as /proc/cpuinfo lists it; VIT3D_ISA and set_isa_cap cap it, a bad
// VIT3D_ISA is an error naming the value; and per level, the vector exp2 and GELU are as accurate as the
// generic ones, LayerNorm agrees with a double reference (tails, float rows with a large common offset, the
// same bits wherever a row sits and on any thread count), and a GEMM from weights packed once equals one
// that packs on every call. The GEMM and the fused attention themselves are checked per level in
// test_gemm.cpp and test_fused_attention.cpp.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/cpu.hpp>
#include <vit3d/detail/activation_kernel.hpp>
#include <vit3d/detail/gemm_kernel.hpp>
#include <vit3d/detail/isa/dispatch.hpp>
#include <vit3d/detail/layer_norm_kernel.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Isa;

// The flags of the first processor in /proc/cpuinfo (empty where there is no such file).
std::set<std::string> cpuinfo_flags() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line.substr(line.find(':') + 1));
        std::set<std::string> flags;
        for (std::string w; words >> w;) flags.insert(w);
        return flags;
    }
    return {};
}

TEST(Isa, ReportsWhichLevelsRunHere) {
    std::cout << "[ ISA      ] " << vit3d::test::isa_report() << std::endl;
    SUCCEED();
}

TEST(Isa, ThisCpuIsDetectedAsProcCpuinfoDescribesIt) {
#if VIT3D_ISA_DISPATCH
    const auto flags = cpuinfo_flags();
    if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo";
    const bool avx2 = flags.count("avx2") && flags.count("fma");
    const bool avx512 = avx2 && flags.count("avx512f") && flags.count("avx512bw") &&
                        flags.count("avx512dq") && flags.count("avx512vl");
    EXPECT_EQ(vit3d::cpu_info().supported, avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::generic);
#else
    GTEST_SKIP() << "no runtime dispatch on this compiler or architecture";
#endif
}

TEST(Isa, ADefaultBuildRunsTheBestLevelOfThisCpu) {
    const vit3d::CpuInfo info = vit3d::cpu_info();
#if VIT3D_ISA_DISPATCH && VIT3D_BASELINE_ISA == 0
    // The tests are built as users build: no -m flags. Every level is compiled in.
    EXPECT_EQ(info.baseline, Isa::generic);
    EXPECT_EQ(info.compiled, Isa::avx512);
#endif
    const char* env = std::getenv("VIT3D_ISA");
    if (env && *env) GTEST_SKIP() << "VIT3D_ISA=" << env << " caps the level in this run";
    EXPECT_EQ(info.active, std::min(info.supported, info.compiled));
    EXPECT_EQ(vit3d::detail::active_isa(), info.active);
}

// Restores the cap (and VIT3D_ISA's first reading) after a test that changes them.
struct CapGuard {
    int saved = vit3d::detail::isa_cap_setting().load();
    ~CapGuard() { vit3d::detail::isa_cap_setting().store(saved); }
};

TEST(Isa, TheCapLowersTheLevelAndNeverRaisesItAboveTheCpu) {
    CapGuard guard;
    const vit3d::CpuInfo info = vit3d::cpu_info();
    for (Isa cap : {Isa::generic, Isa::avx2, Isa::avx512}) {
        vit3d::set_isa_cap(cap);
        const Isa expected = std::max(info.baseline, std::min({cap, info.supported, info.compiled}));
        EXPECT_EQ(vit3d::cpu_info().active, expected) << "cap " << vit3d::isa_name(cap);
        EXPECT_EQ(vit3d::cpu_info().cap, cap);
    }
}

TEST(Isa, EnvironmentVariableCapsAndABadValueIsAnErrorNamingIt) {
    CapGuard guard;
    const char* old = std::getenv("VIT3D_ISA");
    const std::string saved = old ? old : "";
    setenv("VIT3D_ISA", "avx2", 1);
    vit3d::detail::isa_cap_setting().store(-1);  // as if not read yet
    EXPECT_EQ(vit3d::cpu_info().cap, Isa::avx2);
    setenv("VIT3D_ISA", "avx9000", 1);
    vit3d::detail::isa_cap_setting().store(-1);
    try {
        vit3d::detail::active_isa();
        ADD_FAILURE() << "a bad VIT3D_ISA was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("VIT3D_ISA"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("generic, avx2 or avx512"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("'avx9000'"));
    }
    if (old)
        setenv("VIT3D_ISA", saved.c_str(), 1);
    else
        unsetenv("VIT3D_ISA");
    EXPECT_EQ(vit3d::parse_isa("avx512"), Isa::avx512);
    EXPECT_THROW(vit3d::parse_isa("AVX2"), std::invalid_argument);
}

// Distance in units in the last place between two finite floats of the same sign (or both 0).
std::int64_t ulps(float a, float b) {
    std::int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    return std::abs(static_cast<std::int64_t>(ia) - static_cast<std::int64_t>(ib));
}

TEST(Isa, VectorExp2IsWithinTwoUlpFlushesBelowTheNormalRangeAndKeepsNaNOnEveryLevel) {
    std::vector<float> x;
    for (float v = -130.0f; v <= 0.0f; v += 0.0137f) x.push_back(v);
    x.push_back(-std::numeric_limits<float>::infinity());
    x.push_back(0.0f);
    x.push_back(std::numeric_limits<float>::quiet_NaN());
    std::vector<float> y(x.size());
    vit3d::test::for_each_isa([&](Isa isa) {
        vit3d::detail::with_kernels(isa, [&](auto kernels) {
            decltype(kernels)::template exp2<float>(x.data(), y.data(), Index(x.size()));
        });
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (std::isnan(x[i])) {
                ASSERT_TRUE(std::isnan(y[i])) << "2^NaN: " << y[i];
            } else if (x[i] < -126.0f) {
                ASSERT_EQ(y[i], 0.0f) << "2^" << x[i];
            } else {
                const float exact = static_cast<float>(std::exp2(static_cast<double>(x[i])));
                ASSERT_LE(ulps(y[i], exact), 2) << "2^" << x[i] << ": " << y[i] << " vs " << exact;
            }
        }
    });
}

// Each vectorised float activation against its exact double form, on every level and tail length, over
// the range activations take and into the saturated ends: within 3e-7 * max(1, |x|) (2e-7 for the sigmoid,
// whose values are at most 1).
TEST(Isa, FloatActivationsAreWithinTheirToleranceOfTheExactOnesOnEveryLevelAndTail) {
    namespace nn = vit3d::nn;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (nn::Activation a : {nn::Activation::gelu, nn::Activation::gelu_tanh, nn::Activation::silu,
                             nn::Activation::quick_gelu, nn::Activation::sigmoid}) {
        const double tolerance = a == nn::Activation::sigmoid ? 2e-7 : 3e-7;
        vit3d::test::for_each_isa([&](Isa isa) {
            for (Index n : {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 1000}) {
                std::vector<float> x(static_cast<std::size_t>(n));
                for (float& v : x) v = normal(rng);
                if (n == 1000)
                    for (int i = 0; i < 20; ++i) x[static_cast<std::size_t>(i)] = -100.0f + 10.0f * float(i);
                std::vector<float> y = x;
                nn::apply_activation_range(y.data(), n, a, isa);
                for (Index i = 0; i < n; ++i) {
                    const double v = x[i];
                    double exact = 0;
                    switch (a) {
                        case nn::Activation::gelu:
                            exact = nn::gelu(v);
                            break;
                        case nn::Activation::gelu_tanh:
                            exact = nn::gelu_tanh(v);
                            break;
                        case nn::Activation::silu:
                            exact = nn::silu(v);
                            break;
                        case nn::Activation::quick_gelu:
                            exact = nn::quick_gelu(v);
                            break;
                        default:
                            exact = nn::sigmoid(v);
                            break;
                    }
                    ASSERT_NEAR(y[i], exact, tolerance * std::max(1.0, std::abs(v)))
                        << nn::activation_name(a) << " n " << n << " x " << v;
                }
            }
        });
    }
}

// Infinities and NaN come out as torch's float functions give them.
TEST(Isa, FloatActivationsKeepInfinitiesAndNaNAsTorch) {
    namespace nn = vit3d::nn;
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    vit3d::test::for_each_isa([&](Isa isa) {
        std::vector<float> y{inf, -inf, nan};
        nn::apply_activation_range(y.data(), 3, nn::Activation::gelu_tanh, isa);
        EXPECT_EQ(y[0], inf);
        EXPECT_TRUE(std::isnan(y[1]));  // -inf * 0, as 0.5 x (1 + tanh(u)) gives
        EXPECT_TRUE(std::isnan(y[2]));
        y = {inf, -inf, nan};
        nn::apply_activation_range(y.data(), 3, nn::Activation::sigmoid, isa);
        EXPECT_EQ(y[0], 1.0f);
        EXPECT_EQ(y[1], 0.0f);
        EXPECT_TRUE(std::isnan(y[2]));
    });
}

// LayerNorm of one row in double, two passes, as PyTorch defines it (biased variance, eps inside the root):
// the normalised row x_hat; the output is x_hat * weight + bias.
template <class T>
std::vector<double> normalised_reference(const T* x, Index d, double eps) {
    double mean = 0, var = 0;
    for (Index i = 0; i < d; ++i) mean += static_cast<double>(x[i]);
    mean /= static_cast<double>(d);
    for (Index i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<double>(d);
    std::vector<double> x_hat(static_cast<std::size_t>(d));
    for (Index i = 0; i < d; ++i) x_hat[static_cast<std::size_t>(i)] = (x[i] - mean) / std::sqrt(var + eps);
    return x_hat;
}

// Largest |y - reference| / max(1, |x_hat * weight| + |bias|) over rows [0, rows) of d elements: relative to
// the terms of the output, since weight and bias can cancel (a float output cannot be closer to the exact one
// than the rounding of its terms).
template <class T>
double layer_norm_error(const std::vector<T>& x, const std::vector<T>& y, Index rows, Index d,
                        const std::vector<T>& weight, const std::vector<T>& bias, double eps) {
    double worst = 0;
    for (Index r = 0; r < rows; ++r) {
        const auto x_hat = normalised_reference(x.data() + r * d, d, eps);
        for (Index i = 0; i < d; ++i) {
            const auto at = static_cast<std::size_t>(i);
            const double term = x_hat[at] * weight[at], exact = term + bias[at];
            const double got = y[static_cast<std::size_t>(r * d + i)];
            worst =
                std::max(worst, std::abs(got - exact) / std::max(1.0, std::abs(term) + std::abs(bias[at])));
        }
    }
    return worst;
}

// Float: a few float operations after the sums (x - shift, - offset, times the scale, a fused multiply-add
// with weight and bias), measured within 2.4e-7 (2 epsilon) on every level: 3e-7. Double: measured 8e-15
// (as much the reference's own summation as the kernel's): 1e-13.
template <class T>
constexpr double layer_norm_tolerance = std::is_same_v<T, float> ? 3e-7 : 1e-13;

template <class T>
void check_layer_norm_tails(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<T> normal(T(0), T(1));
    std::uniform_int_distribution<Index> row_count(1, 6);
    vit3d::test::for_each_isa([&](Isa isa) {
        for (Index d : {1, 3, 7, 15, 16, 17, 31, 64, 768, 1000})
            for (double eps : {1e-5, 1e-6}) {
                const Index rows = row_count(rng);
                const T offset = T(3) * normal(rng), spread = T(0.1) + std::abs(T(2) * normal(rng));
                std::vector<T> x(static_cast<std::size_t>(rows * d)), weight(static_cast<std::size_t>(d)),
                    bias(weight.size()), y(x.size());
                for (T& v : x) v = offset + spread * normal(rng);
                for (T& v : weight) v = T(1) + T(0.5) * normal(rng);
                for (T& v : bias) v = normal(rng);
                vit3d::detail::layer_norm_rows(x.data(), y.data(), 0, rows, d, weight.data(), bias.data(),
                                               eps, isa);
                const double error = layer_norm_error(x, y, rows, d, weight, bias, eps);
                ASSERT_LE(error, layer_norm_tolerance<T>) << "d " << d << " rows " << rows << " eps " << eps;
                if (d == 1) {  // a constant row: the output is the bias exactly
                    for (Index r = 0; r < rows; ++r) ASSERT_EQ(y[static_cast<std::size_t>(r)], bias[0]);
                }
            }
    });
}

TEST(Isa, LayerNormAgreesWithADoubleReferenceOnEveryLevelAndTailInFloat) {
    check_layer_norm_tails<float>(11);
}

TEST(Isa, LayerNormAgreesWithADoubleReferenceOnEveryLevelAndTailInDouble) {
    check_layer_norm_tails<double>(12);
}

// Float rows around 1000 +- 1 (a common offset some 1700 times the spread), up to 4096 long: a mean and
// variance accumulated in float would lose the spread; about the row's mean, in double, the output stays as
// close to the double reference as for centred rows (measured 1.9e-7; the aim was 1e-6).
TEST(Isa, LayerNormOfFloatRowsWithALargeCommonOffsetStaysCloseToDouble) {
    std::mt19937_64 rng(13);
    std::uniform_real_distribution<float> around(-1.0f, 1.0f);
    std::normal_distribution<float> normal;
    vit3d::test::for_each_isa([&](Isa isa) {
        for (Index d : {768, 1000, 1024, 3072, 4096})
            for (float offset : {1000.0f, -1000.0f, 1e5f}) {
                const Index rows = 4;
                std::vector<float> x(static_cast<std::size_t>(rows * d)), weight(static_cast<std::size_t>(d)),
                    bias(weight.size()), y(x.size());
                for (float& v : x) v = offset + around(rng);
                for (float& v : weight) v = 1.0f + 0.5f * normal(rng);
                for (float& v : bias) v = normal(rng);
                vit3d::detail::layer_norm_rows(x.data(), y.data(), 0, rows, d, weight.data(), bias.data(),
                                               1e-6, isa);
                EXPECT_LE(layer_norm_error(x, y, rows, d, weight, bias, 1e-6), layer_norm_tolerance<float>)
                    << "d " << d << " offset " << offset;
            }
    });
}

// Rows are independent and each is computed in an order that depends on its length only: a row gives the
// same bits at any position in a tensor (and any alignment), and nn::LayerNorm on any thread count.
TEST(Isa, LayerNormOfARowIsTheSameBitsWhereverItSitsAndOnAnyThreadCount) {
    using vit3d::Tensor;
    vit3d::test::for_each_isa([&](Isa isa) {
        for (Index d : {7, 17, 768}) {
            const Index rows = 64;
            const Tensor<float> x = Tensor<float>::randn({rows, d}, 21, 5.0f, 2.0f);
            vit3d::nn::LayerNorm<float> ln(d, 1e-6);
            ln.weight = Tensor<float>::randn({d}, 22);
            ln.bias = Tensor<float>::randn({d}, 23);
            vit3d::set_num_threads(1);
            const Tensor<float> one = ln.forward(x);
            vit3d::set_num_threads(2);
            const Tensor<float> two = ln.forward(x);
            vit3d::set_num_threads(0);
            ASSERT_EQ(std::memcmp(one.data(), two.data(), sizeof(float) * std::size_t(rows * d)), 0)
                << "d " << d;
            // Row 37 alone, one element past an aligned start.
            std::vector<float> in(static_cast<std::size_t>(d + 1)), out(in.size());
            std::copy(x.data() + 37 * d, x.data() + 38 * d, in.begin() + 1);
            vit3d::detail::layer_norm_rows(in.data() + 1, out.data() + 1, 0, 1, d, ln.weight.data(),
                                           ln.bias.data(), 1e-6, isa);
            ASSERT_EQ(std::memcmp(out.data() + 1, one.data() + 37 * d, sizeof(float) * std::size_t(d)), 0)
                << "d " << d;
        }
    });
}

TEST(Isa, GemmFromWeightsPackedOnceEqualsPackingOnEveryCall) {
    std::mt19937_64 rng(9);
    std::normal_distribution<float> normal;
    vit3d::test::for_each_isa([&](Isa isa) {
        for (Index N : {1, 24, 65, 300})
            for (Index K : {1, 17, 600}) {
                const Index M = 13;
                std::vector<float> A(static_cast<std::size_t>(M * K)), B(static_cast<std::size_t>(N * K)),
                    bias(static_cast<std::size_t>(N));
                for (float& v : A) v = normal(rng);
                for (float& v : B) v = normal(rng);
                for (float& v : bias) v = normal(rng);
                std::vector<float> each(static_cast<std::size_t>(M * N)), once(each.size());
                vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, each.data(), N, bias.data(),
                                               2, isa);
                const auto packed = vit3d::detail::GemmWeights<float>::pack(B.data(), K, N, K, isa, 2);
                vit3d::detail::packed_gemm_abt(M, N, K, A.data(), K, B.data(), K, once.data(), N, bias.data(),
                                               2, isa, &packed);
                ASSERT_EQ(each, once) << "N " << N << " K " << K;
            }
    });
}

// Through the public modules, with the level forced by the cap as VIT3D_ISA would: a linear layer, GELU and
// attention give the same numbers on every level up to float rounding.
TEST(Isa, ModulesAgreeAcrossLevelsWithTheLevelForcedByTheCap) {
    using vit3d::Tensor;
    vit3d::nn::Linear<float> fc(96, 200);
    fc.weight = Tensor<float>::randn(fc.weight.shape(), 1, 0.0f, 0.1f);
    fc.bias = Tensor<float>::randn({200}, 2);
    const Tensor<float> x = Tensor<float>::randn({3, 50, 96}, 3);
    const Tensor<float> q = Tensor<float>::randn({2, 3, 77, 40}, 4),
                        k = Tensor<float>::randn({2, 3, 130, 40}, 5),
                        v = Tensor<float>::randn({2, 3, 130, 40}, 6);
    std::vector<Tensor<float>> linear, attention;
    vit3d::test::for_each_isa([&](Isa) {
        Tensor<float> y = fc.forward(x);
        vit3d::nn::apply_activation(y, vit3d::nn::Activation::gelu);
        linear.push_back(std::move(y));
        attention.push_back(vit3d::nn::scaled_dot_product_attention(q, k, v, nullptr, nullptr,
                                                                    vit3d::nn::AttentionKernel::fused));
    });
    for (std::size_t i = 1; i < linear.size(); ++i) {
        EXPECT_TRUE(vit3d::allclose(linear[i], linear[0], 1e-5, 1e-5)) << "level " << i;
        EXPECT_TRUE(vit3d::allclose(attention[i], attention[0], 1e-5, 1e-5)) << "level " << i;
    }
}

}  // namespace
