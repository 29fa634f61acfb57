#pragma once
// A loaded model run window by window over an input larger than the one it was trained at (a whole CT
// scan), with models::sliding_window_inference (MONAI's sliding_window_inference):
//
//   - outputs on the patch grid (token_grid [B, D, g...], cls_attention [B, heads, g...]) are stitched
//     into one grid over the whole input: [B, D, int(size / patch)...] for windows of the model's input size
//     (cells under several windows are their weighted mean);
//   - outputs without a grid (pooled [B, D], logits [B, classes]) are the plain mean over the sample's
//     windows, every window counting once whatever the blend mode: a whole-scan summary, not what the model
//     would give for the whole scan at once;
//   - tokens [B, prefix + N, D] is refused: its prefix tokens belong to no place; ask for token_grid.
//
// The windows have the model's input size (config.roi_size left empty) unless the config names another
// one a model with dynamic_size runs at. Memory: the outputs, their summed weights, and one batch of
// windows with its forward pass (see models/sliding_window.hpp).

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/models/sliding_window.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// Whether an output lies on the patch grid (stitched) rather than being one vector per sample (averaged).
inline bool is_grid_output(ModelOutput o) {
    return o == ModelOutput::token_grid || o == ModelOutput::cls_attention;
}

// The outputs in `which` of `model` over x [B, C, spatial...], window by window (see the top of this file).
// Throws config_error for an output that cannot be given this way or a config that does not fit, and
// shape_error for an input of the wrong rank or channels.
template <class T>
std::map<ModelOutput, Tensor<T>> sliding_window_forward(const LoadedModel<T>& model, const Tensor<T>& x,
                                                        const std::vector<ModelOutput>& which,
                                                        models::SlidingWindowConfig config = {}) {
    const char* op = "vit3d::io::sliding_window_forward";
    const Shape& input = model.input_shape();
    const Shape trained(input.begin() + 1, input.end());
    if (x.rank() != static_cast<Index>(input.size()) + 1 || x.dim(1) != input[0])
        throw shape_error(message(op, ": expected input [B, ", input[0], ", ", trained.size(),
                                  " spatial lengths] for this ", model.family(), " ", model.kind(),
                                  " model (input ", input, ", layout ", model.preprocess().layout, "), got ",
                                  x.shape()));
    if (which.empty()) throw config_error(message(op, ": expected at least one output, got none"));
    for (ModelOutput o : which) {
        if (o == ModelOutput::tokens)
            throw config_error(message(op,
                                       ": tokens have no place on the input for the windows to be stitched "
                                       "at (the class and register tokens); expected token_grid, "
                                       "cls_attention, pooled or logits"));
        if (!model.gives(o))
            throw config_error(message(op, ": this ", model.family(), " ", model.kind(), " model gives no ",
                                       o, " (", model.why_not(o), ")"));
    }
    if (config.roi_size.empty()) config.roi_size = trained;
    if (!model.dynamic_size() && config.roi_size != trained)
        throw config_error(message(op, ": expected config.roi_size ", trained,
                                   " (the model runs at its input size only), got ", config.roi_size));

    std::vector<ModelOutput> grids, vectors;
    for (ModelOutput o : which) {
        std::vector<ModelOutput>& list = is_grid_output(o) ? grids : vectors;
        if (std::find(list.begin(), list.end(), o) == list.end()) list.push_back(o);
    }
    const Shape image(x.shape().begin() + 2, x.shape().end());
    const Index per_sample = models::sliding_window_plan(image, config, op).windows();
    std::map<ModelOutput, Tensor<T>> sums;  // [B, ...] of the vector outputs
    Index seen = 0;                         // windows run so far, over all samples
    std::vector<ModelOutput> asked(grids);
    asked.insert(asked.end(), vectors.begin(), vectors.end());
    const auto predict = [&](const Tensor<T>& windows) {
        std::map<ModelOutput, Tensor<T>> out = model.forward(windows, asked);
        for (ModelOutput o : vectors) {
            const Tensor<T>& v = out.at(o);  // [n, features]
            const Index n = v.dim(0), features = v.size() / std::max<Index>(n, 1);
            Tensor<T>& sum = sums[o];
            if (sum.is_empty()) {
                Shape shape = v.shape();
                shape[0] = x.dim(0);
                sum = Tensor<T>::zeros(shape);
            }
            for (Index i = 0; i < n; ++i) {
                T* dst = sum.data() + ((seen + i) / per_sample) * features;
                const T* src = v.data() + i * features;
                for (Index f = 0; f < features; ++f) dst[f] += src[f];
            }
        }
        seen += windows.dim(0);
        std::vector<Tensor<T>> stitched;
        for (ModelOutput o : grids) stitched.push_back(std::move(out.at(o)));
        return stitched;
    };
    std::vector<Tensor<T>> stitched = models::sliding_window_inference_outputs<T>(x, config, predict);
    std::map<ModelOutput, Tensor<T>> result;
    for (std::size_t k = 0; k < grids.size(); ++k) result[grids[k]] = std::move(stitched[k]);
    for (ModelOutput o : vectors) {
        Tensor<T>& sum = sums.at(o);
        for (T& v : sum) v /= static_cast<T>(per_sample);
        result[o] = std::move(sum);
    }
    return result;
}

// One output.
template <class T>
Tensor<T> sliding_window_forward(const LoadedModel<T>& model, const Tensor<T>& x, ModelOutput which,
                                 models::SlidingWindowConfig config = {}) {
    return std::move(
        sliding_window_forward(model, x, std::vector<ModelOutput>{which}, std::move(config)).at(which));
}

}  // namespace vit3d::io
