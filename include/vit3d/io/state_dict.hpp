#pragma once
// Loading a module's parameters from a safetensors file written from a PyTorch state_dict, whichever
// library's naming it uses: a KeyMap (io/key_maps/) renames the file's keys onto vit3d's names, e.g.
//     io::load_state_dict<float>(vit, file, io::key_maps::torchvision());
// Tensors whose shapes differ only by unit axes (vit-pytorch's [N, D] position table for vit3d's
// [1, N, D]) are reshaped; any other mismatch, a missing tensor or (strict) an unused one is an io_error
// naming the keys and shapes.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/io/key_map.hpp"
#include "vit3d/io/key_maps.hpp"
#include "vit3d/io/safetensors.hpp"
#include "vit3d/io/tensor_source.hpp"

namespace vit3d::detail {

inline Shape without_unit_axes(const Shape& s) {
    Shape out;
    for (Index len : s)
        if (len != 1) out.push_back(len);
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::io {

struct LoadReport {
    std::vector<std::string> loaded;   // vit3d names
    std::vector<std::string> skipped;  // file keys vit3d has no parameter for (by rule)
};

// Fills every parameter of `module` from the tensors of `file` (a Safetensors or another TensorSource) whose
// names start with `file_prefix` (the prefix is removed before renaming by `keys`). strict: every remaining
// file tensor must be used, except empty ones (no elements, no weights), which are skipped. Each tensor is
// decoded into the parameter's existing buffer (no second copy of the weights), and with a file from
// Safetensors::open its pages are released right after, so the loader's resident memory peaks at about the
// size of the weights.
template <class T, class Module>
LoadReport load_state_dict(Module& module, const TensorSource& file, const KeyMap& keys,
                           const std::string& file_prefix = "", bool strict = true) {
    const std::string where =
        message("vit3d::io::load_state_dict(", detail::quoted(file.source_name()), "): ");
    LoadReport report;
    std::map<std::string, std::string> by_vit3d_name;  // vit3d name -> file key
    for (const std::string& key : file.names()) {
        if (key.compare(0, file_prefix.size(), file_prefix) != 0) continue;
        const std::string name = keys.rename(key.substr(file_prefix.size()));
        if (name.empty()) {
            report.skipped.push_back(key);
            continue;
        }
        if (!by_vit3d_name.emplace(name, key).second)
            throw io_error(message(where, "tensors ", detail::quoted(by_vit3d_name[name]), " and ",
                                   detail::quoted(key), " both map to ", detail::quoted(name)));
    }
    module.visit_parameters([&](const std::string& name, Tensor<T>& parameter) {
        const auto it = by_vit3d_name.find(name);
        if (it == by_vit3d_name.end())
            throw io_error(message(where, "missing tensor for parameter ", detail::quoted(name), " of shape ",
                                   parameter.shape()));
        const Shape stored = file.shape(it->second);
        if (stored != parameter.shape() &&
            detail::without_unit_axes(stored) != detail::without_unit_axes(parameter.shape()))
            throw io_error(message(where, "tensor ", detail::quoted(it->second), " has shape ", stored,
                                   ", parameter ", detail::quoted(name), " expects ", parameter.shape()));
        // Straight into the parameter's own memory (same element count: equal up to unit axes), then
        // the file's pages of that tensor are dropped, so that a mapped file costs one tensor at a time.
        file.get_into(it->second, parameter.data(), parameter.size());
        file.release(it->second);
        report.loaded.push_back(name);
        by_vit3d_name.erase(it);
    });
    // A tensor without elements holds no weights: nothing is lost by leaving it out (vit-pytorch keeps a
    // [0, dim] cls_token in its state_dict under mean pooling).
    std::string unused;
    for (const auto& entry : by_vit3d_name) {
        if (shape_numel(file.shape(entry.second)) == 0) {
            report.skipped.push_back(entry.second);
        } else {
            unused += message(unused.empty() ? "" : ", ", detail::quoted(entry.second));
        }
    }
    if (strict && !unused.empty()) throw io_error(message(where, "tensors not used by the model: ", unused));
    return report;
}

}  // namespace vit3d::io
