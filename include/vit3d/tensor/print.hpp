#pragma once
// Printing a tensor: its shape and, for small tensors, its elements (GoogleTest picks this up too).

#include <ostream>

#include "vit3d/tensor/tensor.hpp"

namespace vit3d {

// Prints "Tensor[2, 3]{0, 1, 2, 3, 4, 5}", eliding the middle of tensors with more than 16 elements.
template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& t) {
    constexpr Index shown = 16;
    out << "Tensor" << shape_to_string(t.shape()) << '{';
    for (Index i = 0; i < t.size(); ++i) {
        if (t.size() > shown && i == shown / 2) {
            out << "..., ";
            i = t.size() - shown / 2;
        }
        out << +t.data()[i] << (i + 1 < t.size() ? ", " : "");
    }
    return out << '}';
}

}  // namespace vit3d
