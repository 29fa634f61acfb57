#pragma once
// The fields of a configuration struct, listed once. A config lists its fields in one static function
//
//     template <class Self, class F>
//     static void list_fields(Self& c, F&& f) {
//         f(field("dim", c.dim, "token width D").positive().into(&nn::EncoderBlockConfig::dim));
//         f(field("class_token", c.class_token, "prepend a learned class token"));
//         ...
//     }
//     VIT3D_VISIT_FIELDS_WITH(list_fields)
//
// and everything that goes over the fields is written on top of visit_fields(f): reading and writing the
// config as JSON (io/model_kinds/config_json.hpp), the table of docs/configs.md, and sub_config<To>(c), the
// config of a part (an encoder block, the patch embedding) made from the fields that name one of its
// members as a target, so that no constructor copies fields by hand.
//
// Each field has its C++ name (also its JSON name), the member, a one-line meaning, the range of a number
// (any, non-negative or positive: what the JSON reader accepts), the members of sub-configs it sets and
// whether a weights file may leave it out (optional(): a field added after files were written, whose
// default is what those files meant).

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace vit3d {

// Which values of a number (or of each number of an array) a field takes.
enum class FieldRange { any, non_negative, positive };

template <class Value, class... Targets>
struct Field {
    const char* name;  // the C++ member's name, also its JSON name
    Value& value;      // the member, const when a const config is visited
    const char* meaning;
    FieldRange range = FieldRange::any;
    std::tuple<Targets...> targets;  // pointers to members of sub-configs that take this field's value
    bool optional = false;           // a weights file may leave it out, meaning the default

    Field non_negative() const { return with_range(FieldRange::non_negative); }
    Field positive() const { return with_range(FieldRange::positive); }
    // A field that files written before it existed leave out: absent, it keeps the struct's default.
    Field may_be_absent() const {
        Field f = *this;
        f.optional = true;
        return f;
    }

    // This field also sets each member `target` (a pointer to member of a sub-config) in sub_config().
    template <class... More>
    Field<Value, Targets..., More...> into(More... more) const {
        return {name, value, meaning, range, std::tuple_cat(targets, std::make_tuple(more...)), optional};
    }

  private:
    Field with_range(FieldRange r) const {
        Field f = *this;
        f.range = r;
        return f;
    }
};

template <class Value>
Field<Value> field(const char* name, Value& value, const char* meaning) {
    return {name, value, meaning, FieldRange::any, {}, false};
}

// Defines visit_fields(f), which calls f(field) for each field in list order, for const and mutable configs
// alike from the config's one
//   template <class Self, class F> static void list_fn(Self& c, F&& f)
#define VIT3D_VISIT_FIELDS_WITH(list_fn) \
    template <class F>                   \
    void visit_fields(F&& f) {           \
        list_fn(*this, f);               \
    }                                    \
    template <class F>                   \
    void visit_fields(F&& f) const {     \
        list_fn(*this, f);               \
    }

}  // namespace vit3d

namespace vit3d::detail {

template <class To, class Value, class Owner, class Member>
void set_target(To& to, const Value& value, Member Owner::*target) {
    if constexpr (std::is_same_v<Owner, To>) {
        static_assert(std::is_same_v<Member, std::remove_const_t<Value>>,
                      "sub_config: a field sets a member of another type");
        to.*target = value;
    }
}

// Converts to anything: T{AnyField{}, ...} compiles for as many arguments as the aggregate T has members.
struct AnyField {
    template <class T>
    operator T() const;
};

template <class T, class Indices, class = void>
struct TakesFields : std::false_type {};
template <class T, std::size_t... I>
struct TakesFields<T, std::index_sequence<I...>, std::void_t<decltype(T{(void(I), AnyField{})...})>>
    : std::true_type {};

template <class T, std::size_t N = 0>
constexpr std::size_t aggregate_member_count() {
    if constexpr (TakesFields<T, std::make_index_sequence<N + 1>>::value)
        return aggregate_member_count<T, N + 1>();
    else
        return N;
}

}  // namespace vit3d::detail

namespace vit3d {

// The config of a part: To's defaults, with every member that a field of `from` names as a target set to
// that field's value.
template <class To, class From>
To sub_config(const From& from) {
    To to{};
    from.visit_fields([&](const auto& field) {
        std::apply([&](auto... target) { (detail::set_target(to, field.value, target), ...); },
                   field.targets);
    });
    return to;
}

// The number of fields a config lists.
template <class Config>
std::size_t listed_field_count() {
    std::size_t n = 0;
    Config().visit_fields([&](const auto&) { ++n; });
    return n;
}

// The number of data members of the aggregate Config, for checking that its list names them all.
template <class Config>
constexpr std::size_t member_count() {
    static_assert(std::is_aggregate_v<Config>, "member_count counts the members of an aggregate");
    return detail::aggregate_member_count<Config>();
}

}  // namespace vit3d
