// vit3d::io's model loading for float and double, compiled once per project
// (include/vit3d/core/instances.hpp). One translation unit for both types: most of its cost (JSON, regular
// expressions, the safetensors reader) does not depend on the type.
#include <vit3d/io/implementation.hpp>
