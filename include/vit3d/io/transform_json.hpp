#pragma once
// The JSON of a transforms::Transform, as a weights file's preprocess.steps holds it: an object with the
// step's MONAI class name under "name" and its parameters under MONAI's names,
//     {"name": "ScaleIntensityRange", "a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1, "clip": true}
// A parameter left out keeps MONAI's default (the struct's); unknown names are refused. As in MONAI, one
// number stands for a list of one, which means every axis (margin: 10 is margin: [10]).

#include <nlohmann/json.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/json_fields.hpp"
#include "vit3d/io/model_kinds/config_json.hpp"
#include "vit3d/transforms/compose.hpp"

namespace vit3d::detail {

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

// "Orientation", "ScaleIntensityRange", ...: every step's name, for messages.
template <std::size_t... I>
std::string transform_names(std::index_sequence<I...>) {
    std::string out;
    ((out += (I ? ", " : "") + quoted(std::variant_alternative_t<I, transforms::Transform>::name)), ...);
    return out;
}
inline std::string transform_name_list() {
    return transform_names(std::make_index_sequence<std::variant_size_v<transforms::Transform>>{});
}

template <class Step>
Step transform_from_fields(JsonFields& f) {
    Step step;
    step.visit_fields([&](const auto& field) {
        using V = std::remove_reference_t<decltype(field.value)>;
        if (!f.has(field.name)) return;
        if constexpr (IsVector<V>::value) {
            if (f.value(field.name).is_number()) {  // MONAI's one value for every axis
                nlohmann::json one = nlohmann::json::object();
                one[field.name] = nlohmann::json::array({f.value(field.name)});
                JsonFields g(one, f.where(), f.path());
                field.value = read_field_value<V>(g, field.name, field.range);
                return;
            }
        }
        field.value = read_field_value<V>(f, field.name, field.range);
    });
    return step;
}

// The alternative of Transform called `name`, read from f.
template <std::size_t I = 0>
transforms::Transform transform_named(const std::string& name, JsonFields& f) {
    if constexpr (I == std::variant_size_v<transforms::Transform>) {
        throw io_error(message(f.where(), f.child("name"), ": expected one of ", transform_name_list(),
                               ", got ", quoted(name)));
    } else {
        using Step = std::variant_alternative_t<I, transforms::Transform>;
        if (name != Step::name) return transform_named<I + 1>(name, f);
        return transform_from_fields<Step>(f);
    }
}

}  // namespace vit3d::detail

namespace vit3d::io {

// A step from its JSON object; `where` starts messages, `path` names the object ("preprocess.steps[2]").
inline transforms::Transform transform_from_json(const nlohmann::json& json, const std::string& where,
                                                 const std::string& path) {
    detail::JsonFields f(json, where, path);
    const std::string name = f.string("name");
    transforms::Transform step = detail::transform_named(name, f);
    f.finish();
    return step;
}

// A step's JSON object: its name and every parameter.
inline nlohmann::json transform_json(const transforms::Transform& step) {
    return std::visit(
        [](const auto& s) {
            nlohmann::json out = io::config_json(s);
            out["name"] = std::decay_t<decltype(s)>::name;
            return out;
        },
        step);
}

// A chain of steps from a JSON array (path names it in messages), and back.
inline std::vector<transforms::Transform> transforms_from_json(const nlohmann::json& json,
                                                               const std::string& where,
                                                               const std::string& path) {
    if (!json.is_array())
        throw io_error(message(where, path,
                               ": expected an array of steps ({\"name\": ..., parameters}), got ",
                               json.dump().substr(0, 80)));
    std::vector<transforms::Transform> steps;
    for (std::size_t i = 0; i < json.size(); ++i)
        steps.push_back(transform_from_json(json[i], where, message(path, "[", i, "]")));
    return steps;
}

inline nlohmann::json transforms_json(const std::vector<transforms::Transform>& steps) {
    nlohmann::json out = nlohmann::json::array();
    for (const transforms::Transform& step : steps) out.push_back(transform_json(step));
    return out;
}

}  // namespace vit3d::io
