#pragma once
// What io::load_model returns: a model of whichever kind the file describes, behind one interface that
// says what it is (family, kind, input shape, preprocessing, the outputs it can give) and runs forward for
// the outputs asked for. Each kind implements ModelInstance (model_kinds/<kind>.hpp); the concrete model
// stays reachable through get_if<Model>() for everything the interface does not cover.

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/io/model_description.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// The results a loaded model can give. Which ones a model gives depends on its configuration.
enum class ModelOutput {
    logits,         // [B, classes]: the head's output (models with a head)
    pooled,         // [B, D]: the pooled feature the head reads (models with pooling)
    tokens,         // [B, prefix + N, D]: every token after the encoder (and its final norm)
    token_grid,     // [B, D, g1, ..., gN]: the patch tokens folded back onto the patch grid
    cls_attention,  // [B, heads, g1, ..., gN]: how much the class token attends to each patch in the last
                    // block (softmax weights; models with a class token and at least one block)
};

constexpr auto enum_names(ModelOutput) {
    return enum_table<ModelOutput>({{ModelOutput::logits, "logits"},
                                    {ModelOutput::pooled, "pooled"},
                                    {ModelOutput::tokens, "tokens"},
                                    {ModelOutput::token_grid, "token_grid"},
                                    {ModelOutput::cls_attention, "cls_attention"}});
}

inline const char* output_name(ModelOutput output) { return enum_name(output); }

// A loaded model of one kind. Implementations live in model_kinds/.
template <class T>
class ModelInstance {
  public:
    virtual ~ModelInstance() = default;
    virtual std::vector<ModelOutput> outputs() const = 0;
    virtual Shape input_shape() const = 0;  // [C, spatial...]
    virtual Index parameter_count() const = 0;
    // Whether forward takes spatial sizes other than input_shape()'s (the model checks them).
    virtual bool dynamic_size() const { return false; }
    // The outputs in `wanted` (each one the model gives) of one forward pass over x [B, C, spatial...].
    virtual std::map<ModelOutput, Tensor<T>> forward(const Tensor<T>& x,
                                                     const std::vector<ModelOutput>& wanted) const = 0;
    // The concrete model if it is a `type`, else nullptr.
    virtual const void* model_if(const std::type_info& type) const noexcept = 0;
};

template <class T>
class LoadedModel {
  public:
    LoadedModel(ModelDescription description, std::unique_ptr<ModelInstance<T>> instance, std::string source,
                Precision precision = Precision::f32)
        : description_(std::move(description)),
          instance_(std::move(instance)),
          source_(std::move(source)),
          precision_(precision),
          outputs_(instance_->outputs()),
          input_shape_(instance_->input_shape()) {
        // A model that runs at other sizes runs by default at the one its preprocessing makes, which may
        // differ from the one its position table was trained at (Hugging Face's DINOv2: 224 crops, 518).
        const std::vector<Index>& made = description_.preprocess.input_size;
        if (instance_->dynamic_size() && made.size() + 1 == input_shape_.size())
            std::copy(made.begin(), made.end(), input_shape_.begin() + 1);
    }

    const ModelDescription& description() const noexcept { return description_; }
    const std::string& family() const noexcept { return description_.family; }
    const std::string& kind() const noexcept { return description_.kind; }
    const transforms::Preprocessing& preprocess() const noexcept { return description_.preprocess; }
    // [C, spatial...]: forward takes [B, C, spatial...]; the preprocessing resizes to it.
    const Shape& input_shape() const noexcept { return input_shape_; }
    const std::vector<ModelOutput>& outputs() const noexcept { return outputs_; }
    bool gives(ModelOutput output) const {
        for (ModelOutput o : outputs_)
            if (o == output) return true;
        return false;
    }
    Index parameter_count() const { return instance_->parameter_count(); }
    // Whether the model runs on spatial sizes other than input_shape()'s (those its patches divide): a
    // learned position table is resampled to their grid. input_shape() stays the trained size, the one
    // the preprocessing resizes to.
    bool dynamic_size() const { return instance_->dynamic_size(); }
    // The file it was loaded from.
    const std::string& source() const noexcept { return source_; }
    // The precision its linear layers compute in (LoadOptions::precision).
    Precision precision() const noexcept { return precision_; }

    // One output of a forward pass over x [B, C, spatial...].
    Tensor<T> forward(const Tensor<T>& x, ModelOutput which) const {
        return std::move(forward(x, std::vector<ModelOutput>{which}).at(which));
    }
    // Several outputs of one forward pass.
    std::map<ModelOutput, Tensor<T>> forward(const Tensor<T>& x,
                                             const std::vector<ModelOutput>& which) const {
        for (ModelOutput o : which)
            if (!gives(o)) {
                std::string listing;
                for (ModelOutput g : outputs_) listing += message(listing.empty() ? "" : ", ", g);
                throw config_error(message("vit3d::io::LoadedModel::forward: this ", family(), " ", kind(),
                                           " model gives no ", output_name(o), " (", why_not(o),
                                           "); it gives ", listing));
            }
        const Shape& s = x.shape();
        const bool dynamic = dynamic_size();
        const bool fits = s.size() == input_shape_.size() + 1 &&
                          std::equal(input_shape_.begin(),
                                     dynamic ? input_shape_.begin() + 1 : input_shape_.end(), s.begin() + 1);
        if (!fits) {
            throw shape_error(
                message("vit3d::io::LoadedModel::forward: expected input [B, ",
                        shape_to_string(input_shape_).substr(1), " (layout ", preprocess().layout,
                        dynamic ? "; other spatial sizes the patches divide too" : "", "), got ", s));
        }
        return instance_->forward(x, which);
    }

    // The concrete model (models::ViT<T>, models::ViT3D<T>, ...) when it is a Model, else nullptr.
    template <class Model>
    const Model* get_if() const noexcept {
        return static_cast<const Model*>(instance_->model_if(typeid(Model)));
    }

    // Why this model gives no `o` (for an output it does not give), for messages.
    std::string why_not(ModelOutput o) const {
        switch (o) {
            case ModelOutput::logits:
                return "it has no head";
            case ModelOutput::pooled:
                return "it does not pool";
            case ModelOutput::cls_attention:
                return "it has no class token, or no blocks";
            default:
                return "not provided by this kind";
        }
    }

  private:
    ModelDescription description_;
    std::unique_ptr<ModelInstance<T>> instance_;
    std::string source_;
    Precision precision_;
    std::vector<ModelOutput> outputs_;
    Shape input_shape_;
};

}  // namespace vit3d::io
