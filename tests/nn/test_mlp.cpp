// The MLP runs its activation inside fc1's GEMM and its gated kinds as one gated GEMM (nn/mlp.hpp). Against
// the unfused computation written out here (fc1, the activation, the gate's product, as separate passes):
// equal bit for bit for every kind, with and without biases and the hidden norm, hidden widths on both sides
// of a half-panel, few and many rows, one and two threads, at every instruction-set level, float and double,
// with packs kept, made per call (packing off) or for products too large to keep one. The gated pack stands
// for fc1's and fc1_x's own: pack_weights counts it and no Linear pack of fc1; a write to any of its four
// tensors replaces it; the verified mode catches a write through a stale pointer; copies keep no pack;
// concurrent forwards agree.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/weight_packing.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
using vit3d::WeightPacking;
namespace nn = vit3d::nn;

template <class T>
class FusedMlp : public ::testing::Test {
  protected:
    void TearDown() override {
        vit3d::set_weight_packing(WeightPacking::cached);
        vit3d::set_isa_cap(vit3d::Isa::avx512);
        vit3d::set_num_threads(0);
    }
};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FusedMlp, Types);

template <class T>
nn::Mlp<T> random_mlp(nn::MlpKind kind, Index dim, Index hidden, bool bias, bool norm, nn::Activation act) {
    nn::MlpConfig c;
    c.dim = dim;
    c.hidden = hidden;
    c.kind = kind;
    c.activation = act;
    c.bias = bias;
    c.norm = norm;
    nn::Mlp<T> mlp(c);
    std::uint64_t seed = 1;
    mlp.visit_parameters([&](const std::string&, Tensor<T>& p) { p = Tensor<T>::randn(p.shape(), seed++); });
    return mlp;
}

// fc2(norm(h)) with h from fc1 and the activation as separate passes, the gate's product element by element.
template <class T>
Tensor<T> unfused(const nn::Mlp<T>& mlp, const Tensor<T>& x) {
    const Index H = mlp.hidden();
    Tensor<T> h = mlp.fc1.forward(x);
    if (mlp.kind == nn::MlpKind::mlp) {
        nn::apply_activation(h, mlp.activation);
    } else if (mlp.kind == nn::MlpKind::swiglu) {
        nn::apply_activation(h, mlp.activation);
        const Tensor<T> v = mlp.fc1_x->forward(x);
        for (Index i = 0; i < h.size(); ++i) h.data()[i] = h.data()[i] * v.data()[i];
    } else {
        const Index rows = h.size() / (2 * H), gate = mlp.kind == nn::MlpKind::glu ? H : 0;
        Shape shape = h.shape();
        shape.back() = H;
        Tensor<T> out = Tensor<T>::empty(shape);
        for (Index r = 0; r < rows; ++r) {
            T* row = h.data() + r * 2 * H;
            nn::apply_activation_range(row + gate, H, mlp.activation);
            for (Index j = 0; j < H; ++j) out.data()[r * H + j] = row[gate + j] * row[H - gate + j];
        }
        h = out;
    }
    if (mlp.norm) h = mlp.norm->forward(h);
    return mlp.fc2.forward(h);
}

TYPED_TEST(FusedMlp, EveryKindEqualsItsUnfusedComputationBitForBit) {
    using T = TypeParam;
    for (nn::MlpKind kind :
         {nn::MlpKind::mlp, nn::MlpKind::glu, nn::MlpKind::swiglu_packed, nn::MlpKind::swiglu})
        for (Index hidden : {7, 32, 45})
            for (bool bias : {true, false}) {
                const bool norm = hidden == 45;
                const nn::Activation act = hidden == 7    ? nn::Activation::silu
                                           : hidden == 32 ? nn::Activation::gelu_tanh
                                                          : nn::Activation::sigmoid;
                const nn::Mlp<T> mlp = random_mlp<T>(kind, 19, hidden, bias, norm, act);
                for (Index rows : {1, 13, 300}) {
                    const Tensor<T> x =
                        Tensor<T>::randn({1, rows, 19}, 40 + static_cast<std::uint64_t>(rows));
                    vit3d::test::for_each_isa([&](vit3d::Isa) {
                        for (int threads : {1, 2}) {
                            vit3d::set_num_threads(threads);
                            const Tensor<T> expected = unfused(mlp, x);
                            for (int call = 0; call < 2; ++call)  // packs the weights, then uses the pack
                                ASSERT_TRUE(mlp.forward(x) == expected)
                                    << vit3d::enum_name(kind) << " hidden " << hidden
                                    << (bias ? "" : " no bias") << ", rows " << rows << ", " << threads
                                    << " threads, call " << call;
                        }
                    });
                }
            }
}

TYPED_TEST(FusedMlp, PackingOffAndProductsTooLargeToKeepAPackGiveTheSameBits) {
    using T = TypeParam;
    const nn::Mlp<T> mlp = random_mlp<T>(nn::MlpKind::swiglu, 8, 21, true, false, nn::Activation::silu);
    const Tensor<T> many = Tensor<T>::randn({vit3d::detail::packed_weight_max_rows + 3, 8}, 5);
    const Tensor<T> expected = unfused(mlp, many);
    EXPECT_TRUE(mlp.forward(many) == expected);
    EXPECT_EQ(mlp.packed_weight_bytes(), 0) << "a product of many rows keeps no pack";
    vit3d::set_weight_packing(WeightPacking::off);
    EXPECT_TRUE(mlp.forward(many.narrow(0, 0, 10)) == unfused(mlp, many.narrow(0, 0, 10)));
    EXPECT_EQ(mlp.packed_weight_bytes(), 0);
}

TEST(FusedMlpPacks, TheGatedPackStandsForFc1sAndEveryWriteReplacesIt) {
    if (!vit3d::detail::own_gemm_runs<float>) GTEST_SKIP() << "VIT3D_USE_BLAS build: no packs are kept";
    nn::Mlp<float> mlp = random_mlp<float>(nn::MlpKind::swiglu, 16, 40, true, false, nn::Activation::silu);
    const Tensor<float> x = Tensor<float>::randn({3, 16}, 9);
    const Index bytes = nn::pack_weights(mlp);
    EXPECT_GT(mlp.packed_weight_bytes(), 0);
    EXPECT_EQ(mlp.fc1.packed_weight_bytes(), 0) << "fc1_g is packed with fc1_x, not on its own";
    EXPECT_EQ(mlp.fc1_x->packed_weight_bytes(), 0);
    EXPECT_EQ(bytes, mlp.packed_weight_bytes() + mlp.fc2.packed_weight_bytes());
    EXPECT_EQ(nn::packed_weight_bytes(mlp), bytes);
    // A write to each source tensor through the tensor is seen at the next forward.
    const std::vector<Tensor<float>*> sources{&mlp.fc1.weight, &*mlp.fc1.bias, &mlp.fc1_x->weight,
                                              &*mlp.fc1_x->bias};
    for (Tensor<float>* source : sources) {
        (void)mlp.forward(x);
        source->data()[source->size() - 1] += 0.5f;
        ASSERT_TRUE(mlp.forward(x) == unfused(mlp, x))
            << "after writing a tensor of " << source->size() << " elements";
    }
}

TEST(FusedMlpPacks, VerifiedCatchesAWriteThroughAStalePointerAndCopiesKeepNoPack) {
    if (!vit3d::detail::own_gemm_runs<float>) GTEST_SKIP() << "VIT3D_USE_BLAS build: no packs are kept";
    nn::Mlp<float> mlp = random_mlp<float>(nn::MlpKind::glu, 16, 40, true, false, nn::Activation::sigmoid);
    const Tensor<float> x = Tensor<float>::randn({3, 16}, 9);
    float* stale = mlp.fc1.weight.data();
    (void)mlp.forward(x);
    const nn::Mlp<float> copy = mlp;
    EXPECT_EQ(copy.packed_weight_bytes(), 0);
    stale[5] += 1.0f;  // the tensor cannot see this write
    vit3d::set_weight_packing(WeightPacking::verified);
    EXPECT_THROW((void)mlp.forward(x), vit3d::stale_weights_error);
    // The biases are copied into the pack too: a stale write to one is caught as well.
    vit3d::set_weight_packing(WeightPacking::cached);
    mlp.fc1.weight.data()[5] -= 1.0f;  // a write through the tensor: a fresh pack
    float* stale_bias = mlp.fc1.bias->data();
    (void)mlp.forward(x);
    stale_bias[3] += 1.0f;
    vit3d::set_weight_packing(WeightPacking::verified);
    EXPECT_THROW((void)mlp.forward(x), vit3d::stale_weights_error);
    vit3d::set_weight_packing(WeightPacking::cached);
}

// Concurrent forwards of one gated MLP: the first ones race to make the pack, all agree (run under TSan
// in CI).
TEST(FusedMlpPacks, SafeToShareAcrossThreads) {
    const nn::Mlp<float> mlp =
        random_mlp<float>(nn::MlpKind::swiglu, 24, 70, true, true, nn::Activation::silu);
    const Tensor<float> x = Tensor<float>::randn({10, 24}, 20);
    const Tensor<float> expected = unfused(mlp, x);
    std::vector<Tensor<float>> results(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < results.size(); ++t)
        threads.emplace_back([&, t] {
            for (int call = 0; call < 3; ++call) results[t] = mlp.forward(x);
        });
    for (auto& thread : threads) thread.join();
    for (const Tensor<float>& y : results) EXPECT_TRUE(y == expected);
}

TEST(FusedMlpPacks, AGatedFc1ThatDoesNotFitIsNamed) {
    nn::Mlp<float> mlp = random_mlp<float>(nn::MlpKind::swiglu, 16, 40, true, false, nn::Activation::silu);
    mlp.fc1_x->weight = Tensor<float>::zeros({39, 16});
    mlp.fc1_x->bias = Tensor<float>::zeros({39});
    try {
        (void)mlp.forward(Tensor<float>::zeros({2, 16}));
        FAIL() << "expected a shape error";
    } catch (const vit3d::shape_error& e) {
        EXPECT_NE(std::string(e.what()).find("fc1_x weight [39, 16]"), std::string::npos) << e.what();
    }
}

}  // namespace
