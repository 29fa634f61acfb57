#pragma once
// A Hugging Face folder's preprocessor_config.json (the image processor's settings) as vit3d's
// transforms::Preprocessing: rescale (do_rescale, rescale_factor), resize (size as {"height", "width"}: both
// sides, or {"shortest_edge"}: the shorter side, then center_crop to crop_size when do_center_crop), the
// interpolation (resample, Pillow's numbering) and normalize (image_mean, image_std). The steps apply in
// vit3d's order (rescale first, then resize; docs/inputs.md), and vit3d resizes with its own filters:
// values can differ from transformers' Pillow resize by its rounding to 8 bits.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/huggingface/model_config.hpp"
#include "vit3d/transforms/preprocess.hpp"

namespace vit3d::detail {

// Pillow's resampling filter numbers, as the processors store `resample`.
inline std::string hf_pillow_filter(const io::huggingface::ConfigReader& p) {
    const nlohmann::json* v = p.find("resample");
    if (!v) return "bilinear";
    static const char* const names[] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"};
    if (!v->is_number_integer() || v->get<std::int64_t>() < 0 || v->get<std::int64_t>() > 5)
        p.fail("resample", "a Pillow filter number 0 to 5", *v);
    return names[v->get<std::int64_t>()];
}

// {"height", "width"} or {"shortest_edge"} (or, in older files, one integer: both sides for processors
// that default to square sizes, the shorter side for CLIP's and BiT's).
struct hf_SizeSetting {
    std::optional<std::array<Index, 2>> both;
    std::optional<Index> shortest_edge;
};

inline hf_SizeSetting hf_size_setting(const io::huggingface::ConfigReader& p, const std::string& key,
                                      bool square_default) {
    const nlohmann::json* v = p.find(key);
    hf_SizeSetting out;
    if (!v) return out;
    const auto positive = [&](const nlohmann::json& n) {
        if (!n.is_number_integer() || n.get<std::int64_t>() < 1)
            p.fail(key, "{\"height\", \"width\"}, {\"shortest_edge\"} or a positive integer", *v);
        return static_cast<Index>(n.get<std::int64_t>());
    };
    if (v->is_number()) {
        const Index n = positive(*v);
        if (square_default) {
            out.both = std::array<Index, 2>{n, n};
        } else {
            out.shortest_edge = n;
        }
        return out;
    }
    if (v->is_object() && v->size() == 2 && v->contains("height") && v->contains("width")) {
        out.both = std::array<Index, 2>{positive((*v)["height"]), positive((*v)["width"])};
        return out;
    }
    if (v->is_object() && v->size() == 1 && v->contains("shortest_edge")) {
        out.shortest_edge = positive((*v)["shortest_edge"]);
        return out;
    }
    throw io_error(message(p.where(), p.name(key),
                           ": vit3d resizes to {\"height\", \"width\"} or {\"shortest_edge\"}, got ",
                           brief_json(*v)));
}

inline std::vector<double> hf_per_channel(const io::huggingface::ConfigReader& p, const std::string& key,
                                          Index channels) {
    const nlohmann::json* v = p.find(key);
    std::vector<double> out;
    if (v && v->is_number()) out.assign(static_cast<std::size_t>(channels), v->get<double>());
    if (v && v->is_array() && static_cast<Index>(v->size()) == channels)
        for (const nlohmann::json& x : *v)
            if (x.is_number()) out.push_back(x.get<double>());
    if (static_cast<Index>(out.size()) != channels)
        p.fail(key, message(channels, " numbers (one per channel)"), v ? *v : nlohmann::json(nullptr));
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::io::huggingface {

// The preprocessing a processor's settings describe, for a model of `channels` channels trained at
// `image_size`. Without a preprocessor_config.json (processor null), the model takes its input as given.
inline transforms::Preprocessing folder_preprocessing(const nlohmann::json* processor, Index channels,
                                                      const std::array<Index, 2>& image_size,
                                                      const std::string& where) {
    transforms::Preprocessing out;
    out.layout = "BCHW";
    out.input_size = {image_size[0], image_size[1]};
    if (!processor) return out;
    const ConfigReader p(*processor, where);
    const std::string type = p.string("image_processor_type", p.string("feature_extractor_type", ""));
    const bool square_default =
        type.find("CLIP") == std::string::npos && type.find("Bit") == std::string::npos;
    if (channels == 3) out.channel_order = "RGB";
    if (channels == 1) out.channel_order = "L";
    if (p.boolean("do_rescale", true)) out.rescale = p.number("rescale_factor", 1.0 / 255.0);
    if (p.boolean("do_normalize", true)) {
        out.mean = detail::hf_per_channel(p, "image_mean", channels);
        out.std = detail::hf_per_channel(p, "image_std", channels);
    }
    const bool crop = p.boolean("do_center_crop", false);
    const detail::hf_SizeSetting crop_size = detail::hf_size_setting(p, "crop_size", true);
    if (crop && !crop_size.both) p.fail("crop_size", "{\"height\", \"width\"}", nlohmann::json(nullptr));
    if (p.boolean("do_resize", true)) {
        out.interpolation = detail::hf_pillow_filter(p);
        const detail::hf_SizeSetting size = detail::hf_size_setting(p, "size", square_default);
        if (size.shortest_edge) {
            if (!crop)
                throw io_error(message(where, "size {\"shortest_edge\": ", *size.shortest_edge,
                                       "} without do_center_crop makes inputs of every aspect ratio; vit3d "
                                       "expects a crop_size or a {\"height\", \"width\"} size"));
            out.resize_size = *size.shortest_edge;
        } else if (size.both && crop && *size.both != *crop_size.both) {
            out.resize_shape = std::vector<Index>{(*size.both)[0], (*size.both)[1]};
        } else if (size.both) {
            out.input_size = {(*size.both)[0], (*size.both)[1]};
        }
    }
    if (crop) out.input_size = {(*crop_size.both)[0], (*crop_size.both)[1]};
    return out;
}

}  // namespace vit3d::io::huggingface
