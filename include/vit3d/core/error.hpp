#pragma once
// The exception types vit3d throws. Messages follow "<operation>: expected <what>, got <what>" and print
// whole shapes, so that a user can tell from the message alone which call was wrong and how; message()
// (core/message.hpp) writes them from their parts.

#include <stdexcept>
#include <string>

#include "vit3d/core/message.hpp"

namespace vit3d {

// A tensor has the wrong rank or shape for an operation, or an axis/index is out of range.
struct shape_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// An element index passed to Tensor::at() lies outside the tensor.
struct index_error : shape_error {
    using shape_error::shape_error;
};

// An einops pattern is malformed, or does not fit the tensor or the axis lengths it was given.
struct pattern_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A module or model configuration contradicts itself (cls pooling without a class token, a head without
// pooling); thrown by the constructor, before any parameter is allocated.
struct config_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// Reading or writing a file failed, or its content is malformed.
struct io_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A layer's packed weights no longer match its weights (found by WeightPacking::verified): the weights were
// written through a pointer or map taken before the pack was made, which write tracking cannot see.
struct stale_weights_error : std::logic_error {
    using std::logic_error::logic_error;
};

}  // namespace vit3d
