#pragma once
// Small type utilities shared by the public headers.

namespace vit3d::detail {

// T in a parameter that must not take part in template argument deduction, so that a call can pass
// nullptr (or a value of another type) there and still deduce T from the other arguments.
template <class T>
struct NonDeducedT {
    using type = T;
};
template <class T>
using NonDeduced = typename NonDeducedT<T>::type;

}  // namespace vit3d::detail
