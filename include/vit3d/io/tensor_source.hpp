#pragma once
// Named tensors that a model's parameters are loaded from: one safetensors file (io::Safetensors), the
// shards of a sharded checkpoint (huggingface/sharded_safetensors.hpp), or a view that assembles tensors
// from rows of others (huggingface/assembled_tensors.hpp). io::load_state_dict reads any of them.

#include <string>
#include <vector>

#include "vit3d/core/shape.hpp"

namespace vit3d::io {

class TensorSource {
  public:
    virtual ~TensorSource() = default;
    // What messages call it: a file or folder name.
    virtual const std::string& source_name() const noexcept = 0;
    // Every tensor's name, sorted.
    virtual std::vector<std::string> names() const = 0;
    virtual bool contains(const std::string& name) const = 0;
    // The tensor's shape; throws io_error naming the key if there is none.
    virtual Shape shape(const std::string& name) const = 0;
    // Decodes the tensor, converted to float or double, into `count` elements at dst; throws io_error
    // naming the key if there is none, or if it does not have `count` elements.
    virtual void get_into(const std::string& name, float* dst, Index count) const = 0;
    virtual void get_into(const std::string& name, double* dst, Index count) const = 0;
    // Says that the tensor will not be read again soon (a mapped file drops its pages); may do nothing.
    virtual void release(const std::string& name) const = 0;

  protected:
    TensorSource() = default;
    TensorSource(const TensorSource&) = default;
    TensorSource& operator=(const TensorSource&) = default;
};

}  // namespace vit3d::io
