#pragma once
// The affine of a volume: the 4 x 4 matrix that maps a voxel's indices (i, j, k, 1) to world coordinates
// (x, y, z, 1), as NIfTI, nibabel and MONAI define it (RAS+ and millimetres for NIfTI and MONAI; DICOM's LPS
// is converted to it when a series is read).

#include <array>
#include <cmath>

namespace vit3d::transforms {

// A 4 x 4 matrix, row-major: affine[row][column].
using Affine = std::array<std::array<double, 4>, 4>;

inline Affine identity_affine() {
    Affine a{};
    for (int i = 0; i < 4; ++i) a[i][i] = 1.0;
    return a;
}

// The length of the affine's column `axis` (0, 1, 2 for i, j, k): the voxel spacing along that index axis.
inline double column_norm(const Affine& a, int axis) {
    const auto c = static_cast<std::size_t>(axis);
    return std::sqrt(a[0][c] * a[0][c] + a[1][c] * a[1][c] + a[2][c] * a[2][c]);
}

}  // namespace vit3d::transforms
