#pragma once
// Parsing of einops patterns ("b c (h p1) (w p2) -> b (h w) (p1 p2 c)") with einops' grammar and its
// rules for what is an error. A parsed pattern does not depend on the tensor it is applied to; the
// shape-dependent part lives in recipe.hpp.
//
// Grammar of each side: space-separated terms, where a term is
//   - an axis name: an ASCII identifier that neither starts nor ends with '_';
//   - a number: an anonymous axis of that length; "1" (outside parentheses) is a unit axis, and inside
//     parentheses it is ignored;
//   - "..." : all axes not named elsewhere (at most one per side);
//   - "( ... )": a composite axis whose length is the product of its members, leftmost slowest (the
//     C-order / einops convention); "()" is a unit axis. Parentheses do not nest.

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"

namespace vit3d {

// Lengths of named axes given by the caller: {{"p1", 16}, {"p2", 16}}.
using AxisLengths = std::vector<std::pair<std::string, Index>>;

namespace einops {

enum class Operation { rearrange, reduce, repeat };

// One elementary axis of an expression.
struct Axis {
    enum class Kind { named, anonymous, ellipsis };
    Kind kind = Kind::named;
    std::string name;  // the identifier, the number as written, or "..."
    Index length = 0;  // anonymous axes only
};

// One axis of the tensor the side describes: a single axis, a composition "(h p1)", the unit axis "1" /
// "()", or the bare ellipsis (which stands for zero or more tensor axes).
struct Group {
    std::vector<Axis> axes;
    bool parenthesized = false;
    std::string text;  // as written, for messages

    bool is_bare_ellipsis() const {
        return !parenthesized && axes.size() == 1 && axes[0].kind == Axis::Kind::ellipsis;
    }
};

struct Expression {
    std::vector<Group> groups;
    bool has_ellipsis = false;
    bool ellipsis_parenthesized = false;
    bool has_non_unit_anonymous = false;
    std::vector<std::string> names;  // named axes in order of appearance

    bool has_name(const std::string& name) const {
        return std::find(names.begin(), names.end(), name) != names.end();
    }
};

struct ParsedPattern {
    std::string text;
    Operation operation = Operation::rearrange;
    Expression left, right;
};

constexpr auto enum_names(Operation) {
    return enum_table<Operation>(
        {{Operation::rearrange, "rearrange"}, {Operation::reduce, "reduce"}, {Operation::repeat, "repeat"}});
}

inline const char* operation_name(Operation op) { return enum_name(op); }

// "vit3d::rearrange("b c h w -> b (h w) c")": the prefix of every message about a pattern.
inline std::string pattern_context(Operation op, const std::string& pattern) {
    return message("vit3d::", op, "(", detail::quoted(pattern), ")");
}

// Whether `name` is a valid axis name: an ASCII identifier not starting or ending with '_'.
inline bool is_valid_axis_name(const std::string& name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return name.front() != '_' && name.back() != '_';
}

}  // namespace einops

}  // namespace vit3d

namespace vit3d::detail {

inline bool is_term_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

class ExpressionParser {
  public:
    ExpressionParser(const std::string& side, const std::string& context) : side_(side), context_(context) {}

    einops::Expression parse() {
        const std::size_t dots = static_cast<std::size_t>(std::count(side_.begin(), side_.end(), '.'));
        const std::size_t ellipses = count_ellipses();
        if (dots > 0 && (ellipses != 1 || dots != 3))
            fail("dots may only appear as one ellipsis '...' per side, got ", detail::quoted(trimmed()));
        std::size_t i = 0;
        while (i < side_.size()) {
            const char c = side_[i];
            if (c == ' ') {
                ++i;
            } else if (c == '(') {
                if (group_) fail("parentheses do not nest (one level of composition only)");
                group_ = einops::Group{};
                group_->parenthesized = true;
                group_start_ = i;
                ++i;
            } else if (c == ')') {
                if (!group_) fail("unbalanced parentheses: ')' without '('");
                group_->text = side_.substr(group_start_, i + 1 - group_start_);
                out_.groups.push_back(std::move(*group_));
                group_.reset();
                ++i;
            } else if (is_term_char(c)) {
                std::size_t end = i;
                while (end < side_.size() && is_term_char(side_[end])) ++end;
                add_term(side_.substr(i, end - i));
                i = end;
            } else {
                fail("unknown character '", c, "'");
            }
        }
        if (group_) fail("unbalanced parentheses: '(' is never closed");
        return std::move(out_);
    }

  private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw pattern_error(message(context_, ": ", parts...));
    }

    std::size_t count_ellipses() const {
        std::size_t n = 0;
        for (std::size_t pos = side_.find("..."); pos != std::string::npos; pos = side_.find("...", pos + 3))
            ++n;
        return n;
    }
    std::string trimmed() const {
        const auto b = side_.find_first_not_of(' ');
        const auto e = side_.find_last_not_of(' ');
        return b == std::string::npos ? std::string() : side_.substr(b, e - b + 1);
    }

    void add_term(const std::string& term) {
        if (term == "...") {
            out_.has_ellipsis = true;
            einops::Axis axis{einops::Axis::Kind::ellipsis, "...", 0};
            if (group_) {
                out_.ellipsis_parenthesized = true;
                group_->axes.push_back(axis);
            } else {
                out_.groups.push_back(einops::Group{{axis}, false, "..."});
            }
            return;
        }
        if (term.find('.') != std::string::npos)
            fail("invalid axis '", term, "': the ellipsis '...' must stand alone");
        if (std::all_of(term.begin(), term.end(),
                        [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
            add_number(term);
            return;
        }
        if (!einops::is_valid_axis_name(term))
            fail("invalid axis name '", term, "': ",
                 std::isdigit(static_cast<unsigned char>(term[0])) ? "names must not start with a digit"
                                                                   : "names must not start or end with '_'");
        if (out_.has_name(term)) fail("duplicate axis '", term, "'");
        out_.names.push_back(term);
        add_axis(einops::Axis{einops::Axis::Kind::named, term, 0});
    }

    void add_number(const std::string& term) {
        Index value = 0;
        for (char c : term) {
            if (value > (std::numeric_limits<Index>::max() - 9) / 10)
                fail("anonymous axis length ", term, " is too large");
            value = value * 10 + (c - '0');
        }
        if (value == 0) fail("anonymous axis '", term, "' must have a positive length");
        if (value == 1) {
            // A unit axis outside parentheses; inside them a factor 1 changes nothing.
            if (!group_) out_.groups.push_back(einops::Group{{}, false, term});
            return;
        }
        out_.has_non_unit_anonymous = true;
        add_axis(einops::Axis{einops::Axis::Kind::anonymous, term, value});
    }

    void add_axis(einops::Axis axis) {
        if (group_) {
            group_->axes.push_back(std::move(axis));
        } else {
            std::string text = axis.name;
            out_.groups.push_back(einops::Group{{std::move(axis)}, false, std::move(text)});
        }
    }

    const std::string& side_;
    const std::string& context_;
    einops::Expression out_;
    std::optional<einops::Group> group_;
    std::size_t group_start_ = 0;
};

inline std::string join_names(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
    return s;
}

}  // namespace vit3d::detail

namespace vit3d {

namespace einops {

// Parses and validates `pattern` for `op`, with einops' rules. Throws pattern_error naming the pattern
// and the offending axis.
inline ParsedPattern parse_pattern(const std::string& pattern, Operation op) {
    const std::string context = pattern_context(op, pattern);
    const auto arrow = pattern.find("->");
    if (arrow == std::string::npos || pattern.find("->", arrow + 2) != std::string::npos)
        throw pattern_error(message(context, ": expected exactly one '->' between input and output"));
    const std::string left_text = pattern.substr(0, arrow), right_text = pattern.substr(arrow + 2);

    ParsedPattern parsed;
    parsed.text = pattern;
    parsed.operation = op;
    parsed.left = detail::ExpressionParser(left_text, context).parse();
    parsed.right = detail::ExpressionParser(right_text, context).parse();
    const Expression& left = parsed.left;
    const Expression& right = parsed.right;

    if (right.has_ellipsis && !left.has_ellipsis)
        throw pattern_error(message(context, ": ellipsis '...' on the right side but not on the left"));
    if (left.ellipsis_parenthesized)
        throw pattern_error(
            message(context, ": ellipsis '...' inside parentheses is not allowed on the left side"));

    auto missing_from = [](const Expression& from, const Expression& in) {
        std::vector<std::string> missing;
        for (const auto& name : from.names)
            if (!in.has_name(name)) missing.push_back(name);
        if (from.has_ellipsis && !in.has_ellipsis) missing.push_back("...");
        return missing;
    };
    auto anonymous_of = [](const Expression& e) {
        std::vector<std::string> found;
        for (const auto& g : e.groups)
            for (const auto& a : g.axes)
                if (a.kind == Axis::Kind::anonymous) found.push_back(a.name);
        return found;
    };

    switch (op) {
        case Operation::rearrange: {
            if (left.has_non_unit_anonymous || right.has_non_unit_anonymous) {
                auto anon = anonymous_of(left);
                for (auto& a : anonymous_of(right)) anon.push_back(a);
                throw pattern_error(
                    message(context, ": anonymous axes other than 1 are not allowed in rearrange, got ",
                            detail::join_names(anon)));
            }
            auto only_left = missing_from(left, right), only_right = missing_from(right, left);
            if (!only_left.empty() || !only_right.empty()) {
                for (auto& n : only_right) only_left.push_back(n);
                throw pattern_error(message(context, ": axes must appear on both sides, but ",
                                            detail::join_names(only_left), " appear on one side only"));
            }
            break;
        }
        case Operation::repeat: {
            auto unexpected = missing_from(left, right);
            for (auto& a : anonymous_of(left)) unexpected.push_back(a);
            if (!unexpected.empty())
                throw pattern_error(message(context,
                                            ": every input axis must appear in the output of repeat, but ",
                                            detail::join_names(unexpected), " do not"));
            break;
        }
        case Operation::reduce: {
            auto unexpected = missing_from(right, left);
            for (auto& a : anonymous_of(right)) unexpected.push_back(a);
            if (!unexpected.empty())
                throw pattern_error(message(context, ": the output of reduce may only keep input axes, but ",
                                            detail::join_names(unexpected), " are not on the left side"));
            break;
        }
    }
    return parsed;
}

// The parsed form of `pattern`, parsed once per (operation, pattern) and then shared: repeated calls
// with the same pattern do not re-parse. Thread-safe.
inline std::shared_ptr<const ParsedPattern> cached_pattern(const std::string& pattern, Operation op) {
    static std::mutex mutex;
    static std::unordered_map<std::string, std::shared_ptr<const ParsedPattern>> cache;
    constexpr std::size_t capacity = 1024;  // bounded, so that generated patterns cannot grow it forever
    std::string key(1, static_cast<char>('0' + static_cast<int>(op)));
    key += pattern;
    {
        std::lock_guard<std::mutex> lock(mutex);
        auto it = cache.find(key);
        if (it != cache.end()) return it->second;
    }
    auto parsed = std::make_shared<const ParsedPattern>(parse_pattern(pattern, op));  // throws: not cached
    std::lock_guard<std::mutex> lock(mutex);
    if (cache.size() >= capacity) cache.clear();
    cache.emplace(std::move(key), parsed);
    return parsed;
}

}  // namespace einops
}  // namespace vit3d
