// The name tables of the enums (core/enum_names.hpp): each complete and read both ways. The tables of the
// image and NIfTI enums are checked in test_image.cpp and test_nifti.cpp, which have those readers.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <optional>
#include <vit3d.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/loaded_model.hpp>
#include <vit3d/io/safetensors.hpp>
#include <vit3d/transforms/resample.hpp>

#include "support/enum_tables.hpp"

namespace vit3d_enum_test {

// An enum whose table misses an enumerator, and one whose table names a value that is no enumerator: the
// checks must catch both.
enum class Unnamed { a, b, c };
constexpr auto enum_names(Unnamed) {
    return vit3d::enum_table<Unnamed>({{Unnamed::a, "a"}, {Unnamed::b, "b"}});
}
enum class Stray { a, b };
constexpr auto enum_names(Stray) {
    return vit3d::enum_table<Stray>({{Stray::a, "a"}, {Stray::b, "b"}, {static_cast<Stray>(2), "c"}});
}

}  // namespace vit3d_enum_test

namespace {

namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
namespace nn = vit3d::nn;
namespace models = vit3d::models;
using vit3d::test::expect_complete_enum_table;

TEST(EnumNames, EveryTableNamesEveryEnumerator) {
    expect_complete_enum_table<vit3d::Isa, 8>();
    expect_complete_enum_table<vit3d::Precision, 8>();
    expect_complete_enum_table<vit3d::Reduction, 8>();
    expect_complete_enum_table<vit3d::einops::Operation, 8>();
    expect_complete_enum_table<nn::Activation, 8>();
    expect_complete_enum_table<nn::PatchProjection, 8>();
    expect_complete_enum_table<nn::FeatureOrder, 8>();
    expect_complete_enum_table<nn::SinCosVariant, 8>();
    expect_complete_enum_table<nn::NormPlacement, 8>();
    expect_complete_enum_table<models::Pooling, 8>();
    expect_complete_enum_table<models::PosEmbedKind, 8>();
    expect_complete_enum_table<io::DType, 8>();
    expect_complete_enum_table<io::NpyDType, 16>();
    expect_complete_enum_table<io::ModelOutput, 8>();
    expect_complete_enum_table<transforms::ResizeFilter, 8>();
}

TEST(EnumNames, TheCheckFindsAMissingOrAStrayName) {
    if (!vit3d::test::can_list_enumerators) GTEST_SKIP() << "this compiler cannot list enumerators";
    EXPECT_NONFATAL_FAILURE((expect_complete_enum_table<vit3d_enum_test::Unnamed, 8>()),
                            "enumerator 2 has no name in the table");
    EXPECT_NONFATAL_FAILURE((expect_complete_enum_table<vit3d_enum_test::Stray, 8>()),
                            "the table names 2, which is no enumerator");
}

TEST(EnumNames, NameOfValueAndValueOfName) {
    EXPECT_STREQ(vit3d::enum_name(models::Pooling::mean), "mean");
    EXPECT_STREQ(vit3d::enum_name(io::NpyDType::boolean), "bool");
    EXPECT_EQ(vit3d::enum_from_name<nn::Activation>("gelu_tanh"), nn::Activation::gelu_tanh);
    EXPECT_EQ(vit3d::enum_from_name<nn::Activation>("GELU"), std::nullopt);
    EXPECT_EQ(vit3d::enum_from_name<nn::Activation>(""), std::nullopt);
}

TEST(EnumNames, AValueOutsideTheTableHasNoName) {
    EXPECT_STREQ(vit3d::enum_name(static_cast<models::Pooling>(7)), "?");
    EXPECT_EQ(vit3d::enum_name(static_cast<models::Pooling>(7), nullptr), nullptr);
}

TEST(EnumNames, ListsTheValidNamesInTableOrder) {
    EXPECT_EQ(vit3d::enum_name_list<models::Pooling>(),
              "\"cls\", \"mean\", \"max\", \"mean_max\", \"attention\", \"none\"");
    EXPECT_EQ((vit3d::enum_name_list<models::Pooling>("", ", ", " or ")),
              "cls, mean, max, mean_max, attention or none");
    EXPECT_EQ((vit3d::enum_name_list<transforms::ResizeFilter>("", ", ", " or ")), "bilinear or bicubic");
}

// The names the named functions give are the tables'.
TEST(EnumNames, NamedFunctionsReadTheTables) {
    EXPECT_STREQ(vit3d::isa_name(vit3d::Isa::avx512), "avx512");
    EXPECT_EQ(vit3d::parse_isa("avx2"), vit3d::Isa::avx2);
    EXPECT_STREQ(vit3d::reduction_name(vit3d::Reduction::prod), "prod");
    EXPECT_STREQ(vit3d::einops::operation_name(vit3d::einops::Operation::repeat), "repeat");
    EXPECT_STREQ(nn::activation_name(nn::Activation::identity), "identity");
    EXPECT_STREQ(io::dtype_name(io::DType::BF16), "BF16");
    EXPECT_STREQ(io::npy_dtype_name(io::NpyDType::uint16), "uint16");
    EXPECT_STREQ(io::output_name(io::ModelOutput::token_grid), "token_grid");
}

TEST(EnumNames, AnUnknownNameIsRefusedListingTheValidOnes) {
    try {
        vit3d::parse_isa("AVX2", "VIT3D_ISA");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()),
                  "VIT3D_ISA: expected an instruction-set level generic, avx2 or avx512, got 'AVX2'");
    }
}

}  // namespace
