// vit3d::rearrange / vit3d::Rearrange: ViT patchify layouts against explicit index formulas, the
// property that a pattern followed by its inverse is the identity, pattern reuse, and the error
// messages users see. Parity with the einops package itself is in test_einops_parity.cpp.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;

// The message of the pattern_error that f throws (fails the test if it throws nothing or another type).
template <class F>
std::string pattern_error_message(F f) {
    try {
        f();
    } catch (const vit3d::pattern_error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected vit3d::pattern_error";
    return {};
}

TEST(Rearrange, PatchifiesA2dImageLikeVitPytorch) {
    // vit-pytorch ViT: 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'.
    const Index B = 2, C = 3, H = 32, W = 48, P = 16;
    const auto x = Tensor<float>::randn({B, C, H, W}, 1);
    const auto t = vit3d::rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", {{"p1", P}, {"p2", P}});
    ASSERT_EQ(t.shape(), (Shape{B, (H / P) * (W / P), P * P * C}));
    for (Index b = 0; b < B; ++b)
        for (Index c = 0; c < C; ++c)
            for (Index y = 0; y < H; ++y)
                for (Index xx = 0; xx < W; ++xx) {
                    const Index token = (y / P) * (W / P) + xx / P;
                    const Index feature = ((y % P) * P + xx % P) * C + c;
                    ASSERT_EQ(t(b, token, feature), x(b, c, y, xx));
                }
}

TEST(Rearrange, PatchifiesAVolumeInBothLayouts) {
    const Index C = 2, F = 8, H = 16, W = 32, pf = 4, p1 = 8, p2 = 8;
    // vit-pytorch 3D ([B, C, F, H, W], tokens (f h w), features (pf p1 p2 c)).
    const auto v = Tensor<float>::randn({1, C, F, H, W}, 2);
    const auto a = vit3d::rearrange(v, "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
                                    {{"pf", pf}, {"p1", p1}, {"p2", p2}});
    ASSERT_EQ(a.shape(), (Shape{1, (F / pf) * (H / p1) * (W / p2), pf * p1 * p2 * C}));
    // Reg2RG / MONAI ([B, C, H, W, D], tokens (h w f), features (p1 p2 pf c)).
    const auto u = Tensor<float>::randn({1, C, H, W, F}, 3);
    const auto b = vit3d::rearrange(u, "b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)",
                                    {{"pf", pf}, {"p1", p1}, {"p2", p2}});
    for (Index c = 0; c < C; ++c)
        for (Index f = 0; f < F; ++f)
            for (Index y = 0; y < H; ++y)
                for (Index x = 0; x < W; ++x) {
                    const Index ta = ((f / pf) * (H / p1) + y / p1) * (W / p2) + x / p2;
                    const Index fa = (((f % pf) * p1 + y % p1) * p2 + x % p2) * C + c;
                    ASSERT_EQ(a(0, ta, fa), v(0, c, f, y, x));
                    const Index tb = ((y / p1) * (W / p2) + x / p2) * (F / pf) + f / pf;
                    const Index fb = (((y % p1) * p2 + x % p2) * pf + f % pf) * C + c;
                    ASSERT_EQ(b(0, tb, fb), u(0, c, y, x, f));
                }
}

TEST(Rearrange, LargeTransposeUsesEveryPathAndStaysExact) {
    // Big enough to run in parallel (above the threshold), with a transpose inner layout (tiled path).
    const auto x = Tensor<float>::randn({3, 257, 129, 5}, 4);
    const auto y = vit3d::rearrange(x, "a b c d -> c (a d) b");
    ASSERT_EQ(y.shape(), (Shape{129, 15, 257}));
    for (Index a = 0; a < 3; ++a)
        for (Index b = 0; b < 257; ++b)
            for (Index c = 0; c < 129; ++c)
                for (Index d = 0; d < 5; ++d) ASSERT_EQ(y(c, a * 5 + d, b), x(a, b, c, d));
}

TEST(Rearrange, LargeVolumePatchifyReadsInSourceOrderAndStaysExact) {
    // Above a million elements with contiguous 16-pixel runs: the copy may walk in input order.
    const Index F = 16, H = 256, W = 256, pf = 4, p = 16;
    const auto v = Tensor<float>::randn({1, 1, F, H, W}, 9);
    const auto t = vit3d::rearrange(v, "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
                                    {{"pf", pf}, {"p1", p}, {"p2", p}});
    for (Index f = 0; f < F; ++f)
        for (Index y = 0; y < H; ++y)
            for (Index x = 0; x < W; ++x) {
                const Index token = ((f / pf) * (H / p) + y / p) * (W / p) + x / p;
                const Index feature = ((f % pf) * p + y % p) * p + x % p;
                ASSERT_EQ(t(0, token, feature), v(0, 0, f, y, x));
            }
}

TEST(Rearrange, WorksOnDoubleAndIntegerTensors) {
    const auto x = Tensor<double>::randn({2, 3, 4}, 5);
    EXPECT_EQ(vit3d::rearrange(x, "a b c -> c a b"), x.permute({2, 0, 1}));
    const auto i = Tensor<int>::arange(24).reshape({2, 3, 4});
    EXPECT_EQ(vit3d::rearrange(i, "a b c -> (a b c)"), Tensor<int>::arange(24));
}

TEST(Rearrange, StacksAListOfTensorsAlongANewLeadingAxis) {
    std::vector<Tensor<float>> images;
    for (int s = 0; s < 4; ++s) images.push_back(Tensor<float>::randn({3, 5}, 10 + s));
    const auto y = vit3d::rearrange(images, "b h w -> h (b w)");
    ASSERT_EQ(y.shape(), (Shape{3, 20}));
    for (Index b = 0; b < 4; ++b)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 5; ++w) ASSERT_EQ(y(h, b * 5 + w), images[b](h, w));
}

// Random patterns: split each input axis into a composition, permute and regroup; the inverse pattern
// must restore the input exactly.
TEST(Rearrange, PatternThenItsInverseIsTheIdentityOnRandomShapes) {
    std::mt19937 rng(20261123);
    const std::string names = "abcdefgh";
    for (int trial = 0; trial < 200; ++trial) {
        const int axes = 1 + static_cast<int>(rng() % 7);
        std::vector<Index> len(axes);
        for (auto& l : len) l = 1 + static_cast<Index>(rng() % 4);
        std::vector<int> order(axes);
        for (int i = 0; i < axes; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        // Group consecutive axes of a sequence into compositions of 1 to 3 axes.
        auto group = [&](const std::vector<int>& seq, Shape* shape) {
            std::string side;
            for (std::size_t i = 0; i < seq.size();) {
                const std::size_t k = std::min<std::size_t>(1 + rng() % 3, seq.size() - i);
                std::string g;
                Index product = 1;
                for (std::size_t j = i; j < i + k; ++j) {
                    g += (j > i ? " " : "") + std::string(1, names[seq[j]]);
                    product *= len[seq[j]];
                }
                side += (side.empty() ? "" : " ") + (k > 1 ? "(" + g + ")" : g);
                if (shape) shape->push_back(product);
                i += k;
            }
            return side;
        };
        std::vector<int> natural(axes);
        for (int i = 0; i < axes; ++i) natural[i] = i;
        Shape in_shape;
        const std::string left = group(natural, &in_shape), right = group(order, nullptr);
        vit3d::AxisLengths lengths;
        for (int i = 0; i < axes; ++i) lengths.emplace_back(std::string(1, names[i]), len[i]);
        const auto x = Tensor<float>::randn(in_shape, trial);
        const auto y = vit3d::rearrange(x, left + " -> " + right, lengths);
        EXPECT_EQ(y.size(), x.size());
        const auto back = vit3d::rearrange(y, right + " -> " + left, lengths);
        ASSERT_EQ(back, x) << left << " -> " << right;
    }
}

TEST(Rearrange, CompiledPatternGivesTheSameResultAndKeepsItsLengths) {
    const vit3d::Rearrange patchify("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", {{"p1", 4}, {"p2", 4}});
    EXPECT_EQ(patchify.pattern(), "b c (h p1) (w p2) -> b (h w) (p1 p2 c)");
    EXPECT_EQ(patchify.axis_lengths().size(), 2u);
    const auto x = Tensor<float>::randn({2, 3, 8, 12}, 6);
    EXPECT_EQ(patchify(x), vit3d::rearrange(x, patchify.pattern(), patchify.axis_lengths()));
    EXPECT_EQ(patchify(x).shape(), (Shape{2, 6, 48}));
    const auto d = Tensor<double>::randn({1, 1, 4, 4}, 7);
    EXPECT_EQ(patchify(d).shape(), (Shape{1, 1, 16}));
}

TEST(Rearrange, IntoReusesTheOutputBufferAndChecksItsShape) {
    const vit3d::Rearrange to_tokens("b d h w -> b (h w) d");
    const auto x = Tensor<float>::randn({2, 5, 3, 4}, 11);
    auto out = Tensor<float>::zeros({2, 12, 5});
    const float* buffer = out.data();
    to_tokens.into(x, out);
    EXPECT_EQ(out.data(), buffer);
    EXPECT_EQ(out, to_tokens(x));
    auto wrong = Tensor<float>::zeros({2, 5, 12});
    EXPECT_THAT([&] { to_tokens.into(x, wrong); },
                ::testing::ThrowsMessage<vit3d::shape_error>(
                    HasSubstr("output tensor has shape [2, 5, 12], expected [2, 12, 5]")));
    const vit3d::Rearrange same("a b -> a b");
    auto y = Tensor<float>::randn({3, 4}, 12);
    EXPECT_THAT([&] { same.into(y, y); },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("must not be the input tensor")));
}

TEST(Rearrange, ParsesEachPatternOnceAndSharesIt) {
    const std::string pattern = "x y z -> z (y x)  ";
    const auto first = vit3d::einops::cached_pattern(pattern, vit3d::einops::Operation::rearrange);
    const auto again = vit3d::einops::cached_pattern(pattern, vit3d::einops::Operation::rearrange);
    EXPECT_EQ(first.get(), again.get());
    // The same text for another operation is validated by that operation's rules: a separate entry.
    const auto as_reduce = vit3d::einops::cached_pattern(pattern, vit3d::einops::Operation::reduce);
    EXPECT_NE(first.get(), as_reduce.get());
}

TEST(Rearrange, CompiledPatternIsSafeToShareAcrossThreads) {
    const vit3d::Rearrange r("b (h w) d -> b d h w", {{"h", 8}});
    const auto x = Tensor<float>::randn({2, 64, 33}, 8);
    const auto expected = r(x);
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            bool all = true;
            for (int i = 0; i < 20; ++i) all = all && r(x) == expected;
            ok[t] = all;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST(Rearrange, IndivisibleAxisErrorNamesPatternAxisAndLengths) {
    const Tensor<float> x({1, 3, 30, 32});
    const std::string msg = pattern_error_message([&] {
        vit3d::rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", {{"p1", 16}, {"p2", 16}});
    });
    EXPECT_THAT(msg, AllOf(HasSubstr("vit3d::rearrange(\"b c (h p1) (w p2) -> b (h w) (p1 p2 c)\")"),
                           HasSubstr("input axis 2 (h p1) has length 30, not divisible by p1=16"),
                           HasSubstr("input shape [1, 3, 30, 32]")));
}

TEST(Rearrange, ErrorsNameTheOffendingAxis) {
    const Tensor<float> x({2, 3});
    const Tensor<float> six({6});
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(x, "a b -> a"); }),
                HasSubstr("'b' appear on one side only"));
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(x, "a a -> a"); }),
                HasSubstr("duplicate axis 'a'"));
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(x, "a b c -> a b c"); }),
                HasSubstr("expected an input of rank 3, got rank 2"));
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(x, "a b c ... -> a b c ..."); }),
                HasSubstr("expected an input of rank >= 3, got rank 2"));
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(six, "(a b) -> a b"); }),
                HasSubstr("cannot infer the lengths of 'a', 'b' in input axis 0 (a b)"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(six, "(a b) -> a b", {{"a", 2}, {"b", 2}});
                }),
                HasSubstr("input axis 0 (a b) has length 6, expected 4 (a=2, b=2)"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(x, "a b -> b a", {{"c", 3}});
                }),
                HasSubstr("axis 'c' is given a length but is not in the pattern"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(x, "a b -> b a", {{"a", 2}, {"a", 2}});
                }),
                HasSubstr("axis 'a' is given a length twice"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(x, "a b -> b a", {{"a", -2}});
                }),
                HasSubstr("axis 'a' is given the negative length -2"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(x, "a b -> b a", {{"_a", 2}});
                }),
                HasSubstr("invalid axis name '_a' in the axis lengths"));
    EXPECT_THAT(pattern_error_message([&] {
                    vit3d::rearrange(six, "(a b) -> a b", {{"b", 0}});
                }),
                HasSubstr("cannot infer the length of 'a'"));
    EXPECT_THAT(pattern_error_message([&] { vit3d::rearrange(x, "a 1 -> a"); }),
                HasSubstr("input axis 1 '1' has length 3, expected 1"));
}

TEST(Rearrange, CompiledPatternRejectsBadLengthsAtConstruction) {
    EXPECT_THROW(vit3d::Rearrange("a b -> b a", {{"c", 1}}), vit3d::pattern_error);
    EXPECT_THROW(vit3d::Rearrange("a b -> a"), vit3d::pattern_error);
}

TEST(Rearrange, ZeroLengthAxesGiveEmptyResults) {
    const Tensor<float> x({0, 3, 4});
    EXPECT_EQ(vit3d::rearrange(x, "a b c -> c (a b)").shape(), (Shape{4, 0}));
    EXPECT_EQ(vit3d::rearrange(x, "a b (c d) -> d b a c", {{"d", 2}}).shape(), (Shape{2, 3, 0, 2}));
}

}  // namespace
