// The einops pattern parser on its own: structure of parsed sides and every syntax error.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vit3d.hpp>

namespace {

using ::testing::HasSubstr;
using vit3d::einops::Axis;
using vit3d::einops::Operation;
using vit3d::einops::parse_pattern;

TEST(Pattern, ParsesNamesCompositionsUnitsAndEllipsis) {
    const auto p = parse_pattern("b c (h p1) 1 () ... -> b (... c) (h p1)", Operation::rearrange);
    ASSERT_EQ(p.left.groups.size(), 6u);
    EXPECT_EQ(p.left.groups[2].text, "(h p1)");
    EXPECT_TRUE(p.left.groups[2].parenthesized);
    ASSERT_EQ(p.left.groups[2].axes.size(), 2u);
    EXPECT_EQ(p.left.groups[2].axes[1].name, "p1");
    EXPECT_TRUE(p.left.groups[3].axes.empty());  // "1"
    EXPECT_TRUE(p.left.groups[4].axes.empty());  // "()"
    EXPECT_TRUE(p.left.groups[5].is_bare_ellipsis());
    EXPECT_TRUE(p.left.has_ellipsis);
    EXPECT_FALSE(p.left.ellipsis_parenthesized);
    EXPECT_TRUE(p.right.ellipsis_parenthesized);
    EXPECT_EQ(p.left.names, (std::vector<std::string>{"b", "c", "h", "p1"}));
}

TEST(Pattern, UnitFactorInsideParenthesesIsIgnoredAndNumbersAreAnonymous) {
    const auto p = parse_pattern("(a 1 b) 3 -> a b", Operation::reduce);
    EXPECT_EQ(p.left.groups[0].axes.size(), 2u);
    EXPECT_EQ(p.left.groups[1].axes[0].kind, Axis::Kind::anonymous);
    EXPECT_EQ(p.left.groups[1].axes[0].length, 3);
    EXPECT_TRUE(p.left.has_non_unit_anonymous);
}

TEST(Pattern, AcceptsAxisNamesEinopsAccepts) {
    EXPECT_TRUE(vit3d::einops::is_valid_axis_name("a"));
    EXPECT_TRUE(vit3d::einops::is_valid_axis_name("batch_size"));
    EXPECT_TRUE(vit3d::einops::is_valid_axis_name("p1"));
    EXPECT_FALSE(vit3d::einops::is_valid_axis_name("_a"));
    EXPECT_FALSE(vit3d::einops::is_valid_axis_name("a_"));
    EXPECT_FALSE(vit3d::einops::is_valid_axis_name("1a"));
    EXPECT_FALSE(vit3d::einops::is_valid_axis_name(""));
    EXPECT_FALSE(vit3d::einops::is_valid_axis_name("a-b"));
}

struct BadPattern {
    const char* pattern;
    const char* message;
};

class PatternSyntaxError : public ::testing::TestWithParam<BadPattern> {};

TEST_P(PatternSyntaxError, ThrowsPatternErrorNamingTheProblem) {
    const BadPattern bad = GetParam();
    EXPECT_THAT(
        [&] { parse_pattern(bad.pattern, Operation::rearrange); },
        ::testing::ThrowsMessage<vit3d::pattern_error>(::testing::AllOf(
            HasSubstr(std::string("vit3d::rearrange(\"") + bad.pattern + "\")"), HasSubstr(bad.message))));
}

INSTANTIATE_TEST_SUITE_P(
    AllSyntaxErrors, PatternSyntaxError,
    ::testing::Values(
        BadPattern{"a b", "exactly one '->'"}, BadPattern{"a -> b -> a", "exactly one '->'"},
        BadPattern{"a (b -> a b", "'(' is never closed"}, BadPattern{"a b) -> a b", "')' without '('"},
        BadPattern{"a ((b)) -> a b", "parentheses do not nest"},
        BadPattern{"a-b -> a", "unknown character '-'"}, BadPattern{"a, b -> a b", "unknown character ','"},
        BadPattern{"a .. -> a", "one ellipsis '...' per side"},
        BadPattern{"... a ... -> a", "one ellipsis '...' per side"},
        BadPattern{"a... -> a", "the ellipsis '...' must stand alone"},
        BadPattern{"_a -> _a", "invalid axis name '_a'"},
        BadPattern{"a_ -> a_", "must not start or end with '_'"},
        BadPattern{"1a -> 1a", "must not start with a digit"}, BadPattern{"a a -> a", "duplicate axis 'a'"},
        BadPattern{"a 0 -> a", "must have a positive length"},
        BadPattern{"a 99999999999999999999 -> a", "too large"},
        BadPattern{"a 2 -> a", "anonymous axes other than 1 are not allowed in rearrange"},
        BadPattern{"a -> a ...", "ellipsis '...' on the right side but not on the left"},
        BadPattern{"(a ...) -> a ...", "inside parentheses is not allowed on the left"},
        BadPattern{"a ... -> a", "'...' appear on one side only"},
        BadPattern{"a b -> a", "'b' appear on one side only"}));

}  // namespace
