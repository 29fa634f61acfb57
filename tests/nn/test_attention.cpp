// MultiHeadAttention against an explicit loop implementation of softmax(q k^T * scale + bias) v, with
// masks, biases, cross-attention, independent head_dim and no output projection. Parity with PyTorch's
// own modules comes from the fixture tests.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/nn/attention.hpp>

#include "support/isa_testing.hpp"
#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::nn::AttentionInputs;
using vit3d::nn::MultiHeadAttention;

template <class T>
MultiHeadAttention<T> random_attention(Index dim, Index heads, Index head_dim, bool with_proj,
                                       std::uint64_t seed) {
    vit3d::nn::MultiHeadAttentionConfig config;
    config.dim = dim;
    config.heads = heads;
    config.head_dim = head_dim;
    config.out_proj = with_proj;
    MultiHeadAttention<T> a(config);
    a.qkv.weight = Tensor<T>::randn(a.qkv.weight.shape(), seed, T(0), T(0.3));
    a.qkv.bias = Tensor<T>::randn({3 * a.inner_dim()}, seed + 1, T(0), T(0.1));
    if (with_proj) {
        a.proj->weight = Tensor<T>::randn(a.proj->weight.shape(), seed + 2, T(0), T(0.3));
        a.proj->bias = Tensor<T>::randn({dim}, seed + 3, T(0), T(0.1));
    }
    return a;
}

// The definition, one element at a time, in double.
template <class T>
Tensor<T> reference_attention(const MultiHeadAttention<T>& a, const Tensor<T>& x, const Tensor<T>& ctx,
                              const Tensor<T>* bias, const Tensor<std::uint8_t>* allowed,
                              Tensor<T>* weights) {
    const Index B = x.dim(0), Nq = x.dim(1), Nk = ctx.dim(1), D = x.dim(2), H = a.heads, hd = a.head_dim;
    const Index I = H * hd;
    auto project = [&](const Tensor<T>& in, Index block, Index b, Index n, Index k) {
        double s = static_cast<double>((*a.qkv.bias)(block * I + k));
        for (Index d = 0; d < D; ++d) s += static_cast<double>(a.qkv.weight(block * I + k, d)) * in(b, n, d);
        return s;
    };
    auto at = [](const Tensor<T>* t, Index b, Index h, Index i, Index j) -> double {
        // broadcast a rank-4 operand with unit axes
        const auto& s = t->shape();
        return static_cast<double>(
            (*t)(s[0] == 1 ? 0 : b, s[1] == 1 ? 0 : h, s[2] == 1 ? 0 : i, s[3] == 1 ? 0 : j));
    };
    Tensor<T> merged({B, Nq, I});
    if (weights) *weights = Tensor<T>({B, H, Nq, Nk});
    for (Index b = 0; b < B; ++b)
        for (Index h = 0; h < H; ++h)
            for (Index i = 0; i < Nq; ++i) {
                std::vector<double> s(static_cast<std::size_t>(Nk));
                double max = -INFINITY;
                for (Index j = 0; j < Nk; ++j) {
                    double dot = 0;
                    for (Index k = 0; k < hd; ++k)
                        dot += project(x, 0, b, i, h * hd + k) * project(ctx, 1, b, j, h * hd + k);
                    s[j] = dot / std::sqrt(double(hd)) + (bias ? at(bias, b, h, i, j) : 0.0);
                    if (allowed) {
                        const auto& m = allowed->shape();
                        if (!(*allowed)(m[0] == 1 ? 0 : b, m[1] == 1 ? 0 : h, m[2] == 1 ? 0 : i,
                                        m[3] == 1 ? 0 : j))
                            s[j] = -INFINITY;
                    }
                    max = std::max(max, s[j]);
                }
                double sum = 0;
                for (Index j = 0; j < Nk; ++j) sum += s[j] = max == -INFINITY ? 0.0 : std::exp(s[j] - max);
                for (Index j = 0; j < Nk; ++j) {
                    const double p = sum > 0 ? s[j] / sum : 0.0;
                    if (weights) (*weights)(b, h, i, j) = static_cast<T>(p);
                    for (Index k = 0; k < hd; ++k)
                        merged(b, i, h * hd + k) += static_cast<T>(p * project(ctx, 2, b, j, h * hd + k));
                }
            }
    return a.proj ? a.proj->forward(merged) : merged;
}

template <class T>
class AttentionTyped : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AttentionTyped, Types);

template <class T>
double tolerance() {
    return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

TYPED_TEST(AttentionTyped, SelfAttentionMatchesTheDefinition) {
    using T = TypeParam;
    const auto a = random_attention<T>(12, 3, 0, true, 1);
    const auto x = Tensor<T>::randn({2, 7, 12}, 5);
    Tensor<T> weights, ref_weights;
    AttentionInputs<T> in;
    in.weights = &weights;
    const auto y = a.forward(x, in);
    const auto expected = reference_attention<T>(a, x, x, nullptr, nullptr, &ref_weights);
    EXPECT_TENSOR_CLOSE(y, expected, tolerance<T>(), tolerance<T>());
    EXPECT_TENSOR_CLOSE(weights, ref_weights, tolerance<T>(), tolerance<T>());
    const auto row_sums = vit3d::reduce(weights, "b h i j -> b h i", vit3d::Reduction::sum);
    EXPECT_TENSOR_CLOSE(row_sums, Tensor<T>::ones({2, 3, 7}), tolerance<T>(), tolerance<T>());
}

TYPED_TEST(AttentionTyped, BiasMaskAndCrossAttentionMatchTheDefinition) {
    using T = TypeParam;
    const auto a = random_attention<T>(8, 2, 5, true, 2);  // head_dim 5 != 8 / 2, as vit-pytorch allows
    const auto x = Tensor<T>::randn({2, 4, 8}, 6);
    const auto ctx = Tensor<T>::randn({2, 9, 8}, 7);
    const auto bias = Tensor<T>::randn({1, 2, 4, 9}, 8);  // per head, shared over the batch
    Tensor<std::uint8_t> allowed({2, 1, 1, 9});           // key padding: batch 1 sees only 5 keys
    allowed.fill(1);
    for (Index j = 5; j < 9; ++j) allowed(1, 0, 0, j) = 0;
    AttentionInputs<T> in;
    in.context = &ctx;
    in.bias = &bias;
    in.allowed = &allowed;
    Tensor<T> weights;
    in.weights = &weights;
    const auto y = a.forward(x, in);
    EXPECT_EQ(y.shape(), (Shape{2, 4, 8}));
    const auto expected = reference_attention<T>(a, x, ctx, &bias, &allowed, nullptr);
    EXPECT_TENSOR_CLOSE(y, expected, tolerance<T>(), tolerance<T>());
    for (Index j = 5; j < 9; ++j) EXPECT_EQ(weights(1, 1, 2, j), T(0));
}

TYPED_TEST(AttentionTyped, FullyMaskedQueryRowsAttendNothing) {
    using T = TypeParam;
    const auto a = random_attention<T>(6, 2, 0, false, 3);  // no output projection: see the raw head outputs
    const auto x = Tensor<T>::randn({1, 3, 6}, 9);
    Tensor<std::uint8_t> allowed({1, 1, 3, 3});
    allowed.fill(1);
    for (Index j = 0; j < 3; ++j) allowed(0, 0, 1, j) = 0;  // query 1 may attend no key
    AttentionInputs<T> in;
    in.allowed = &allowed;
    Tensor<T> weights;
    in.weights = &weights;
    const auto y = a.forward(x, in);
    for (Index d = 0; d < 6; ++d) {
        EXPECT_EQ(y(0, 1, d), T(0));
        EXPECT_TRUE(std::isfinite(y(0, 0, d)));
    }
    for (Index h = 0; h < 2; ++h)
        for (Index j = 0; j < 3; ++j) EXPECT_EQ(weights(0, h, 1, j), T(0));
    EXPECT_TENSOR_CLOSE(y, reference_attention<T>(a, x, x, nullptr, &allowed, nullptr), tolerance<T>(),
                        tolerance<T>());
}

TYPED_TEST(AttentionTyped, QueryWeightsAreTheRowsOfTheFullWeights) {
    using T = TypeParam;
    const auto a = random_attention<T>(12, 3, 0, true, 11);
    const Tensor<T> x = Tensor<T>::randn({2, 9, 12}, 12), ctx = Tensor<T>::randn({2, 7, 12}, 13);
    const Tensor<T> bias = Tensor<T>::randn({1, 3, 9, 7}, 14);
    Tensor<std::uint8_t> allowed = Tensor<std::uint8_t>::ones({2, 1, 1, 7});
    allowed(1, 0, 0, 3) = 0;
    // A distance bias with one prefix query and one prefix key.
    const std::vector<Index> q_coords{0, 0, 1, 1, 2, 2, 3, 3}, k_coords{3, 2, 1, 0, 0, 1};
    const Tensor<T> table = Tensor<T>::randn({3, 4}, 15), row = Tensor<T>::randn({3}, 16),
                    col = Tensor<T>::randn({3}, 17);
    vit3d::nn::DistanceBias<T> distance;
    distance.heads = 3, distance.distances = 4, distance.by_distance = table.data();
    distance.query_coords = q_coords.data(), distance.key_coords = k_coords.data();
    distance.query_prefix = 1, distance.key_prefix = 1;
    distance.query_prefix_bias = row.data(), distance.key_prefix_bias = col.data();
    AttentionInputs<T> in;
    in.context = &ctx;
    in.bias = &bias;
    in.allowed = &allowed;
    in.distance_bias = &distance;
    Tensor<T> weights;
    in.weights = &weights;
    a.forward(x, in);
    for (Index query : {0, 1, 5, 8}) {
        const Tensor<T> w = a.query_weights(x, query, in);
        ASSERT_EQ(w.shape(), (Shape{2, 3, 7}));
        EXPECT_TRUE(vit3d::test::TensorsClose(w, weights.narrow(2, query, 1).reshape({2, 3, 7}), 0.0,
                                              std::is_same_v<T, float> ? 1e-6 : 1e-14))
            << "query " << query;
    }
    EXPECT_THROW(a.query_weights(x, 9, in), vit3d::shape_error);
}

// One attention in its three layouts of the q/k/v projections: fused qkv (with the key bias zero, as EVA's
// keys have none), EVA's fused qkv without a key bias (q_bias, v_bias), and split q_proj, k_proj, v_proj,
// all with the same weights.
template <class T>
struct ProjectionLayouts {
    MultiHeadAttention<T> fused, keyless, split;
};

template <class T>
ProjectionLayouts<T> projection_layouts(Index dim, Index heads, std::uint64_t seed) {
    ProjectionLayouts<T> l{random_attention<T>(dim, heads, 0, true, seed), {}, {}};
    const Index I = l.fused.inner_dim();
    T* k_part = l.fused.qkv.bias->data() + I;
    for (Index j = 0; j < I; ++j) k_part[j] = T(0);
    vit3d::nn::MultiHeadAttentionConfig config;
    config.dim = dim;
    config.heads = heads;
    config.k_bias = false;
    l.keyless = MultiHeadAttention<T>(config);
    config.qkv_split = true;
    l.split = MultiHeadAttention<T>(config);
    EXPECT_FALSE(l.keyless.qkv.bias);
    EXPECT_TRUE(l.keyless.q_bias && l.keyless.v_bias && l.split.q_proj && !l.split.k_proj->bias);
    l.keyless.qkv.weight = l.fused.qkv.weight;
    l.keyless.q_bias = l.fused.qkv.bias->narrow(0, 0, I);
    l.keyless.v_bias = l.fused.qkv.bias->narrow(0, 2 * I, I);
    vit3d::nn::Linear<T>* parts[] = {&*l.split.q_proj, &*l.split.k_proj, &*l.split.v_proj};
    for (Index p = 0; p < 3; ++p) {
        parts[p]->weight = l.fused.qkv.weight.narrow(0, p * I, I);
        if (p != 1) parts[p]->bias = l.fused.qkv.bias->narrow(0, p * I, I);
    }
    l.keyless.proj = l.split.proj = l.fused.proj;
    return l;
}

// The split projections (q_proj, k_proj, v_proj) and EVA's fused qkv without a key bias (q_bias, v_bias)
// are the fused qkv with its rows and bias parts moved: the same outputs and the same query rows.
TYPED_TEST(AttentionTyped, SplitAndKeylessBiasLayoutsEqualTheFusedOne) {
    using T = TypeParam;
    const ProjectionLayouts<T> layouts = projection_layouts<T>(12, 3, 21);
    const auto &fused = layouts.fused, &keyless = layouts.keyless, &split = layouts.split;
    const Tensor<T> x = Tensor<T>::randn({2, 5, 12}, 22), ctx = Tensor<T>::randn({2, 4, 12}, 23);
    AttentionInputs<T> cross;
    cross.context = &ctx;
    for (const MultiHeadAttention<T>* other : {&keyless, &split}) {
        EXPECT_TENSOR_CLOSE(other->forward(x), fused.forward(x), tolerance<T>(), tolerance<T>());
        EXPECT_TENSOR_CLOSE(other->forward(x, cross), fused.forward(x, cross), tolerance<T>(),
                            tolerance<T>());
        EXPECT_TENSOR_CLOSE(other->query_weights(x, 3, cross), fused.query_weights(x, 3, cross),
                            tolerance<T>(), tolerance<T>());
    }
    std::vector<std::string> names;
    split.visit_parameters([&](const std::string& n, const Tensor<T>&) { names.push_back(n); }, "attn");
    EXPECT_EQ(names, (std::vector<std::string>{"attn.q_proj.weight", "attn.q_proj.bias", "attn.k_proj.weight",
                                               "attn.v_proj.weight", "attn.v_proj.bias", "attn.proj.weight",
                                               "attn.proj.bias"}));
}

// Self-attention applies EVA's q and v biases and the rotary embedding (interleaved pairs) inside the
// projections' GEMMs, as each block of their output is finished; cross-attention (here with x itself as the
// context) in passes after them. Both give the same outputs, for the fused, keyless and split layouts, with
// heads that straddle the GEMM's column panels (head_dim 40), at every instruction-set level; tables that
// rotate halves take the passes everywhere.
TYPED_TEST(AttentionTyped, RotaryEmbeddingInTheProjectionsEqualsItsPasses) {
    using T = TypeParam;
    const ProjectionLayouts<T> layouts = projection_layouts<T>(80, 2, 61);
    const auto &fused = layouts.fused, &keyless = layouts.keyless, &split = layouts.split;
    const Tensor<T> x = Tensor<T>::randn({2, 1 + 12, 80}, 62);
    for (bool rotate_half : {false, true}) {
        vit3d::nn::RotaryEmbeddingConfig rope;
        rope.head_dim = 40;
        rope.rotate_half = rotate_half;
        const vit3d::nn::RotaryTables<T> tables = vit3d::nn::rotary_tables<T>(rope, {3, 4});
        AttentionInputs<T> in;
        in.rotary = &tables;
        in.rotary_prefix = 1;
        AttentionInputs<T> passes = in;
        passes.context = &x;
        vit3d::test::for_each_isa([&](vit3d::Isa) {
            const Tensor<T> expected = fused.forward(x, passes);
            AttentionInputs<T> plain;
            ASSERT_FALSE(vit3d::test::TensorsClose(expected, fused.forward(x, plain), 1e-3, 1e-3));
            for (const MultiHeadAttention<T>* a : {&fused, &keyless, &split}) {
                EXPECT_TENSOR_CLOSE(a->forward(x, in), expected, tolerance<T>(), tolerance<T>())
                    << (a == &fused     ? "fused"
                        : a == &keyless ? "keyless"
                                        : "split")
                    << ", rotate_half " << rotate_half;
                EXPECT_TENSOR_CLOSE(a->forward(x, passes), expected, tolerance<T>(), tolerance<T>());
            }
        });
    }
}

// Grouped-query attention is the full-heads attention whose key and value projections repeat each key/value
// head for the query heads of its group (transformers' repeat_kv), q/k norms and rotary tables included.
TYPED_TEST(AttentionTyped, GroupedQueryAttentionIsFullAttentionWithRepeatedKeyValueHeads) {
    using T = TypeParam;
    vit3d::nn::MultiHeadAttentionConfig config;
    config.dim = 16;
    config.heads = 4;
    config.qkv_split = true;
    config.qk_norm = true;
    MultiHeadAttention<T> full(config);
    config.kv_heads = 2;
    MultiHeadAttention<T> grouped(config);
    ASSERT_EQ(grouped.k_proj->weight.shape(), (Shape{8, 16}));
    std::uint64_t seed = 40;
    grouped.visit_parameters(
        [&](const std::string&, Tensor<T>& t) { t = Tensor<T>::randn(t.shape(), ++seed, T(0), T(0.3)); });
    full.q_proj = grouped.q_proj, full.proj = grouped.proj, full.q_norm = grouped.q_norm;
    full.k_norm = grouped.k_norm;
    for (auto [to, from] :
         {std::pair{&*full.k_proj, &*grouped.k_proj}, std::pair{&*full.v_proj, &*grouped.v_proj}})
        for (Index h = 0; h < 4; ++h) {  // query head h reads key/value head h / 2
            const Index source = h / 2;
            for (Index r = 0; r < 4; ++r) {
                for (Index c = 0; c < 16; ++c) to->weight(h * 4 + r, c) = from->weight(source * 4 + r, c);
                (*to->bias)(h * 4 + r) = (*from->bias)(source * 4 + r);
            }
        }
    vit3d::nn::RotaryEmbeddingConfig rope;
    rope.head_dim = 4;
    const vit3d::nn::RotaryTables<T> tables = vit3d::nn::rotary_tables<T>(rope, {2, 3});
    const Tensor<T> x = Tensor<T>::randn({2, 1 + 6, 16}, 50);
    AttentionInputs<T> in;
    in.rotary = &tables;
    in.rotary_prefix = 1;
    EXPECT_TENSOR_CLOSE(grouped.forward(x, in), full.forward(x, in), tolerance<T>(), tolerance<T>());
    EXPECT_TENSOR_CLOSE(grouped.query_weights(x, 2, in), full.query_weights(x, 2, in), tolerance<T>(),
                        tolerance<T>());
    vit3d::nn::MultiHeadAttentionConfig fused = config;
    fused.qkv_split = false;
    EXPECT_THROW(MultiHeadAttention<T>{fused}, vit3d::config_error);
    fused.qkv_split = true;
    fused.kv_heads = 3;
    EXPECT_THROW(MultiHeadAttention<T>{fused}, vit3d::config_error);
}

// With rotary tables the class token's row of scores (query_weights, for cls_attention) is still the row of
// the full weights: the query is rotated by its own row of the tables, or not at all in the prefix.
TYPED_TEST(AttentionTyped, QueryWeightsWithRotaryTablesAreRowsOfTheFullWeights) {
    using T = TypeParam;
    const auto a = random_attention<T>(16, 2, 8, true, 31);
    vit3d::nn::RotaryEmbeddingConfig rope;
    rope.head_dim = 8;
    const vit3d::nn::RotaryTables<T> tables = vit3d::nn::rotary_tables<T>(rope, {2, 3});
    const Tensor<T> x = Tensor<T>::randn({2, 1 + 6, 16}, 32);
    AttentionInputs<T> in;
    in.rotary = &tables;
    in.rotary_prefix = 1;
    Tensor<T> weights;
    in.weights = &weights;
    const Tensor<T> rotated = a.forward(x, in);
    AttentionInputs<T> plain;
    EXPECT_FALSE(vit3d::test::TensorsClose(rotated, a.forward(x, plain), 1e-3, 1e-3));  // the tables act
    for (Index query : {0, 1, 6}) {
        const Tensor<T> w = a.query_weights(x, query, in);
        EXPECT_TRUE(vit3d::test::TensorsClose(w, weights.narrow(2, query, 1).reshape({2, 2, 7}), 0.0,
                                              std::is_same_v<T, float> ? 1e-6 : 1e-14))
            << "query " << query;
    }
}

TEST(Attention, NamesItsParametersLikeTimm) {
    const auto a = random_attention<float>(8, 2, 0, true, 4);
    std::vector<std::string> names;
    a.visit_parameters([&](const std::string& n, const Tensor<float>&) { names.push_back(n); },
                       "blocks.0.attn");
    EXPECT_EQ(names, (std::vector<std::string>{"blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
                                               "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias"}));
    EXPECT_EQ(vit3d::nn::count_parameters(a), 24 * 8 + 24 + 8 * 8 + 8);
}

TEST(Attention, RejectsBadShapesWithClearMessages) {
    const auto a = random_attention<float>(8, 2, 0, true, 5);
    EXPECT_THAT(
        [&] {
            a.forward(Tensor<float>({2, 3, 7}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("expected x [B, N, 8], got [2, 3, 7]")));
    const Tensor<float> x({2, 3, 8});
    const Tensor<float> ctx({1, 4, 8});
    AttentionInputs<float> in;
    in.context = &ctx;
    EXPECT_THAT([&] { a.forward(x, in); }, ::testing::ThrowsMessage<vit3d::shape_error>(
                                               HasSubstr("expected context [2, Nk, 8], got [1, 4, 8]")));
    const Tensor<float> bias({2, 3, 3, 3});
    AttentionInputs<float> with_bias;
    with_bias.bias = &bias;
    EXPECT_THAT([&] { a.forward(x, with_bias); }, ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr(
                                                      "does not broadcast to the scores [2, 2, 3, 3]")));
    vit3d::nn::MultiHeadAttentionConfig indivisible;
    indivisible.dim = 10;
    indivisible.heads = 3;
    EXPECT_THAT([&] { MultiHeadAttention<float>{indivisible}; },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("got dim 10, 3 heads, head_dim 0")));
    vit3d::nn::MultiHeadAttentionConfig no_projection;
    no_projection.dim = 8;
    no_projection.heads = 2;
    no_projection.head_dim = 5;
    no_projection.out_proj = false;
    EXPECT_THAT([&] { MultiHeadAttention<float>{no_projection}; },
                ::testing::ThrowsMessage<vit3d::shape_error>(
                    HasSubstr("without an output projection heads * head_dim must equal dim 8, got 2 * 5")));
    auto broken = a;
    broken.qkv.weight = Tensor<float>({20, 8});
    EXPECT_THAT([&] { broken.forward(x); }, ::testing::ThrowsMessage<vit3d::shape_error>(
                                                HasSubstr("parameters do not fit 2 heads of 4")));
}

}  // namespace
