#pragma once
// The anatomical structure encoder of the CT encoder: from a segmentation mask of the volume (integer labels,
// 0 = background, 1..R anatomical regions) it computes
//   - the soft patch-to-region assignment A [B, N, R + 1]: the fraction of each patch's voxels carrying each
//     label 0..R, so every row sums to 1. Label 0 (background) is kept as column 0: the region-aware
//     attention needs it (nn/region_aware_attention.hpp); what the encoder reports is columns 1..R;
//   - region tokens G [B, R + 1, D] from patch tokens x [B, N, D] and a learned embedding table E [R + 1, D]
//     (one row per label, background included):
//         G[b, r] = sum_n A[b, n, r] x[b, n] / sum_n A[b, n, r] + E[r]
//     the assignment-weighted mean of the patch tokens plus the region's embedding. A region absent from a
//     volume (sum_n A[b, n, r] = 0) gets its embedding only.
// Patches enumerate the patch grid row-major, as PatchEmbed3d's tokens do. The assignment is one pass over
// the mask (16.7 M voxels at 64 x 512 x 512), split over threads by slabs of patches.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

// The fields' meanings are in list_fields.
struct AnatomicalEncoderConfig {
    Index dim = 768;
    Index regions = 20;
    std::array<Index, 3> patch{4, 16, 16};

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("dim", c.dim, "token width D").positive());
        f(field("regions", c.regions, "mask labels 1 .. regions; 0 is background").positive());
        f(field("patch", c.patch, "the patch embedding's patch sizes, in the volume's axis order")
              .positive());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

template <class T>
struct AnatomicalEncoder {
    Tensor<T> region_embed;  // [regions + 1, D] ("<prefix>.region_embed"), row 0 = background
    std::array<Index, 3> patch{};

    AnatomicalEncoder() = default;
    explicit AnatomicalEncoder(const AnatomicalEncoderConfig& c) : patch(c.patch) {
        if (c.dim <= 0 || c.regions <= 0 || c.patch[0] <= 0 || c.patch[1] <= 0 || c.patch[2] <= 0)
            throw shape_error(message(
                "vit3d::nn::AnatomicalEncoder: expected dim > 0, regions > 0 and a positive patch, got dim ",
                c.dim, ", ", c.regions, " regions, patch ", c.patch));
        region_embed = Tensor<T>(Shape{c.regions + 1, c.dim});
    }

    Index regions() const { return region_embed.dim(0) - 1; }
    Index dim() const { return region_embed.dim(1); }

    // mask: [B, 1, S0, S1, S2] (or [B, S0, S1, S2]) of integer labels 0..regions(), the size of `volume`
    // ([B, C, S0, S1, S2]) -> A [B, N, regions() + 1]. A label outside 0..regions() is an error naming it and
    // its voxel.
    template <class Label>
    Tensor<T> assignment(const Tensor<Label>& mask, const Shape& volume) const {
        static_assert(
            std::is_integral_v<Label> && !std::is_same_v<Label, bool>,
            "vit3d::nn::AnatomicalEncoder::assignment: the mask holds integer labels (uint8_t, int16_t, "
            "int32_t, ...); convert a floating-point mask to an integer type first");
        const char* op = "vit3d::nn::AnatomicalEncoder::assignment";
        const bool channel_axis = mask.rank() == 5;
        const bool fits = volume.size() == 5 && (mask.rank() == 5 || mask.rank() == 4) &&
                          mask.dim(0) == volume[0] && (!channel_axis || mask.dim(1) == 1) &&
                          mask.dim(-3) == volume[2] && mask.dim(-2) == volume[3] && mask.dim(-1) == volume[4];
        if (!fits)
            throw shape_error(message(op, ": expected a mask [B, 1, S0, S1, S2] of the volume's size ",
                                      volume, ", got ", mask.shape()));
        std::array<Index, 3> grid{};
        for (std::size_t a = 0; a < 3; ++a) {
            if (volume[2 + a] % patch[a] != 0)
                throw shape_error(message(op, ": volume axis ", 2 + a, " of ", volume,
                                          " is not divisible by the patch size ", patch[a]));
            grid[a] = volume[2 + a] / patch[a];
        }
        const Index B = volume[0], S1 = volume[3], S2 = volume[4], labels = regions() + 1;
        const Index N = grid[0] * grid[1] * grid[2], slab = patch[0] * S1 * S2;
        // Counts per patch and label; each thread owns whole slabs of patches (one grid row along axis 0),
        // reading the mask's voxels once and in order.
        std::vector<std::int32_t> counts(static_cast<std::size_t>(B * N * labels), 0);
        std::vector<Index> bad_voxel(static_cast<std::size_t>(B * grid[0]), -1);
        const Label* voxels = mask.data();
        detail::parallel_for(B * grid[0], 1, [&](Index first, Index last) {
            for (Index s = first; s < last; ++s) {
                const Index b = s / grid[0], gz = s % grid[0];
                const Label* in = voxels + s * slab;  // slab s: voxels of batch b, patch row gz
                std::int32_t* out = counts.data() + (b * N + gz * grid[1] * grid[2]) * labels;
                for (Index z = 0; z < patch[0]; ++z)
                    for (Index y = 0; y < S1; ++y) {
                        std::int32_t* row = out + (y / patch[1]) * grid[2] * labels;
                        for (Index x = 0; x < S2; ++x) {
                            const Label l = in[(z * S1 + y) * S2 + x];
                            if (!is_label(l, labels)) {
                                if (bad_voxel[static_cast<std::size_t>(s)] < 0)
                                    bad_voxel[static_cast<std::size_t>(s)] = s * slab + (z * S1 + y) * S2 + x;
                                continue;
                            }
                            ++row[(x / patch[2]) * labels + static_cast<Index>(l)];
                        }
                    }
            }
        });
        for (Index at : bad_voxel)
            if (at >= 0)
                throw shape_error(message(op, ": expected labels 0..", regions(), ", got ",
                                          static_cast<long long>(voxels[at]), " at flat voxel ", at,
                                          " of the mask ", mask.shape()));
        Tensor<T> a = Tensor<T>::empty({B, N, labels});
        const double per_patch = static_cast<double>(patch[0] * patch[1] * patch[2]);
        for (std::size_t i = 0; i < counts.size(); ++i)
            a.data()[i] = static_cast<T>(static_cast<double>(counts[i]) / per_patch);
        return a;
    }

    // patches [B, N, D] and A [B, N, regions() + 1] -> region tokens [B, regions() + 1, D].
    Tensor<T> region_tokens(const Tensor<T>& patches, const Tensor<T>& assignment) const {
        const Index labels = region_embed.dim(0), D = dim();
        if (region_embed.rank() != 2 || patches.rank() != 3 || patches.dim(2) != D ||
            assignment.rank() != 3 || assignment.dim(0) != patches.dim(0) ||
            assignment.dim(1) != patches.dim(1) || assignment.dim(2) != labels)
            throw shape_error(message("vit3d::nn::AnatomicalEncoder::region_tokens: expected patches [B, N, ",
                                      D, "] and an assignment [B, N, ", labels, "], got patches ",
                                      patches.shape(), " and assignment ", assignment.shape(),
                                      " (region_embed ", region_embed.shape(), ")"));
        const Index B = patches.dim(0), N = patches.dim(1);
        using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        using Map = Eigen::Map<const Matrix>;
        Tensor<T> tokens = Tensor<T>::empty({B, labels, D});
        // Eigen's product may open an OpenMP region of its own: give it vit3d's thread count.
        detail::ScopedOpenMPThreads eigen_threads(num_threads());
        for (Index b = 0; b < B; ++b) {
            const Map a(assignment.data() + b * N * labels, N, labels), x(patches.data() + b * N * D, N, D);
            Eigen::Map<Matrix> g(tokens.data() + b * labels * D, labels, D);
            g.noalias() = a.transpose() * x;  // [labels, D] = sum over patches
            for (Index r = 0; r < labels; ++r) {
                double mass = 0;
                for (Index n = 0; n < N; ++n) mass += static_cast<double>(a(n, r));
                if (mass > 0)
                    g.row(r) /= static_cast<T>(mass);
                else
                    g.row(r).setZero();  // absent: the embedding alone
                g.row(r) += Map(region_embed.data(), labels, D).row(r);
            }
        }
        return tokens;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "region_embed"), self.region_embed);
    }

    template <class Label>
    static bool is_label(Label l, Index labels) {
        if constexpr (std::is_signed_v<Label>) {
            if (l < 0) return false;
        }
        return static_cast<unsigned long long>(l) < static_cast<unsigned long long>(labels);
    }
};

}  // namespace vit3d::nn

#define VIT3D_ANATOMICAL_ENCODER_INSTANCES(X, T) X(struct vit3d::nn::AnatomicalEncoder<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_ANATOMICAL_ENCODER_INSTANCES)
