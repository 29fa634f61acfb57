// message() (core/message.hpp): how each kind of part is written, and detail::quoted against the JSON
// library whose output it replaces.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>
#include <vit3d.hpp>

namespace {

using vit3d::Index;
using vit3d::message;
using vit3d::Shape;

TEST(Message, StringsAsTheyAre) {
    const std::string s = "std::string";
    const std::string_view v = "view";
    const char* p = "pointer";
    EXPECT_EQ(message("literal ", s, " ", v, " ", p, ' ', 'c'), "literal std::string view pointer c");
    EXPECT_EQ(message(static_cast<const char*>(nullptr)), "(null)");
    EXPECT_EQ(message(), "");
}

TEST(Message, IntegersInDecimal) {
    EXPECT_EQ(message(0, " ", -42, " ", Index{1} << 40), "0 -42 1099511627776");
    EXPECT_EQ(message(std::numeric_limits<std::uint64_t>::max()), "18446744073709551615");
    EXPECT_EQ(message(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
    // Bytes are numbers: a label or an element read from a file, not a character.
    EXPECT_EQ(message(std::uint8_t{65}, " ", std::int8_t{-3}), "65 -3");
}

TEST(Message, BooleansAsTrueOrFalse) { EXPECT_EQ(message(true, " ", false), "true false"); }

TEST(Message, FloatingPointInTheShortestFormThatReadsBack) {
    EXPECT_EQ(message(0.1), "0.1");
    EXPECT_EQ(message(1e-6), "1e-06");
    EXPECT_EQ(message(1e6), "1e+06");
    EXPECT_EQ(message(123456.0), "123456");
    EXPECT_EQ(message(-2.5), "-2.5");
    EXPECT_EQ(message(100.0), "100");
    EXPECT_EQ(message(0.1f), "0.1");  // a float's own shortest form, not its double's 0.10000000149011612
    EXPECT_EQ(message(std::numeric_limits<double>::infinity()), "inf");
    EXPECT_EQ(message(-std::numeric_limits<double>::infinity()), "-inf");
    EXPECT_EQ(message(std::numeric_limits<double>::quiet_NaN()), "nan");
    for (const double x : {1.0 / 3.0, 2.0 / 3.0, 6.02214076e23, 4.9406564584124654e-324,
                           1.7976931348623157e308, 0.30000000000000004})
        EXPECT_EQ(std::strtod(message(x).c_str(), nullptr), x) << message(x);
}

TEST(Message, ShapesAndArraysAsLists) {
    EXPECT_EQ(message("got ", Shape{1, 3, 224, 224}), "got [1, 3, 224, 224]");
    EXPECT_EQ(message(Shape{}), "[]");
    EXPECT_EQ(message(std::array<Index, 3>{4, 16, 16}), "[4, 16, 16]");
    EXPECT_EQ(message(std::vector<double>{0.5, 0.25, 1e-6}), "[0.5, 0.25, 1e-06]");
    EXPECT_EQ(vit3d::shape_to_string(Shape{2, 3}), message(Shape{2, 3}));
}

TEST(Message, EnumeratorsByName) {
    EXPECT_EQ(message("pool ", vit3d::models::Pooling::mean), "pool mean");
    EXPECT_EQ(message(vit3d::nn::Activation::gelu_tanh), "gelu_tanh");
    EXPECT_EQ(message(static_cast<vit3d::models::Pooling>(7)), "7");  // no name: its number
}

TEST(Message, ReadsLikeTheThrowItBuilds) {
    const char* op = "vit3d::nn::LayerNorm::forward";
    EXPECT_EQ(message(op, ": expected input [..., ", 768, "], got ", Shape{2, 197, 384}),
              "vit3d::nn::LayerNorm::forward: expected input [..., 768], got [2, 197, 384]");
}

TEST(Quoted, EscapesAsJson) {
    using vit3d::detail::quoted;
    EXPECT_EQ(quoted("b c"), "\"b c\"");
    EXPECT_EQ(quoted(std::string("a\"b\\c")), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(quoted("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
    EXPECT_EQ(quoted(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\x7f\"");
    EXPECT_EQ(quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // valid UTF-8 stays
    EXPECT_EQ(quoted("a\xff"
                     "b"),
              "\"a\xef\xbf\xbd"
              "b\"");  // an invalid byte: U+FFFD
    EXPECT_EQ(quoted(std::string_view("\0", 1)), "\"\\u0000\"");
    EXPECT_EQ(message("name ", quoted("x")), "name \"x\"");
}

// Exactly what nlohmann::json writes for the string, invalid UTF-8 replaced: the messages that quoted names
// with it read the same.
TEST(Quoted, WritesWhatNlohmannJsonWrites) {
    const auto json_quoted = [](const std::string& s) {
        return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    std::vector<std::string> cases = {"",
                                      "plain",
                                      "\xe2\x82\xac",      // 3 bytes
                                      "\xf0\x9f\x98\x80",  // 4 bytes
                                      "\xc0\xaf",          // overlong
                                      "\xe0\x80\xaf",      // overlong, 3 bytes
                                      "\xed\xa0\x80",      // a surrogate
                                      "\xf4\x90\x80\x80",  // above U+10FFFF
                                      "\xe2\x82",          // cut short at the end
                                      "\xe2\x82x",         // cut short before an ASCII byte
                                      "\xe2\xe2\x82\xac",  // cut short before a valid sequence
                                      "\x80\x80",          // continuation bytes alone
                                      "\xf5\xfe\xff"};     // never valid
    // Random strings over the bytes that matter: ASCII, escapes, continuation and lead bytes of every kind.
    const unsigned char alphabet[] = {'a',  '"',  '\\', '\n', 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                      0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
    std::mt19937 random(7);
    for (int n = 0; n < 20000; ++n) {
        std::string s(random() % 7, ' ');
        for (char& c : s) c = static_cast<char>(alphabet[random() % sizeof alphabet]);
        cases.push_back(s);
    }
    for (const std::string& s : cases) ASSERT_EQ(vit3d::detail::quoted(s), json_quoted(s)) << json_quoted(s);
}

}  // namespace
