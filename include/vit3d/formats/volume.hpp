#pragma once
// A NIfTI volume with its geometry (io::Volume, what vit3d/formats/nifti.hpp reads and writes and what a
// DICOM series is read into), and its conversion to and from transforms::SpatialImage, the channel-first
// [C, i, j, k] form the transforms in vit3d/transforms/ take.
//
// Axis order: a volume's tensor is [nz, ny, nx] (4D: [nt, nz, ny, nx]), the order of NIfTI's memory, so
// data(k, j, i) is voxel (i, j, k); a SpatialImage is [C, nx, ny, nz], nibabel's and MONAI's order, with the
// 4D volume's t axis as its channels.

#include <array>
#include <string>
#include <utility>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/nifti_header.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::io {

// A volume with its geometry. The defaults describe a new volume as nibabel makes one: the affine in the
// sform with code 2 (aligned), no qform, millimetres.
template <class T>
struct Volume {
    Tensor<T> data;  // [nz, ny, nx] or [nt, nz, ny, nx]: data(k, j, i) is voxel (i, j, k)
    std::array<double, 3> spacing{1.0, 1.0,
                                  1.0};  // along data's axes [z, y, x]: pixdim[3], pixdim[2], pixdim[1]
    double time_step = 0.0;              // pixdim[4], for 4D volumes
    transforms::Affine affine = transforms::identity_affine();  // voxel (i, j, k, 1) -> world (x, y, z, 1)
    AffineSource affine_source = AffineSource::sform;           // which transform of the file `affine` is
    int sform_code = 2;  // NIFTI_XFORM_*: 0 unset, 1 scanner, 2 aligned, 3 Talairach,
    int qform_code = 0;  //   4 MNI 152, 5 other template
    NiftiUnit spatial_unit = NiftiUnit::mm;
    NiftiUnit time_unit = NiftiUnit::unknown;
    int intent_code = 0;  // NIFTI_INTENT_*, e.g. 1002 for a label volume
    std::string intent_name;
    std::string description;  // descrip
    // As read from the file (ignored by the writer, which writes T with scl_slope 1 and scl_inter 0):
    NiftiDataType datatype = NiftiDataType::float32;
    double scl_slope = 0.0, scl_inter = 0.0;
    bool scaled = false;  // data = scl_slope * stored + scl_inter
};

// A volume holding `data` with the geometry, units, intent and description of `like`: for writing a label
// mask or a prediction on the grid of the image it was computed from.
template <class U, class T>
Volume<U> volume_like(const Volume<T>& like, Tensor<U> data) {
    Volume<U> out;
    out.data = std::move(data);
    out.spacing = like.spacing;
    out.time_step = like.time_step;
    out.affine = like.affine;
    out.affine_source = like.affine_source;
    out.sform_code = like.sform_code;
    out.qform_code = like.qform_code;
    out.spatial_unit = like.spatial_unit;
    out.time_unit = like.time_unit;
    out.intent_code = like.intent_code;
    out.intent_name = like.intent_name;
    out.description = like.description;
    return out;
}

// The volume as a SpatialImage: [nz, ny, nx] -> [1, nx, ny, nz], [nt, nz, ny, nx] -> [nt, nx, ny, nz], with
// the same affine.
template <class T>
transforms::SpatialImage<T> spatial_image(const Volume<T>& volume) {
    const Tensor<T>& v = volume.data;
    if (v.rank() != 3 && v.rank() != 4)
        throw shape_error(message(
            "vit3d::io::spatial_image: expected a volume [nz, ny, nx] or [nt, nz, ny, nx], got ", v.shape()));
    const Index nt = v.rank() == 4 ? v.dim(0) : 1;
    const Index nz = v.dim(-3), ny = v.dim(-2), nx = v.dim(-1);
    transforms::SpatialImage<T> out;
    out.data = Tensor<T>::empty({nt, nx, ny, nz});
    const T* src = v.data();
    T* dst = out.data.data();
    for (Index t = 0; t < nt; ++t)
        for (Index k = 0; k < nz; ++k)
            for (Index j = 0; j < ny; ++j)
                for (Index i = 0; i < nx; ++i)
                    dst[((t * nx + i) * ny + j) * nz + k] = src[((t * nz + k) * ny + j) * nx + i];
    out.affine = volume.affine;
    return out;
}

// A SpatialImage [C, nx, ny, nz] as a volume with the geometry of `like` but the image's affine and the
// spacing its columns give: [nz, ny, nx] for one channel, [C, nz, ny, nx] for more. For writing what a model
// saw as NIfTI.
template <class T, class U>
Volume<T> volume_from_spatial_image(const transforms::SpatialImage<T>& image, const Volume<U>& like) {
    const Tensor<T>& s = image.data;
    if (s.rank() != 4)
        throw shape_error(
            message("vit3d::io::volume_from_spatial_image: expected an image [C, i, j, k], got ", s.shape()));
    const Index nc = s.dim(0), nx = s.dim(1), ny = s.dim(2), nz = s.dim(3);
    Tensor<T> data = nc == 1 ? Tensor<T>::empty({nz, ny, nx}) : Tensor<T>::empty({nc, nz, ny, nx});
    for (Index c = 0; c < nc; ++c)
        for (Index k = 0; k < nz; ++k)
            for (Index j = 0; j < ny; ++j)
                for (Index i = 0; i < nx; ++i)
                    data.data()[((c * nz + k) * ny + j) * nx + i] =
                        s.data()[((c * nx + i) * ny + j) * nz + k];
    Volume<T> out = volume_like(like, std::move(data));
    out.affine = image.affine;
    for (int axis = 0; axis < 3; ++axis)
        out.spacing[static_cast<std::size_t>(2 - axis)] = transforms::column_norm(image.affine, axis);
    return out;
}

}  // namespace vit3d::io
