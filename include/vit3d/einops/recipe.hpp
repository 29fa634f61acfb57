#pragma once
// Applying a parsed einops pattern to a concrete input shape and axis lengths: expands the ellipsis,
// infers every elementary axis length, checks them against the input, and lays out the result.

#include <string>
#include <vector>

#include "vit3d/core/message.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/einops/pattern.hpp"

namespace vit3d::einops {

// What one call does, in terms of elementary axes (every named, anonymous or ellipsis-covered axis).
struct Recipe {
    Shape input_axes;                // lengths of the input's elementary axes, in input (row-major) order
    std::vector<Index> output_from;  // per elementary output axis: its index in input_axes, or -1 if new
    Shape output_axes;               // lengths of the elementary output axes, in output order
    Shape output_shape;              // the result's shape: one length per output group
};

}  // namespace vit3d::einops

namespace vit3d::detail {

class RecipeBuilder {
  public:
    RecipeBuilder(const einops::ParsedPattern& pattern, const Shape& input_shape, const AxisLengths& lengths,
                  std::string context)
        : p_(pattern), input_shape_(input_shape), lengths_(lengths), context_(std::move(context)) {}

    einops::Recipe build() {
        check_axis_lengths(p_, lengths_, context_);
        expand_left();
        infer_left_lengths();
        lay_out_right();
        return std::move(recipe_);
    }

    // The caller's axis lengths must name valid axes of the pattern, once each, with lengths >= 0.
    static void check_axis_lengths(const einops::ParsedPattern& p, const AxisLengths& lengths,
                                   const std::string& context) {
        for (std::size_t i = 0; i < lengths.size(); ++i) {
            const auto& [name, length] = lengths[i];
            if (!einops::is_valid_axis_name(name))
                throw pattern_error(message(context, ": invalid axis name '", name, "' in the axis lengths"));
            if (!p.left.has_name(name) && !p.right.has_name(name))
                throw pattern_error(
                    message(context, ": axis '", name, "' is given a length but is not in the pattern"));
            for (std::size_t j = 0; j < i; ++j)
                if (lengths[j].first == name)
                    throw pattern_error(message(context, ": axis '", name, "' is given a length twice"));
            if (length < 0)
                throw pattern_error(
                    message(context, ": axis '", name, "' is given the negative length ", length));
        }
    }

  private:
    struct Elem {
        std::string label;
        Index length = -1;  // -1: not known yet
        Index input_position = -1;
    };

    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw pattern_error(message(context_, ": ", parts..., " (input shape ", input_shape_, ")"));
    }

    const Index* given_length(const std::string& name) const {
        for (const auto& [n, len] : lengths_)
            if (n == name) return &len;
        return nullptr;
    }

    int named_elem(const std::string& name) {
        for (std::size_t i = 0; i < elems_.size(); ++i)
            if (elems_[i].label == name && named_[i]) return static_cast<int>(i);
        return -1;
    }
    int add_elem(std::string label, Index length, bool named) {
        elems_.push_back(Elem{std::move(label), length, -1});
        named_.push_back(named);
        return static_cast<int>(elems_.size()) - 1;
    }

    void expand_left() {
        const Index rank = static_cast<Index>(input_shape_.size());
        const Index fixed = static_cast<Index>(p_.left.groups.size()) - (p_.left.has_ellipsis ? 1 : 0);
        if (p_.left.has_ellipsis ? rank < fixed : rank != fixed)
            fail("expected an input of rank ", p_.left.has_ellipsis ? ">= " : "", fixed, ", got rank ", rank);
        const Index ellipsis_rank = rank - fixed;
        for (const einops::Group& g : p_.left.groups) {
            if (g.is_bare_ellipsis()) {
                for (Index k = 0; k < ellipsis_rank; ++k) {
                    const int e = add_elem("...", -1, false);
                    ellipsis_elems_.push_back(e);
                    left_groups_.push_back({{e}, "(covered by '...')"});
                }
                continue;
            }
            InputGroup in{{}, g.parenthesized ? g.text : message("'", g.text, "'")};
            for (const einops::Axis& a : g.axes) {
                if (a.kind == einops::Axis::Kind::named) {
                    const Index* len = given_length(a.name);
                    in.members.push_back(add_elem(a.name, len ? *len : -1, true));
                } else {
                    in.members.push_back(add_elem(a.name, a.length, false));
                }
            }
            left_groups_.push_back(std::move(in));
        }
        for (std::size_t i = 0; i < elems_.size(); ++i) elems_[i].input_position = static_cast<Index>(i);
    }

    std::string lengths_of(const std::vector<int>& members) const {
        std::string s;
        for (int m : members)
            if (elems_[static_cast<std::size_t>(m)].length >= 0)
                s += message(s.empty() ? "" : ", ", elems_[static_cast<std::size_t>(m)].label, "=",
                             elems_[static_cast<std::size_t>(m)].length);
        return s;
    }

    void infer_left_lengths() {
        for (std::size_t i = 0; i < left_groups_.size(); ++i) {
            const InputGroup& g = left_groups_[i];
            const Index length = input_shape_[i];
            const std::string where = message("input axis ", i, " ", g.text);
            Index known = 1;
            std::vector<int> unknown;
            for (int m : g.members) {
                const Index len = elems_[static_cast<std::size_t>(m)].length;
                if (len < 0) {
                    unknown.push_back(m);
                } else {
                    known *= len;
                }
            }
            if (unknown.size() > 1) {
                std::vector<std::string> names;
                for (int m : unknown) names.push_back(elems_[static_cast<std::size_t>(m)].label);
                fail("cannot infer the lengths of ", join_names(names), " in ", where,
                     ": give all but one of them");
            }
            if (unknown.empty()) {
                if (length != known)
                    fail(where, " has length ", length, ", expected ", known,
                         g.members.empty() ? "" : message(" (", lengths_of(g.members), ")"));
                continue;
            }
            if (known == 0)
                fail("cannot infer the length of '", elems_[static_cast<std::size_t>(unknown[0])].label,
                     "' in ", where, " because the other lengths multiply to 0");
            if (length % known != 0)
                fail(where, " has length ", length, ", not divisible by ", lengths_of(g.members),
                     g.members.size() > 2 ? message(" (product ", known, ")") : "");
            elems_[static_cast<std::size_t>(unknown[0])].length = length / known;
        }
        for (const Elem& e : elems_) recipe_.input_axes.push_back(e.length);
    }

    void add_output(int elem) {
        recipe_.output_from.push_back(elems_[static_cast<std::size_t>(elem)].input_position);
        recipe_.output_axes.push_back(elems_[static_cast<std::size_t>(elem)].length);
    }

    void lay_out_right() {
        for (const einops::Group& g : p_.right.groups) {
            if (g.is_bare_ellipsis()) {
                for (int e : ellipsis_elems_) {
                    add_output(e);
                    recipe_.output_shape.push_back(elems_[static_cast<std::size_t>(e)].length);
                }
                continue;
            }
            Index product = 1;
            for (const einops::Axis& a : g.axes) {
                std::vector<int> members;
                if (a.kind == einops::Axis::Kind::ellipsis) {
                    members = ellipsis_elems_;
                } else if (a.kind == einops::Axis::Kind::anonymous) {
                    members.push_back(add_elem(a.name, a.length, false));  // new axis of repeat
                } else if (const int e = named_elem(a.name); e >= 0) {
                    members.push_back(e);
                } else {
                    const Index* len = given_length(a.name);  // new axis of repeat
                    if (!len)
                        fail("new axis '", a.name, "' needs a length, e.g. {{", detail::quoted(a.name),
                             ", n}}");
                    members.push_back(add_elem(a.name, *len, true));
                }
                for (int m : members) {
                    add_output(m);
                    product *= elems_[static_cast<std::size_t>(m)].length;
                }
            }
            recipe_.output_shape.push_back(product);
        }
        shape_numel(recipe_.output_shape, context_.c_str());
    }

    struct InputGroup {
        std::vector<int> members;
        std::string text;
    };

    const einops::ParsedPattern& p_;
    const Shape& input_shape_;
    const AxisLengths& lengths_;
    std::string context_;
    std::vector<Elem> elems_;
    std::vector<bool> named_;
    std::vector<int> ellipsis_elems_;
    std::vector<InputGroup> left_groups_;
    einops::Recipe recipe_;
};

}  // namespace vit3d::detail

namespace vit3d::einops {

// Resolves `pattern` against an input shape and the caller's axis lengths. `context` prefixes errors.
inline Recipe make_recipe(const ParsedPattern& pattern, const Shape& input_shape, const AxisLengths& lengths,
                          const std::string& context) {
    return detail::RecipeBuilder(pattern, input_shape, lengths, context).build();
}

}  // namespace vit3d::einops
