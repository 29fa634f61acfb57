#pragma once
// Reading and writing a model description (model_description.hpp) as the JSON text under the "vit3d.model"
// key of a weights file's metadata.
//
// The schema is versioned ("version": 1). A reader refuses other versions, unknown fields and missing
// fields alike, naming the field: a description it cannot read exactly must not build a different model.

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/io/json_fields.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/transform_json.hpp"
#include "vit3d/transforms/preprocess.hpp"
#include "vit3d/transforms/presets.hpp"

namespace vit3d::detail {

inline transforms::Preprocessing parse_preprocessing(JsonFields& parent, const std::string& key,
                                                     Index channels_hint) {
    const nlohmann::json& value = parent.value(key);
    JsonFields f(value, parent.where(), parent.child(key));
    transforms::Preprocessing p;
    p.layout = f.choice("layout", {"BCHW", "BCDHW", "BCHWD"});
    p.input_size = f.integers("input_size", p.layout == "BCHW" ? 2 : 3, 1);
    if (!f.is_null("channel_order")) p.channel_order = f.choice("channel_order", {"RGB", "BGR", "L"});
    if (!f.is_null("rescale")) p.rescale = f.number("rescale");
    const std::size_t channels = static_cast<std::size_t>(channels_hint);
    if (!f.is_null("mean")) p.mean = f.numbers("mean", channels);
    if (!f.is_null("std")) {
        p.std = f.numbers("std", channels);
        for (double s : *p.std)
            if (!(s > 0)) f.fail("std", "positive numbers", f.value("std"));
    }
    if (!f.is_null("intensity_window")) {
        JsonFields w(f.value("intensity_window"), f.where(), f.child("intensity_window"));
        transforms::IntensityWindow window;
        window.low = w.number("low");
        window.high = w.number("high");
        if (!(window.low < window.high)) w.fail("high", "a number above low", w.value("high"));
        const std::vector<double> to = w.numbers("to", 2);
        window.to = {to[0], to[1]};
        window.clip = w.boolean("clip");
        w.finish();
        p.intensity_window = window;
    }
    if (!f.is_null("resize_size")) p.resize_size = f.integer("resize_size", 1);
    if (f.has("resize_shape") && !f.is_null("resize_shape")) {  // absent in files before it existed
        p.resize_shape = f.integers("resize_shape", 2, 1);
        if (p.resize_size) f.fail("resize_shape", "null with a resize_size", f.value("resize_shape"));
    }
    if (!f.is_null("interpolation")) p.interpolation = f.string("interpolation");
    // steps and preset: absent in files before they existed.
    const bool steps = f.has("steps") && !f.is_null("steps"),
               preset = f.has("preset") && !f.is_null("preset");
    if (steps || preset) {
        const char* key = steps ? "steps" : "preset";
        if (steps && preset)
            f.fail("preset", "null with steps (a preset is a list of steps)", f.value("preset"));
        if (p.layout == "BCHW") f.fail(key, "null for an image model (layout BCHW)", f.value(key));
        if (p.rescale || p.mean || p.std || p.intensity_window)
            f.fail(key, "null with rescale, mean, std or intensity_window (steps replace them)",
                   f.value(key));
    }
    if (steps) p.steps = io::transforms_from_json(f.value("steps"), f.where(), f.child("steps"));
    if (preset) {
        const std::string name = f.string("preset");
        try {
            p.steps = transforms::preset(name).steps;
        } catch (const std::invalid_argument&) {
            f.fail("preset", message("one of ", transforms::preset_names()), f.value("preset"));
        }
        p.preset = name;
    }
    f.finish();
    return p;
}

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

inline nlohmann::json preprocessing_json(const transforms::Preprocessing& p) {
    nlohmann::json window = nullptr;
    if (p.intensity_window) {
        const transforms::IntensityWindow& w = *p.intensity_window;
        window = {{"low", w.low}, {"high", w.high}, {"to", {w.to[0], w.to[1]}}, {"clip", w.clip}};
    }
    return {{"layout", p.layout},
            {"input_size", p.input_size},
            {"channel_order", optional_json(p.channel_order)},
            {"rescale", optional_json(p.rescale)},
            {"mean", optional_json(p.mean)},
            {"std", optional_json(p.std)},
            {"intensity_window", window},
            {"resize_size", optional_json(p.resize_size)},
            {"resize_shape", optional_json(p.resize_shape)},
            {"interpolation", optional_json(p.interpolation)}};
}

// ... with the steps when there are any (files without them keep their metadata as it was): a preset by
// its name, for a weights file; or, with expand_preset, its steps as well (what a run records, so that a
// preset whose definition changes does not pass for the old one).
inline nlohmann::json preprocessing_json_with_steps(const transforms::Preprocessing& p,
                                                    bool expand_preset = true) {
    nlohmann::json out = preprocessing_json(p);
    if (p.preset) out["preset"] = *p.preset;
    if (p.steps && (expand_preset || !p.preset)) out["steps"] = io::transforms_json(*p.steps);
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The description of the file, read from its metadata and checked field by field (but not the kind's
// configuration, which the kind reads when it builds the model). `where` starts every message.
inline ModelDescription read_model_description(const Safetensors& file, const std::string& where) {
    const auto it = file.metadata().find(model_metadata_key);
    if (it == file.metadata().end())
        throw io_error(
            message(where, "no \"", model_metadata_key,
                    "\" entry in the file's metadata: not a file written by tools/export_weights.py or "
                    "io::save_model (a plain state_dict loads with io::load_state_dict and a key map)"));
    const std::string at = message(where, "metadata \"", model_metadata_key, "\": ");
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
        throw io_error(message(at, "not valid JSON: ", e.what()));
    }
    detail::JsonFields f(json, at, "");
    ModelDescription d;
    const std::string schema = f.string("schema");
    if (schema != model_schema_name)
        throw io_error(
            message(at, "schema: expected \"", model_schema_name, "\", got ", detail::quoted(schema)));
    const Index version = f.integer("version");
    if (version != model_schema_version)
        throw io_error(
            message(at, "version: this vit3d reads version ", model_schema_version, ", got ", version,
                    (version > model_schema_version ? " (written by a newer exporter: update vit3d)" : "")));
    d.family = f.string("family");
    bool known = false;
    std::string listing;
    for (const std::string& family : known_families()) {
        known = known || family == d.family;
        listing += (listing.empty() ? "" : ", ") + family;
    }
    if (!known)
        throw io_error(
            message(at, "family: unknown family ", detail::quoted(d.family), "; known: ", listing));
    d.kind = f.string("kind");
    d.key_map = f.string("key_map");
    const nlohmann::json& config = f.value("config");
    if (!config.is_object()) f.fail("config", "a JSON object", config);
    // Every kind takes inputs [B, C, ...]; preprocessing needs C for its per-channel fields.
    const auto channels_field = config.find("channels");
    if (channels_field == config.end() || !channels_field->is_number_integer() ||
        channels_field->get<Index>() < 1)
        throw io_error(message(at, "config.channels: expected a positive integer, got ",
                               (channels_field == config.end() ? std::string("nothing (missing field)")
                                                               : detail::brief_json(*channels_field))));
    const Index channels = channels_field->get<Index>();
    d.config = config.dump();
    d.preprocess = detail::parse_preprocessing(f, "preprocess", channels);
    d.source = f.value("source").dump();
    f.finish();
    return d;
}

// A description's JSON-text field (config, source) as a JSON object; `field` names it in errors.
inline nlohmann::json description_json_field(const std::string& text, const char* field) {
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded() || !value.is_object())
        throw io_error(message("vit3d::io::ModelDescription::", field,
                               ": expected the text of a JSON object, got ",
                               detail::quoted(text.substr(0, 80))));
    return value;
}

// The JSON text of a description, as written into a file's metadata.
inline std::string model_description_json(const ModelDescription& d) {
    nlohmann::ordered_json out;
    out["schema"] = model_schema_name;
    out["version"] = d.version;
    out["family"] = d.family;
    out["kind"] = d.kind;
    out["key_map"] = d.key_map;
    out["config"] = description_json_field(d.config, "config");
    out["preprocess"] = detail::preprocessing_json_with_steps(d.preprocess, false);
    out["source"] = description_json_field(d.source, "source");
    return out.dump();
}

}  // namespace vit3d::io
