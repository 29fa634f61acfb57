#pragma once
// An image or volume with its place in the world, as MONAI's transforms take it (a MetaTensor after
// EnsureChannelFirst): the voxels channel first in index order, [C, i, j, k] (2D: [C, i, j]), and the affine
// that maps an index (i, j, k, 1) to world coordinates (x, y, z, 1). The geometric transforms (orientation,
// spacing, crop and pad) change both and keep them consistent; the intensity transforms change the voxels.
// A NIfTI or DICOM volume, whose tensor vit3d keeps as [k, j, i], becomes one with
// io::spatial_image(volume) (vit3d/formats/volume.hpp).

#include <utility>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"

namespace vit3d::transforms {

template <class T>
struct SpatialImage {
    Tensor<T> data;                     // [C, i, j, k] or [C, i, j]: data(c, i, j, k) is voxel (i, j, k)
    Affine affine = identity_affine();  // (i, j, k, 1) -> world (x, y, z, 1); for 2D the k column is unused

    Index channels() const { return data.dim(0); }
    Index spatial_rank() const { return data.rank() - 1; }
    // The sizes of the spatial axes, [i, j, k].
    Shape spatial_shape() const { return Shape(data.shape().begin() + 1, data.shape().end()); }
};

}  // namespace vit3d::transforms

namespace vit3d::detail {

// image holds [C, spatial...] with 2 or 3 spatial axes, or throws naming op.
template <class T>
void check_spatial_image(const transforms::SpatialImage<T>& image, const char* op) {
    if (image.data.rank() != 3 && image.data.rank() != 4)
        throw shape_error(
            message(op, ": expected an image [C, i, j] or [C, i, j, k], got ", image.data.shape()));
}

}  // namespace vit3d::detail
